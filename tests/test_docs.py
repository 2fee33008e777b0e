"""Every command the documentation shows runs, as a reader would type it, and succeeds.

Each page's `bash` and `python` blocks run in order in a scratch folder laid out like the repository (`data/`,
`evaluate.py`, the corpora at `../shared/corpora`) with the example inputs the pages name. Installing
is CI's own first step, so `pip` and `venv` lines are not run again; servers (`qism serve`,
`dask scheduler`, `dask worker`) start in the background on free ports of 127.0.0.1, are waited for,
and are stopped when the page is done. A command that needs the real corpora skips when they are absent.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPORA, ROOT, SAMPLE

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(bash|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: Steps CI runs before the tests (the install itself) and the tests themselves.
NOT_RUN_AGAIN = ("pip install", "python3 -m venv", ". .venv/bin/activate", "pytest")
#: Commands that serve until stopped, with the flag that names their port (None: they listen on none).
SERVERS = {"qism serve": "--port", "dask scheduler": "--port", "dask worker": None}
DEFAULT_PORTS = {"qism serve": "8000", "dask scheduler": "8786"}
COMMAND_SECONDS = 600


def commands(page: Path) -> list[str]:
    """A page's commands in order: each line of a bash block (continued lines joined, comments and
    blank lines left out), and each python block whole, as `python -c`."""
    found = []
    for language, block in FENCE.findall(page.read_text(encoding="utf-8")):
        if language == "python":
            found.append(f"python -c {shlex.quote(block)}")
            continue
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("  # ")[0].strip()  # a comment on a command's line follows two spaces
            if command and not command.startswith("#"):
                found.append(command)
    return found


def test_every_page_shows_commands_and_the_readme_stays_short():
    assert (ROOT / "README.md").stat().st_size < 8 * 1024
    for page in PAGES:
        assert commands(page), f"{page.name} shows no command to run"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    """Until the server answers on its port (or dies: then its log says why)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server ended: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)  # polling for the event: the port opening
    raise AssertionError(f"nothing answered on port {port} within {seconds} s")


def write_csv(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(rows)


def example_inputs(folder: Path) -> None:
    """The files the pages name as a reader's own: labeled and unlabeled articles made from data/sample."""
    articles = sorted(p for p in SAMPLE.rglob("*.txt"))
    labeled = [(p.parent.name, p.read_text(encoding="utf-8").strip()) for p in articles]
    write_csv(folder / "test.csv", [("text", "label"), *((text, label) for label, text in labeled)])
    records = [
        {"id": f"a{n}", "title": text.split("\n")[0][:80], "url": f"https://example.org/{n}", "text": text}
        for n, (_, text) in enumerate(labeled, 1)
    ]
    (folder / "articles.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    write_csv(
        folder / "our-articles.csv", [("id", "title", "text"), *((r["id"], r["title"], r["text"]) for r in records)]
    )
    merged = {"دوليات": "العالم", "شؤون عربية": "العالم"}
    write_csv(folder / "ours.csv", [("text", "label"), *((text, merged.get(label, label)) for label, text in labeled)])
    (folder / "one-per-line.txt").write_text(
        "".join(text.split("\n")[0] + "\n" for _, text in labeled), encoding="utf-8"
    )


@pytest.fixture
def scratch(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for name in ("data", "docs", "evaluate.py", "tests"):
        (work / name).symlink_to(ROOT / name)
    (tmp_path / "shared").symlink_to(CORPORA.parent)
    example_inputs(work)
    return work


class Servers:
    """The background processes a page starts; all stopped, and their process groups with them."""

    def __init__(self):
        self.processes: list[subprocess.Popen] = []
        self.ports: dict[str, int] = {}

    def start(self, command: str, cwd: Path, env: dict) -> None:
        """Start a server on a free port in place of the one the page names, and wait until it answers."""
        prefix = next(prefix for prefix in SERVERS if command.startswith(prefix))
        flag, port = SERVERS[prefix], None
        if flag:
            port = free_port()
            given = re.search(rf"{flag} (\d+)", command)
            self.ports[given.group(1) if given else DEFAULT_PORTS[prefix]] = port
            command = command.replace(given.group(0), f"{flag} {port}") if given else f"{command} {flag} {port}"
        log = cwd.parent / f"server-{len(self.processes)}.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen(
                command, shell=True, cwd=cwd, env=env, stdout=sink, stderr=sink, start_new_session=True
            )
        self.processes.append(process)
        if port:
            wait_for_port(port, process, log)

    def with_ports(self, command: str) -> str:
        command = command.replace("SCHEDULER", "127.0.0.1")
        for given, port in self.ports.items():
            command = re.sub(rf"(?<=:){given}\b", str(port), command)
        return command

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_command_on_the_page_runs(page, scratch):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    servers = Servers()
    ran = 0
    try:
        for command in commands(page):
            if command.startswith(NOT_RUN_AGAIN):
                continue
            if "../shared" in command and not CORPORA.exists():
                continue
            command = servers.with_ports(command)
            if command.startswith(tuple(SERVERS)):
                servers.start(command, scratch, env)
                continue
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=scratch,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_SECONDS,
            )
            assert done.returncode == 0, f"{page.name}: {command}\n{done.stderr[-2000:]}"
            ran += 1
    finally:
        servers.stop()
    if ran == 0:
        pytest.skip(f"every command of {page.name} needs the corpora")

"""Where `qism predict` writes, and what happens to it when a run is cut short: outputs that are not
regular files, the input as the output, modes kept, `--resume` refusing another run's output, Ctrl-C
keeping a partial that `--resume` completes, and workers that never outlive their parent. See
tests/README.md (Outputs and runs)."""

import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ECONOMY, FIXTURES, SPORTS, assert_user_error, run
from qism import TrainConfig, train
from qism.config import resolve_jobs
from qism.corpus import read_inputs
from qism.errors import Interrupted
from qism.features import pool
from qism.model import load_model
from qism.output import label_to_output
from qism.predict import batch_size_for
from test_bad_input import big_input, qism, read_ids

NULL, FULL = os.makedev(1, 3), os.makedev(1, 7)


def predict(model, source, out, *args):
    return run("predict", "--model", model, "--input", source, "--format", "jsonl", "--output", out, *args)


def device(path: Path, number: int) -> Path:
    """A character device node like /dev/null or /dev/full, made in a test folder (needs root)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, number)
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root")
    return path


# --- outputs that are not regular files ------------------------------------------------------


def test_output_through_a_link_replaces_the_file_it_names_and_keeps_the_link(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 5)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "out.jsonl"
    target.write_text("old\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(target)
    assert predict(tiny_model_dir, source, link).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert read_ids(target) == [f"d{i}" for i in range(5)]
    dangling = tmp_path / "new.jsonl"
    dangling.symlink_to(tmp_path / "real" / "new.jsonl")  # a link to a file not made yet: made there
    assert predict(tiny_model_dir, source, dangling).exit_code == 0
    assert dangling.is_symlink() and read_ids(tmp_path / "real" / "new.jsonl") == [f"d{i}" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "new.jsonl", "out.jsonl", "real"]


def test_output_to_a_fifo_writes_into_it(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 7)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text(encoding="utf-8")), daemon=True)
    reader.start()
    result = predict(tiny_model_dir, source, fifo)
    reader.join(10)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the FIFO, not a file put in its place
    assert [json.loads(line)["id"] for line in received[0].splitlines()] == [f"d{i}" for i in range(7)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "pipe"]  # no run record beside a FIFO


def test_output_to_a_device_or_a_link_to_one_writes_to_the_device(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 5)
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    assert predict(tiny_model_dir, source, link).exit_code == 0
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    null = device(tmp_path / "null-device", NULL)
    for fmt in ("jsonl", "csv", "table", "json"):
        assert (
            run("predict", "--model", tiny_model_dir, "--input", source, "--format", fmt, "--output", null).exit_code
            == 0
        )
        assert stat.S_ISCHR(null.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "null", "null-device"]


def test_output_to_dev_stdout_writes_through_to_the_pipe(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 5)
    result = subprocess.run(
        qism(
            "predict",
            "--model",
            tiny_model_dir,
            "--input",
            source,
            "--format",
            "jsonl",
            "--output",
            "/dev/stdout",
            "--quiet",
        ),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [f"d{i}" for i in range(5)]


def test_a_full_device_is_one_line_no_space_left(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 5)
    link = tmp_path / "full"
    link.symlink_to("/dev/full")
    assert_user_error(predict(tiny_model_dir, source, link), "no space left")
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/full").st_mode)
    full = device(tmp_path / "full-device", FULL)
    assert_user_error(predict(tiny_model_dir, source, full), "no space left")
    assert stat.S_ISCHR(full.lstat().st_mode)
    with open(full, "w") as stdout:
        stdout_full = subprocess.run(
            qism("predict", "--model", tiny_model_dir, "--input", source, "--format", "jsonl", "--quiet"),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert stdout_full.returncode == 1
    [line] = stdout_full.stderr.splitlines()
    assert "no space left" in line.lower() and "Traceback" not in stdout_full.stderr


def test_output_that_is_the_input_is_refused(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 5)
    before = source.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    hard = tmp_path / "hard.jsonl"
    os.link(source, hard)
    for out in (source, link, hard):
        for resume in ((), ("--resume",)):
            assert_user_error(predict(tiny_model_dir, source, out, *resume), "is the input")
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "1.txt").write_text(SPORTS, encoding="utf-8")
    (folder / "2.txt").write_text(ECONOMY, encoding="utf-8")
    for article in ("1.txt", "labels.txt", "labels.jsonl", "labels.csv"):
        assert_user_error(
            run("predict", "--model", tiny_model_dir, "--input", folder, "--output", folder / article),
            "inside the input folder, where it would be read as an article or a data file",
        )
    assert (
        run(
            "predict",
            "--model",
            tiny_model_dir,
            "--input",
            folder,
            "--format",
            "jsonl",
            "--output",
            folder / "run.labels.jsonl",
        ).exit_code
        == 0
    )  # an output's name, which no folder reads: fine
    assert source.read_bytes() == before and (folder / "1.txt").read_text(encoding="utf-8") == SPORTS


def test_output_that_is_a_folder_or_in_no_folder_is_one_line(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 2)
    assert_user_error(predict(tiny_model_dir, source, tmp_path), "is a folder")
    assert_user_error(predict(tiny_model_dir, source, tmp_path / "missing" / "out.jsonl"), "no folder")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table"])
def test_rewriting_an_output_keeps_its_mode(tmp_path, tiny_model_dir, fmt):
    source = big_input(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out"
    out.write_text("old\n")
    out.chmod(0o600)
    args = ("predict", "--model", tiny_model_dir, "--input", source, "--format", fmt, "--output", out)
    assert run(*args).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    if fmt != "table":
        out.write_text(out.read_text(encoding="utf-8")[:-30], encoding="utf-8")  # cut, so --resume rewrites it
        assert run(*args, "--resume").exit_code == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
    linked = tmp_path / "linked"
    linked.symlink_to(out)
    out.chmod(0o640)
    assert (
        run("predict", "--model", tiny_model_dir, "--input", source, "--format", fmt, "--output", linked).exit_code == 0
    )
    assert linked.is_symlink() and "d4" in out.read_text(encoding="utf-8")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    new = tmp_path / "new"
    assert run("predict", "--model", tiny_model_dir, "--input", source, "--format", fmt, "--output", new).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask


# --- --resume continues only the run that wrote the output ------------------------------------


def cut_output(out: Path, keep: int) -> None:
    """Keep the first `keep` lines of an output and half of the next, as a killed run leaves it."""
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:keep]) + lines[keep][: len(lines[keep]) // 2], encoding="utf-8")


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models") / "other"
    train([FIXTURES / "tiny"], TrainConfig(test_size=0.0, min_df=1, C=0.25)).save(directory)
    return directory


@pytest.mark.parametrize(
    "change, fragment",
    [
        (("--top-k", "2"), "--top-k 1, not --top-k 2"),
        (("--explain", "2"), "--explain 0, not --explain 2"),
        (("--threshold", "0.5"), "--threshold 0.0, not --threshold 0.5"),
        (("--unknown-label", "?"), "--unknown-label unknown, not --unknown-label ?"),
        (("--keep-columns", "text"), "no --keep-columns, not --keep-columns text"),
        (("--id-column", "text"), "no --id-column, not --id-column text"),
    ],
)
def test_resume_refuses_other_options(tmp_path, tiny_model_dir, change, fragment):
    source = big_input(tmp_path / "in.jsonl", 20)
    out = tmp_path / "out.jsonl"
    assert predict(tiny_model_dir, source, out).exit_code == 0
    cut_output(out, 8)
    before = out.read_bytes()
    assert_user_error(predict(tiny_model_dir, source, out, "--resume", *change), f"was written with {fragment}")
    assert out.read_bytes() == before


def test_resume_refuses_another_model_another_input_or_an_unrelated_file(tmp_path, tiny_model_dir, other_model_dir):
    source = big_input(tmp_path / "in.jsonl", 20)
    out = tmp_path / "out.jsonl"
    assert predict(tiny_model_dir, source, out).exit_code == 0
    cut_output(out, 8)
    before = out.read_bytes()
    assert_user_error(predict(other_model_dir, source, out, "--resume"), "another model")
    same_ids = tmp_path / "same_ids.jsonl"
    same_ids.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": ECONOMY}) + "\n" for i in range(20)), encoding="utf-8"
    )
    assert_user_error(predict(tiny_model_dir, same_ids, out, "--resume"), "another input")
    with open(source, "a", encoding="utf-8") as handle:  # the same file, grown since
        handle.write(json.dumps({"id": "late", "text": SPORTS}) + "\n")
    assert_user_error(predict(tiny_model_dir, source, out, "--resume"), "another input")
    assert out.read_bytes() == before
    unrelated = tmp_path / "notes.jsonl"
    unrelated.write_text('{"id": "d0", "note": "mine"}\n', encoding="utf-8")
    assert_user_error(predict(tiny_model_dir, source, unrelated, "--resume"), "no record of the run")
    assert unrelated.read_text(encoding="utf-8") == '{"id": "d0", "note": "mine"}\n'


def test_resume_refuses_bom_change_in_csv(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 20)
    out = tmp_path / "out.csv"
    args = ("predict", "--model", tiny_model_dir, "--input", source, "--format", "csv", "--output", out)
    assert run(*args).exit_code == 0
    cut_output(out, 8)
    assert_user_error(run(*args, "--bom", "--resume"), "--bom")
    assert run(*args, "--resume").exit_code == 0
    assert [row["id"] for row in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))] == [
        f"d{i}" for i in range(20)
    ]


def test_resuming_a_finished_output_says_so_and_run_records_are_checked(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 20)
    out = tmp_path / "out.jsonl"
    assert predict(tiny_model_dir, source, out).exit_code == 0
    before = out.stat()
    result = predict(tiny_model_dir, source, out, "--resume")
    assert result.exit_code == 0, result.output
    assert "already complete (20 records)" in result.stderr
    assert out.stat().st_mtime_ns == before.st_mtime_ns and out.stat().st_ino == before.st_ino
    assert read_ids(out) == [f"d{i}" for i in range(20)]
    record = tmp_path / ".out.jsonl.qism-run.json"
    record.write_text("{not json", encoding="utf-8")
    assert_user_error(predict(tiny_model_dir, source, out, "--resume"), "run record")
    record.unlink()
    precious = tmp_path / "precious"
    precious.write_text("mine")
    record.symlink_to(precious)  # planted: qism would write its record into the file it names
    assert_user_error(predict(tiny_model_dir, source, out), "a link or not a file where qism keeps the record")
    assert precious.read_text() == "mine" and record.is_symlink()


def test_writing_another_format_drops_the_run_record_it_replaces(tmp_path, tiny_model_dir):
    source = big_input(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out"
    assert predict(tiny_model_dir, source, out).exit_code == 0
    assert (tmp_path / ".out.qism-run.json").is_file()
    assert (
        run("predict", "--model", tiny_model_dir, "--input", source, "--format", "table", "--output", out).exit_code
        == 0
    )
    assert not (tmp_path / ".out.qism-run.json").exists()
    assert_user_error(predict(tiny_model_dir, source, out, "--resume"), "no record of the run")


needs_fork = pytest.mark.skipif(
    not pool.FORK_WORKERS or (os.cpu_count() or 1) < 2, reason="forked workers: Linux with 2 cores or more"
)
needs_workers = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table in /proc")


# --- --jobs is bounded by the cores -----------------------------------------------------------


def test_jobs_outside_the_range_are_one_line_in_every_command(tmp_path, tiny_model_dir, tiny):
    for jobs in ("0", "-2"):
        assert_user_error(run("predict", SPORTS, "--model", tiny_model_dir, "--jobs", jobs), "--jobs")
        assert_user_error(run("evaluate", tiny_model_dir, tiny, "--jobs", jobs), "--jobs")
        assert_user_error(run("train", tiny, "--out", tmp_path / "m", "--test-size", "0", "--jobs", jobs), "--jobs")
    assert not (tmp_path / "m").exists()


def _pid(texts):
    return [os.getpid()]


@pytest.fixture
def pools_started(monkeypatch) -> list[int]:
    """The worker counts of the pools started; a pool of more workers than cores fails before it starts."""
    started = []
    real = pool.ProcessPoolExecutor

    def bounded(max_workers=None, **options):
        started.append(max_workers)
        assert max_workers <= (os.cpu_count() or 1), f"a pool of {max_workers} processes"
        return real(max_workers, **options)

    monkeypatch.setattr(pool, "ProcessPoolExecutor", bounded)
    return started


@needs_fork
def test_more_jobs_than_cores_start_one_process_per_core(pools_started):
    pids = {pid for part in pool.map_chunks(_pid, [SPORTS] * 4000, 1000) for pid in part}
    assert pools_started and len(pids) <= (os.cpu_count() or 1)
    assert batch_size_for(1000) == batch_size_for(-1) == pool.CHUNK_SIZE * resolve_jobs(-1) * 2


@needs_fork
def test_a_model_file_does_not_decide_how_many_processes_run(tiny_model_dir, pools_started):
    model = load_model(tiny_model_dir)
    model.pipeline.set_params(features__n_jobs=1000, classifier__n_jobs=1000)  # as an edited model file sets them
    assert model.predict(["فاز الفريق بالمباراة"] * 1000)[0] == "sports"
    assert pools_started


# --- interrupted and killed runs --------------------------------------------------------------


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid` now."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def start_with_workers(command: list[str]) -> tuple[subprocess.Popen, set[int]]:
    """Start `command` in its own process group and wait until it has forked its workers."""
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not (workers := children(process.pid)):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no worker started"
        time.sleep(0.002)
    return process, workers


def wait_gone(workers: set[int], seconds: float = 5) -> list[int]:
    """The workers still alive after `seconds`, killed then, so a failing test leaves none behind."""
    deadline = time.monotonic() + seconds
    while (left := [pid for pid in workers if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


@needs_fork
@needs_workers
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_a_killed_predict(tmp_path, tiny_model_dir, sig):
    source = big_input(tmp_path / "in.jsonl", 20_000)
    process, workers = start_with_workers(
        qism(
            "predict",
            "--model",
            tiny_model_dir,
            "--input",
            source,
            "--format",
            "jsonl",
            "--output",
            tmp_path / "out.jsonl",
            "--jobs",
            "2",
            "--quiet",
        )
    )
    process.send_signal(sig)
    process.wait()
    assert wait_gone(workers) == []


@needs_workers
def test_joblib_workers_die_with_their_parent_too(tmp_path):
    script = (
        "import os, sys, time\nfrom qism.features import pool\npool.FORK_WORKERS = False\n"
        "def work(texts):\n    open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close()\n    time.sleep(60)\n"
        "pool.map_chunks(work, ['x'] * 1000, 2)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, tmp_path], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.iterdir())) < 2:  # both workers at work
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    workers = children(process.pid)  # and loky's resource trackers
    assert {int(p.name) for p in tmp_path.iterdir()} <= workers
    process.kill()
    process.wait()
    assert wait_gone(workers) == []


class HeldOpenInput:
    """A FIFO that gives its first records at once and holds the rest back until `release`: the run
    reading it cannot finish before the test has interrupted it, however busy the machine is."""

    def __init__(self, path: Path, source: Path, held_back: int):
        lines = source.read_bytes().splitlines(keepends=True)
        cut = len(lines) - held_back
        self.first, self.rest = b"".join(lines[:cut]), b"".join(lines[cut:])
        self.released = threading.Event()
        os.mkfifo(path)
        self.writer = threading.Thread(target=self._write, args=(path,), daemon=True)
        self.writer.start()

    def _write(self, path: Path) -> None:
        try:
            with open(path, "wb") as handle:
                handle.write(self.first)
                handle.flush()
                if self.rest:
                    self.released.wait()
                    handle.write(self.rest)
        except BrokenPipeError:  # the reader was interrupted, as the test meant
            pass

    def release(self) -> None:
        self.released.set()
        self.writer.join(30)


def wait_for_partial(folder: Path, pattern: str, process: subprocess.Popen, size: int = 50_000) -> None:
    """Until the run has written `size` bytes of its partial output: the work has started."""
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > size for p in folder.glob(pattern)):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the run wrote nothing"
        time.sleep(0.005)


@needs_fork
@needs_workers
def test_ctrl_c_keeps_a_partial_that_resume_completes(tmp_path, tiny_model_dir, fmt="jsonl"):
    n = 20_000
    whole_input = big_input(tmp_path / "all.jsonl", n)
    source = tmp_path / "in.jsonl"
    held = HeldOpenInput(source, whole_input, held_back=5_000)
    args = ["predict", "--model", tiny_model_dir, "--input", source, "--format", fmt, "--jobs", "2", "--quiet"]
    out = tmp_path / f"out.{fmt}"
    process, _ = start_with_workers(qism(*args, "--output", out))
    wait_for_partial(tmp_path, f".out.{fmt}.*.part", process)
    workers = children(process.pid)
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole process group
    assert process.wait(30) == 130
    held.release()
    stderr = process.stderr.read()
    [line] = stderr.splitlines()
    assert line.startswith("qism: interrupted; ") and line.endswith(
        " records kept in the partial; run again with --resume to finish"
    ), stderr
    assert wait_gone(workers) == []
    assert not out.exists()
    [partial] = tmp_path.glob(f".out.{fmt}.*.part")
    kept = int(line.split("; ")[1].split()[0].replace(",", ""))
    rows = (
        list(csv.DictReader(io.StringIO(partial.read_text(encoding="utf-8"))))
        if fmt == "csv"
        else [json.loads(text) for text in partial.read_text(encoding="utf-8").splitlines()]
    )
    assert 0 < kept == len(rows) < n
    source.unlink()
    HeldOpenInput(source, whole_input, held_back=0)  # the same stream again, whole
    assert run(*args, "--output", out, "--resume").exit_code == 0
    whole = tmp_path / f"whole.{fmt}"
    assert run(*args[:4], whole_input, *args[5:], "--output", whole).exit_code == 0
    assert out.read_bytes() == whole.read_bytes()  # every id once, in order, the same records
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["in.jsonl", "all.jsonl", out.name, whole.name, f".{out.name}.qism-run.json", f".{whole.name}.qism-run.json"]
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_interrupted_run_resumed_and_interrupted_again_loses_nothing(tmp_path, tiny_model_dir, fmt):
    model, n = load_model(tiny_model_dir), 10_000
    source = str(big_input(tmp_path / "in.jsonl", n))
    out, whole = tmp_path / f"out.{fmt}", tmp_path / f"whole.{fmt}"
    options = dict(fmt=fmt, input_path=source, n_jobs=1, bom=fmt == "csv")

    def interrupt(labeled: int) -> None:
        raise KeyboardInterrupt  # Ctrl-C once a batch is written

    kept = []
    for resume in (False, True):
        with pytest.raises(Interrupted, match="records kept in the partial; run again with --resume") as caught:
            label_to_output(model, read_inputs([], source), output=out, resume=resume, on_batch=interrupt, **options)
        kept.append(int(str(caught.value).split()[0].replace(",", "")))
        assert not out.exists() and len(list(tmp_path.glob(f".out.{fmt}.*.part"))) == 1
    assert 0 < kept[0] < kept[1] < n
    assert (
        label_to_output(model, read_inputs([], source), output=out, resume=True, **options)["documents"] == n - kept[1]
    )
    label_to_output(model, read_inputs([], source), output=whole, **options)
    assert out.read_bytes() == whole.read_bytes()
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))


def test_ctrl_c_with_a_format_that_cannot_resume_writes_nothing(tmp_path, tiny_model_dir):
    source = tmp_path / "in.jsonl"
    held = HeldOpenInput(source, big_input(tmp_path / "whole.jsonl", 20_000), held_back=5_000)
    process = subprocess.Popen(
        qism(
            "predict",
            "--model",
            tiny_model_dir,
            "--input",
            source,
            "--format",
            "json",
            "--output",
            tmp_path / "out.json",
            "--jobs",
            "1",
            "--quiet",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_partial(tmp_path, ".out.json.*.part", process)
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 130
    held.release()
    assert process.stderr.read().splitlines() == ["qism: interrupted; nothing was written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "whole.jsonl"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_ctrl_c_between_writing_a_record_and_counting_it_keeps_and_counts_it(tmp_path, fmt):
    """The count of kept records is read from the partial that --resume reads: a record written but
    not yet counted when Ctrl-C came is kept and counted (it was lost with its partial before)."""
    from qism.output import output_for

    out = tmp_path / f"out.{fmt}"
    lines = "id,label\r\nd0,sports\r\nd1,sports\r\n" if fmt == "csv" else '{"id": "d0"}\n{"id": "d1"}\n'
    with pytest.raises(Interrupted, match=r"^2 records kept in the partial"):
        with output_for(out, fmt, {"format": fmt}, newline="" if fmt == "csv" else None) as target:
            target.out.write(lines)  # written, and Ctrl-C before the writer counted them
            raise KeyboardInterrupt
    [partial] = tmp_path.glob(f".out.{fmt}.*.part")
    assert partial.read_bytes().decode() == lines and not out.exists()

"""Issue 23's measurements of `qism serve` operated and attacked on 127.0.0.1, as a table.

1. A body of a million integers (2 MB, under the size limit): seconds to its 4xx, the slowest /healthz
   answered meanwhile (one client polling it), the server's RSS growth.
2. 1,000 connections from this one client (idle, half a header, half a body, a third each): /healthz and
   one-article predictions sent meanwhile (answered, slowest), and seconds until the server has closed
   every held connection (the header deadline is 10 s, the body deadline 30 s, by default).
3. `kill -9` of the server with 1 and 4 workers: seconds until none of its processes is left and its
   port can be bound again.
4. A 10 MB body from Python's urllib: the status it read and the seconds it took.
5. Reload under 100 requests/s for `--seconds` (30): the server serves a link to model A; halfway the link
   moves to model B and the server gets SIGHUP. Requests, errors, answers named by each model.

The p50/p99 of one article with metrics and access logs on: `python bench/serve.py --access-log json`.

    pip install -e ".[serve,bench]" && python bench/serve_ops.py [--workers 2] [--seconds 30] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
QISM = [sys.executable, "-c", "from qism.cli import app; app()"]
ARTICLE = json.dumps({"inputs": "فاز الفريق بالمباراة وسجل اللاعب هدفين في الدوري"}).encode()
JSON = {"content-type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, *args, log=subprocess.DEVNULL):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [*QISM, "serve", "--port", str(self.port), "--no-access-log", *map(str, args)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"qism serve exited with {self.process.returncode}")
            try:
                if urllib.request.urlopen(f"{self.url}/readyz", timeout=5).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        self.processes = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children()]

    def rss_mb(self) -> float:
        return sum(p.memory_info().rss for p in self.processes if p.is_running()) / 2**20

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def post(url: str, body: bytes, timeout: float = 60) -> int:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, data=body, headers=JSON), timeout=timeout).status
    except urllib.error.HTTPError as refused:
        refused.read()
        return refused.code


def while_running(work, probe) -> tuple[object, list[float]]:
    """Run `work` on a thread and `probe` again and again meanwhile: work's result, probe's seconds."""
    result, seconds = {}, []
    thread = threading.Thread(target=lambda: result.setdefault("value", work()))
    thread.start()
    while thread.is_alive():
        seconds.append(timed(probe)[0])
    thread.join()
    return result["value"], seconds


def million_integers(model: str | None) -> list[tuple[str, str]]:
    server = Server(*(["--model", model] if model else []))
    body = b'{"inputs": [' + b"1," * 999_999 + b"1]}"
    before, peak = server.rss_mb(), [0.0]
    health = lambda: urllib.request.urlopen(f"{server.url}/healthz", timeout=60).read()
    (seconds, status), probes = while_running(lambda: timed(lambda: post(f"{server.url}/v1/predict", body)), health)
    peak[0] = server.rss_mb()
    server.stop()
    return [
        ("million integers: status", str(status)),
        ("million integers: seconds to the answer", f"{seconds:.3f}"),
        ("million integers: slowest /healthz meanwhile (ms)", f"{max(probes) * 1000:.1f} of {len(probes)}"),
        ("million integers: server RSS growth (MB)", f"{peak[0] - before:+.1f}"),
    ]


def held_connections(model: str | None, count: int = 1000) -> list[tuple[str, str]]:
    server = Server(*(["--model", model] if model else []))
    openings = [
        b"",
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n",
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n{",
    ]
    held = []
    for at in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(openings[at % 3])
        held.append(sock)
    started = time.perf_counter()
    answered, latencies = 0, []
    for _ in range(20):
        health, status = timed(lambda: urllib.request.urlopen(f"{server.url}/healthz", timeout=60).status)
        predict, labeled = timed(lambda: post(f"{server.url}/v1/predict", ARTICLE))
        answered += (status == 200) + (labeled == 200)
        latencies += [health, predict]
    latencies.sort()
    for sock in held:
        sock.settimeout(120)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
    all_closed = time.perf_counter() - started
    server.stop()
    return [
        (f"{count} connections held: requests answered meanwhile", f"{answered} of 40"),
        (
            f"{count} connections held: median, slowest answer (ms)",
            f"{latencies[20] * 1000:.1f}, {latencies[-1] * 1000:.1f}",
        ),
        (f"{count} connections held: seconds until all closed by the server", f"{all_closed:.1f}"),
    ]


def killed(model: str | None, workers: int) -> tuple[str, str]:
    server = Server(*(["--model", model] if model else []), "--workers", workers)
    while len(server.processes) < workers + (workers > 1):  # the workers (and multiprocessing's tracker)
        server.processes = [psutil.Process(server.process.pid), *psutil.Process(server.process.pid).children()]
    start = time.perf_counter()
    server.process.kill()
    server.process.wait()

    def gone() -> bool:
        alive = [p for p in server.processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a new server would
            try:
                sock.bind(("127.0.0.1", server.port))
            except OSError:
                return False
        return not alive

    while not gone() and time.perf_counter() - start < 60:
        time.sleep(0.01)
    return (
        f"kill -9, {workers} worker(s): seconds until no process and the port free",
        f"{time.perf_counter() - start:.2f}",
    )


def urllib_10_mb(model: str | None) -> tuple[str, str]:
    server = Server(*(["--model", model] if model else []))
    try:
        seconds, status = timed(lambda: post(f"{server.url}/v1/predict", b"x" * 10_000_000))
    except OSError as err:
        seconds, status = 0.0, f"failed: {err}"
    server.stop()
    return ("10 MB body from urllib: status read, seconds", f"{status}, {seconds:.2f}")


def reload_under_load(model_a: Path, model_b: Path, workers: int, seconds: float, rate: int = 100) -> list:
    folder = Path(tempfile.mkdtemp(prefix="qism-bench-reload-"))
    link = folder / "current"
    link.symlink_to(model_a)
    server = Server("--model", link, "--workers", workers)
    results, lock, numbers = [], threading.Lock(), itertools.count()
    start = time.perf_counter() + 0.5

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while (number := next(numbers)) < seconds * rate:
            time.sleep(max(0.0, start + number / rate - time.perf_counter()))
            try:
                connection.request("POST", "/v1/predict", ARTICLE, JSON)
                response = connection.getresponse()
                response.read()
                outcome = (response.status, response.getheader("x-qism-model", "").split("card-sha256=")[-1][:12])
            except OSError as err:
                connection.close()
                outcome = (type(err).__name__, "")
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start + seconds / 2 - time.perf_counter()))
    staging = folder / "next"
    staging.symlink_to(model_b)
    os.replace(staging, link)
    server.process.send_signal(signal.SIGHUP)
    for thread in threads:
        thread.join()
    server.stop()
    errors = sum(status != 200 for status, _ in results)
    by_model = {}
    for _, model in results:
        by_model[model] = by_model.get(model, 0) + 1
    return [
        (f"reload under {rate} req/s, {workers} worker(s): requests, errors", f"{len(results)}, {errors}"),
        ("reload: answers by model (card checksum)", ", ".join(f"{m}: {n}" for m, n in by_model.items())),
    ]


def second_model(folder: Path) -> Path:
    from qism import TrainConfig, train

    train([ROOT / "data" / "sample"], TrainConfig()).save(folder / "sample")
    return folder / "sample"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder A [default: the shipped default model]")
    parser.add_argument("--other-model", help="model folder B [default: one trained on data/sample]")
    parser.add_argument("--workers", type=int, default=2, help="workers for the reload step [default: 2]")
    parser.add_argument("--seconds", type=float, default=30, help="length of the reload step [default: 30]")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    from qism.model import default_model_dir

    model_a = Path(args.model) if args.model else default_model_dir()
    model_b = Path(args.other_model) if args.other_model else second_model(Path(tempfile.mkdtemp()))
    rows = million_integers(args.model)
    rows += held_connections(args.model)
    rows += [killed(args.model, 1), killed(args.model, 4)]
    rows.append(urllib_10_mb(args.model))
    rows += reload_under_load(model_a.resolve(), model_b.resolve(), args.workers, args.seconds)
    if args.json:
        print(json.dumps(dict(rows), ensure_ascii=False, indent=2))
        return
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()

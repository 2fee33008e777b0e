"""Load test of `qism serve` on 127.0.0.1, against `qism predict` on the same texts and cores.

Starts `qism serve` (one worker per core by default) on a free port of 127.0.0.1 and, from this
process, sends requests for a fixed time per step (60 s by default, then the step stops by itself)
at concurrency 1, 8 and 32, each with single articles and with batches of 64: keep-alive
connections, one thread per connection, each sending its next request as soon as the last is
answered. Before the first step, batches warm the server up until its memory stops growing. Per step:
requests/s, articles/s, p50 and p99 latency (request sent to response read),
errors (any answer but 200, or a failed connection), and the RSS of the server's processes at the
start and end of the step. Then `qism predict --jobs -1` labels the same texts from a JSON Lines
file (its start-up, timed on one text, is subtracted), for the batched server's share of its speed.
Last, the time to score one featurized article, with the classifier's contiguous weights and with the
transposed view it multiplied by before.

Texts: `--texts` (any source qism reads), else ANT v2.1 from the shared corpora, else data/sample.

    pip install -e ".[serve,bench]" && python bench/serve.py [--seconds 60] [--workers N] [--access-log json] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
CORPORA = Path(os.environ.get("QISM_CORPORA", ROOT.parent / "shared" / "corpora"))
QISM = [sys.executable, "-c", "from qism.cli import app; app()"]
CONCURRENCY = (1, 8, 32)
BATCH = 64
#: Distinct texts sent; requests cycle through them.
TEXTS = 4096
#: `qism predict` labels at least this many articles (the texts over and over), so its run is long
#: enough to time apart from its start-up.
PREDICT_ARTICLES = 20_000


def read_texts(source: Path, n: int) -> list[str]:
    from qism import ReadOptions, read_source

    texts = []
    for doc in read_source(source, ReadOptions(require_labels=False)):
        if doc.text.strip():
            texts.append(doc.text)
        if len(texts) == n:
            break
    return texts


def default_source() -> Path:
    ant = CORPORA / "ant-v2.1.jsonl.gz"
    return ant if ant.exists() else ROOT / "data" / "sample"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, model: str | None, workers: int, access_log: str = "off"):
        self.port = free_port()
        args = ["serve", "--port", str(self.port), "--workers", str(workers)]
        args += ["--no-access-log"] if access_log == "off" else ["--access-log", "--log-format", access_log]
        args += ["--model", model] if model else []
        self.log = tempfile.TemporaryFile("a+b")  # appending: reading it back never moves where the server writes
        self.process = subprocess.Popen([*QISM, *args], stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"qism serve exited: {self.log_text()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("qism serve did not become ready in 3 minutes")

    def settle(self, bodies: list[bytes], workers: int) -> None:
        """Send requests until the memory of the server stops growing: the first worker to answer
        /readyz may be the only one that has loaded the model, and the first requests allocate."""
        previous = -1.0
        for _ in range(10):  # 2 s each; a server whose memory never settles is reported as it is
            if abs(self.rss_mb() - previous) <= 1:
                return
            previous = self.rss_mb()
            load_step(self.port, bodies, 2 * workers, 2)

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def worker_starts(self) -> int:
        """Worker processes started so far: more than --workers means the supervisor restarted some."""
        return self.log_text().count("Started server process")

    def _processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes."""
        total = 0
        for process in self._processes():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def cpu_seconds(self) -> float:
        """CPU time the server and its workers have used: on a shared machine, a measure of cost that
        other loads disturb less than wall time."""
        total = 0.0
        for process in self._processes():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def request_bodies(texts: list[str], per_request: int) -> list[bytes]:
    if per_request == 1:
        return [json.dumps({"inputs": text}, ensure_ascii=False).encode() for text in texts]
    return [
        json.dumps({"inputs": texts[start : start + per_request]}, ensure_ascii=False).encode()
        for start in range(0, len(texts) - per_request + 1, per_request)
    ]


def load_step(port: int, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """`concurrency` connections sending requests back to back until `seconds` have passed."""
    deadline = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    counter = itertools.count()

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < deadline:
            body = bodies[next(counter) % len(bodies)]
            started = time.perf_counter()
            try:
                connection.request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if ok:
                latencies[slot].append(time.perf_counter() - started)
            else:
                errors[slot] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    done = sorted(latency for slot in latencies for latency in slot)
    return {
        "requests_per_s": len(done) / elapsed,
        "ok": len(done),
        "errors": sum(errors),
        "p50_ms": 1000 * done[len(done) // 2] if done else None,
        "p99_ms": 1000 * done[min(len(done) - 1, int(len(done) * 0.99))] if done else None,
    }


def predict_rate(model: str | None, texts: list[str]) -> dict:
    """Articles/s and CPU ms per article of `qism predict --jobs -1` on `texts` (over and over),
    without its start-up."""
    repeats = -(-PREDICT_ARTICLES // len(texts))
    with tempfile.TemporaryDirectory(prefix="qism-bench-") as folder:
        folder = Path(folder)

        def timed(records: list[str]) -> tuple[float, float]:
            source = folder / "articles.jsonl"
            source.write_text(
                "".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in records), encoding="utf-8"
            )
            args = [
                "predict",
                "--input",
                str(source),
                "--format",
                "jsonl",
                "--output",
                str(folder / "out.jsonl"),
                "--quiet",
                "--jobs",
                "-1",
            ] + (["--model", model] if model else [])
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([*QISM, *args], check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            return time.perf_counter() - started, cpu

        start_up, start_up_cpu = timed(texts[:1])
        total, total_cpu = timed(texts * repeats)
        articles = len(texts) * repeats
        return {
            "articles_per_s": articles / (total - start_up),
            "cpu_ms_per_article": 1000 * (total_cpu - start_up_cpu) / articles,
        }


def scoring_ms(model: str | None, text: str, calls: int = 200) -> dict:
    """Milliseconds to score one featurized article: the classifier's own way (a C-contiguous copy of
    the transposed weights) and a sparse row times the transposed view, as scoring was done before."""
    import numpy as np
    from qism import load_model

    pipeline = load_model(model).pipeline
    classifier, row = pipeline[-1], pipeline[:-1].transform([text])

    def per_call(score) -> float:
        score()
        started = time.perf_counter()
        for _ in range(calls):
            score()
        return 1000 * (time.perf_counter() - started) / calls

    return {
        "contiguous_ms": per_call(lambda: classifier.decision_function(row)),
        "transposed_view_ms": per_call(lambda: np.asarray(row @ classifier.coef_.T) + classifier.intercept_),
    }


def print_table(rows: list[dict], predict: dict | None, scoring: dict) -> None:
    print(
        "| requests | concurrency | requests/s | articles/s | p50 ms | p99 ms | errors | server CPU ms/article "
        "| RSS MB start | RSS MB end |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        kind = "1 article" if row["per_request"] == 1 else f"batch of {row['per_request']}"
        p50 = f"{row['p50_ms']:.1f}" if row["p50_ms"] is not None else "-"
        p99 = f"{row['p99_ms']:.1f}" if row["p99_ms"] is not None else "-"
        print(
            f"| {kind} | {row['concurrency']} | {row['requests_per_s']:,.0f} | {row['articles_per_s']:,.0f} | "
            f"{p50} | {p99} | {row['errors']} | {row['cpu_ms_per_article']:.2f} | {row['rss_mb_start']:.0f} | "
            f"{row['rss_mb_end']:.0f} |"
        )
    if predict:
        best = max(row["articles_per_s"] for row in rows if row["per_request"] > 1)
        print(
            f"\nqism predict --jobs -1: {predict['articles_per_s']:,.0f} articles/s, "
            f"{predict['cpu_ms_per_article']:.2f} CPU ms/article; batched server at its best: "
            f"{best:,.0f} articles/s ({best / predict['articles_per_s']:.0%})"
        )
    print(
        f"scoring one featurized article: {scoring['contiguous_ms']:.3f} ms "
        f"(with the transposed view of the weights: {scoring['transposed_view_ms']:.3f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder [default: the shipped default model]")
    parser.add_argument("--texts", type=Path, help="articles to send (any source qism reads)")
    parser.add_argument("--seconds", type=float, default=60, help="length of each step [default: 60]")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="server worker processes [default: one per core]"
    )
    parser.add_argument("--skip-predict", action="store_true", help="do not time qism predict")
    parser.add_argument(
        "--access-log", choices=["off", "text", "json"], default="off", help="the server's access log [default: off]"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()

    texts = read_texts(args.texts or default_source(), TEXTS)
    server = Server(args.model, args.workers, args.access_log)
    rows = []
    try:
        server.settle(request_bodies(texts, BATCH), args.workers)
        for per_request in (1, BATCH):
            bodies = request_bodies(texts, per_request)
            for concurrency in CONCURRENCY:
                rss_start, cpu_start = server.rss_mb(), server.cpu_seconds()
                step = load_step(server.port, bodies, concurrency, args.seconds)
                cpu = server.cpu_seconds() - cpu_start
                rows.append(
                    {
                        "per_request": per_request,
                        "concurrency": concurrency,
                        **step,
                        "articles_per_s": step["requests_per_s"] * per_request,
                        "cpu_ms_per_article": 1000 * cpu / max(1, step["ok"] * per_request),
                        "rss_mb_start": rss_start,
                        "rss_mb_end": server.rss_mb(),
                    }
                )
                print(f"done: {per_request} per request, concurrency {concurrency}", file=sys.stderr)
        restarts = server.worker_starts() - args.workers
    finally:
        server.stop()
    predict = None if args.skip_predict else predict_rate(args.model, texts)
    scoring = scoring_ms(args.model, texts[0])
    if args.json:
        print(
            json.dumps(
                {
                    "texts": len(texts),
                    "workers": args.workers,
                    "worker_restarts": restarts,
                    "seconds": args.seconds,
                    "steps": rows,
                    "predict": predict,
                    "scoring": scoring,
                },
                indent=2,
            )
        )
    else:
        print(f"{len(texts):,} texts, {args.workers} workers ({restarts} restarted), {args.seconds:g} s per step\n")
        print_table(rows, predict, scoring)


if __name__ == "__main__":
    main()

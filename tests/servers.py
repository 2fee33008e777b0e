"""A real `qism serve` for the tests: a child process on a free port of 127.0.0.1, stopped by the test
(SIGTERM, then SIGKILL) and by the kernel if the test process itself dies."""

import ctypes
import json
import signal
import socket
import subprocess
import sys
import time

import httpx

QISM = [sys.executable, "-c", "from qism.cli import app; app()"]


def die_with_this_test() -> None:
    """In a server's process before it starts: the kernel stops it if the test process dies (Linux)."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`qism serve` in a child process; `stop` sends SIGTERM and waits, then kills."""

    def __init__(self, log_path, *args):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*QISM, "serve", "--port", str(self.port), "--no-access-log", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_this_test,
            )
        self.client = httpx.Client(base_url=self.url, timeout=60)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"qism serve exited with {self.process.returncode}: {self.log()}")
            try:
                if self.client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"qism serve did not become ready: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def predict(self, inputs, **parameters):
        body = json.dumps({"inputs": inputs, "parameters": parameters})  # ASCII: lone surrogates travel as escapes
        return self.client.post("/v1/predict", content=body, headers={"content-type": "application/json"})

    def stop(self) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

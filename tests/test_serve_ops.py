"""`qism serve` operated and attacked: bounded requests and connections, workers that die with their
parent, a 413 an ordinary client reads, reloads that drop nothing, metrics, logs, keys. Real servers
on 127.0.0.1; behaviour is checked here, timings in bench/serve_ops.py."""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, assert_user_error, run
from qism.model import load_model
from servers import free_port
from test_serve import ECONOMY, SPORTS, assert_error

JSON = {"content-type": "application/json"}
#: Longest wait for an event (a process gone, a model switched, a log line) before the test fails.
WAIT_SECONDS = 120


def wait_for(event, what: str) -> None:
    """Poll `event` until it is true; fail after WAIT_SECONDS (a bound, not a timing)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not event():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        threading.Event().wait(0.02)


def post(server, body: bytes, **headers) -> httpx.Response:
    return server.client.post("/v1/predict", content=body, headers={**JSON, **headers})


def named(response) -> str:
    """The card checksum of the model that gave an answer, from its X-Qism-Model header."""
    return response.headers["x-qism-model"].split("card-sha256=")[1]


def checksum(model_dir) -> str:
    return load_model(model_dir).card["card_sha256"]


def connect(server, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(data)
    sock.settimeout(60)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Wait for the server to close the connection (EOF or reset); False if it answers instead."""
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


# --- bounded work per request ---------------------------------------------------------------------


def test_a_million_integers_are_refused_by_their_count_not_validated(sample_server):
    body = b'{"inputs": [' + b"1," * 999_999 + b"1]}"
    assert_error(post(sample_server, body), 413, "at most 256 texts per request; this body holds 1,000,000 values")
    assert sample_server.client.get("/healthz").status_code == 200


def test_a_list_just_over_the_batch_limit_is_refused_by_its_length(sample_server):
    assert_error(sample_server.predict([SPORTS] * 300), 413, "at most 256 texts per request; got 300")


def test_an_object_with_more_keys_than_a_request_can_have_is_refused_before_parsing(sample_server):
    body = json.dumps({"inputs": "x", "parameters": {f"key{i}": i for i in range(100_000)}}).encode()
    assert_error(post(sample_server, body), 413, "this body holds 100,001 values or more")


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"inputs": list(range(256))}),
        json.dumps({"inputs": [{"text": "x", "other": 1}] * 256}),
        json.dumps({"inputs": "x", **{f"key{i}": i for i in range(400)}}),
        json.dumps({"inputs": "x", "parameters": {f"key{i}": i for i in range(400)}}),
    ],
)
def test_a_body_wrong_everywhere_gets_a_few_errors_not_one_per_item(sample_server, body):
    response = post(sample_server, body.encode())
    assert_error(response, 422, "does not match")
    assert 1 <= len(response.json()["details"]) <= 5


def test_idle_and_half_sent_connections_are_closed_at_their_deadlines(start, tiny_model_dir):
    server = start("--model", tiny_model_dir, "--header-timeout", 1, "--body-timeout", 2)
    idle = connect(server)
    half_header = connect(server, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")
    half_body = connect(server, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    assert all(closed_by_server(sock) for sock in (idle, half_header, half_body))
    assert server.predict(SPORTS).status_code == 200


def test_one_client_holding_many_connections_locks_no_one_out(start, tiny_model_dir):
    server = start("--model", tiny_model_dir)
    held = [connect(server, b"POST /v1/predict HTTP/1.1\r\n") for _ in range(300)]
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert server.predict([SPORTS, ECONOMY]).status_code == 200
    assert all(closed_by_server(sock) for sock in held[:150])  # the oldest, closed to make room
    for sock in held:
        sock.close()


def test_many_clients_holding_connections_lock_no_one_out(start, tiny_model_dir):
    server = start("--model", tiny_model_dir)
    held = []
    for client in range(2, 14):  # 127.0.0.2 to 127.0.0.13, 95 connections each: 1,140, past uvicorn's 1,000
        for _ in range(95):
            sock = socket.socket()
            sock.bind((f"127.0.0.{client}", 0))
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            held.append(sock)
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # not uvicorn's 503 past 1,000
    assert server.predict(SPORTS).status_code == 200
    assert all(closed_by_server(sock) for sock in held[:40])  # the oldest, whoever's, closed to make room
    for sock in held:
        sock.close()


def test_sigterm_closes_a_half_sent_request_and_stops(start, tiny_model_dir):
    server = start("--model", tiny_model_dir)
    sock = connect(
        server,
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
    )
    assert sock.recv(100).startswith(b"HTTP/1.1 100")  # the application is reading the body
    sock.sendall(b'{"inputs": ')
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(60) in (0, -signal.SIGTERM)
    assert closed_by_server(sock)
    assert "Traceback" not in server.log() and " 500" not in server.log()


# --- workers die with the server; a 413 is read ------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def port_is_free(port: int) -> bool:
    """A new server could listen on it (as servers do, with SO_REUSEADDR: answered connections may linger)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("workers", [1, 4])
def test_kill_9_of_the_server_leaves_no_process_and_frees_the_port(start, tiny_model_dir, workers):
    server = start("--model", tiny_model_dir, "--workers", workers)
    processes = children(server.process.pid)
    assert len(processes) >= (workers if workers > 1 else 0)
    server.process.kill()
    server.process.wait()
    wait_for(lambda: not any(map(running, processes)) and port_is_free(server.port), "the processes to go")


def test_an_oversize_body_from_urllib_gets_a_413_it_reads(sample_server):
    request = urllib.request.Request(f"{sample_server.url}/v1/predict", data=b"x" * 10_000_000, headers=JSON)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=120)
    assert refused.value.code == 413
    assert "2,097,152 bytes" in json.loads(refused.value.read())["error"]


# --- reloads --------------------------------------------------------------------------------------


def point(link: Path, target: Path) -> None:
    """Switch a symbolic link at once, as a deployment does."""
    staging = link.with_name(link.name + ".new")
    staging.symlink_to(target)
    os.replace(staging, link)


class SteadyClient:
    """Requests one after another on a thread until stopped: their statuses and the models named."""

    def __init__(self, server):
        self.server, self.statuses, self.models, self.stop = server, [], [], threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        with httpx.Client(base_url=self.server.url, timeout=60) as client:
            while not self.stop.is_set():
                response = client.post("/v1/predict", json={"inputs": [SPORTS, ECONOMY]})
                self.statuses.append(response.status_code)
                self.models.append(named(response))

    def until(self, model: str, answers: int = 30) -> None:
        """Wait until the last `answers` answers all came from `model`."""
        wait_for(lambda: not self.thread.is_alive() or self.models[-answers:] == [model] * answers, model)

    def end(self) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_the_model_the_link_points_to_and_drops_no_request(
    start, tmp_path, tiny_model_dir, sample_model_dir, workers
):
    link = tmp_path / "current"
    link.symlink_to(tiny_model_dir)
    server = start("--model", link, "--workers", workers)
    steady = SteadyClient(server)
    steady.until(checksum(tiny_model_dir))
    point(link, sample_model_dir)
    server.process.send_signal(signal.SIGHUP)
    steady.until(checksum(sample_model_dir))
    steady.end()
    assert set(steady.statuses) == {200} and set(steady.models) == {
        checksum(tiny_model_dir),
        checksum(sample_model_dir),
    }
    assert server.client.get("/v1/model").json()["card_sha256"] == checksum(sample_model_dir)
    assert server.process.poll() is None


def test_reload_model_follows_the_folder_and_keeps_serving_when_the_new_one_is_broken(
    start, tmp_path, tiny_model_dir, sample_model_dir
):
    link, broken = tmp_path / "current", tmp_path / "broken"
    link.symlink_to(tiny_model_dir)
    shutil.copytree(tiny_model_dir, broken)
    (broken / "arrays.npz").write_bytes(b"not a model")
    server = start("--model", link, "--reload-model")
    point(link, broken)
    wait_for(lambda: "could not be loaded" in server.log(), "the log to say why")
    answer = server.predict(SPORTS)
    assert answer.status_code == 200 and named(answer) == checksum(tiny_model_dir)
    assert "still serving" in server.log()
    steady = SteadyClient(server)
    point(link, sample_model_dir)
    steady.until(checksum(sample_model_dir))
    steady.end()
    assert set(steady.statuses) == {200}


# --- metrics, logs, keys, the address -------------------------------------------------------------


def metric_values(text: str) -> dict:
    """Each sample of a Prometheus text page: (name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_sum_requests_errors_articles_over_workers_and_name_the_model(start, tiny_model_dir):
    server = start("--model", tiny_model_dir, "--workers", 2)
    for _ in range(6):
        assert server.predict([SPORTS, ECONOMY, ""]).status_code == 200
    assert server.predict(5).status_code == 422
    values = metric_values(server.client.get("/metrics").text)
    assert values[("qism_articles_labeled_total", ())] == 18
    assert values[("qism_http_requests_total", (("endpoint", "/v1/predict"), ("status", "200")))] == 6
    assert values[("qism_http_errors_total", (("endpoint", "/v1/predict"), ("status", "422")))] == 1
    assert values[("qism_http_request_seconds_count", (("endpoint", "/v1/predict"),))] == 7
    served = {dict(labels)["card_sha256"] for (name, labels), value in values.items() if name == "qism_model_info"}
    assert served == {checksum(tiny_model_dir)}


def test_api_keys_guard_all_but_health_and_logs_are_json(start, tiny_model_dir, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# rotated monthly\n" + "a" * 32 + "\n" + "b" * 32 + "\n")
    server = start("--model", tiny_model_dir, "--api-key-file", keys, "--log-format", "json", "--access-log")
    body = json.dumps({"inputs": SPORTS}).encode()
    assert_error(post(server, body), 401, "Authorization: Bearer")
    assert post(server, body, authorization="Bearer " + "c" * 32).status_code == 401
    assert post(server, body, authorization="Bearer " + "b" * 32).status_code == 200
    assert server.client.get("/metrics").status_code == 401
    assert server.client.get("/healthz").status_code == 200
    entries = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert {"path": "/v1/predict", "status": 200} in [{k: e.get(k) for k in ("path", "status")} for e in entries]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--host", ""], "--host '' would listen on every interface"),
        (["--api-key-file", "/nonexistent/keys"], "cannot read --api-key-file"),
        (["--log-format", "xml"], "--log-format takes text or json"),
        (["--header-timeout", "0"], "take seconds in (0, 3600]"),
    ],
)
def test_serve_refuses_a_bad_option_in_one_line(args, fragment):
    assert_user_error(run("serve", "--port", free_port(), *args), fragment)


def test_a_key_file_without_a_usable_key_is_refused(tmp_path):
    keys = tmp_path / "keys"
    for content in ("", "# only a comment\n", "short\n"):
        keys.write_text(content)
        result = run("serve", "--port", free_port(), "--api-key-file", keys)
        assert result.exit_code == 1 and "--api-key-file" in result.stderr


def test_listening_beyond_loopback_without_a_key_warns(capsys):
    from qism.serve import checked_host

    assert checked_host("127.0.0.1", ()) == "127.0.0.1" and capsys.readouterr().err == ""
    checked_host("0.0.0.0", ())
    assert "warning: listening on 0.0.0.0 without --api-key-file" in capsys.readouterr().err
    checked_host("0.0.0.0", (b"k" * 32,))
    assert capsys.readouterr().err == ""


def test_the_api_page_needs_nothing_from_outside(sample_server):
    page = sample_server.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/predict" in page.text and "PredictRequest" in page.text
    assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text


# --- deployment files -----------------------------------------------------------------------------


def test_the_systemd_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (ROOT / "deploy" / "qism.service").read_text()
    qism = shutil.which("qism")
    assert "ExecStart=/opt/qism/bin/qism serve" in unit and qism
    (tmp_path / "qism.service").write_text(unit.replace("/opt/qism/bin/qism", qism))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "qism.service")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "qism.service" not in result.stderr, result.stderr


def test_the_dockerfile_builds_where_docker_runs():
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no docker daemon")
    base = (ROOT / "deploy" / "Dockerfile").read_text().split("FROM ", 1)[1].split()[0]
    if subprocess.run([docker, "image", "inspect", base], capture_output=True).returncode != 0:
        pytest.skip(f"the base image {base} is not present locally")
    build = [docker, "build", "--pull=false", "-f", "deploy/Dockerfile", "-t", "qism-test", "."]
    assert subprocess.run(build, cwd=ROOT, capture_output=True).returncode == 0

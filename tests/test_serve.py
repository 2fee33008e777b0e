"""`qism serve`: a real server process on a free port of 127.0.0.1, spoken to over HTTP."""

import json
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import SAMPLE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qism.cli import app
from qism.corpus import replace_lone_surrogates
from qism.model import load_model
from servers import free_port
from typer.testing import CliRunner

runner = CliRunner()
SPORTS = "فاز الفريق بالمباراة وسجل اللاعب هدفين في الدوري"
ECONOMY = "ارتفعت أسعار الأسهم في البورصة وتراجع التضخم"
#: Statuses a malformed request may get: never a 5xx.
CLIENT_ERRORS = {400, 404, 405, 413, 422}
#: How a server that stopped cleanly on SIGTERM exits: uvicorn re-raises the signal once it is done.
STOPPED = (0, -signal.SIGTERM)


def sample_texts(n: int) -> list[str]:
    return [path.read_text(encoding="utf-8") for path in sorted(SAMPLE.rglob("*.txt"))[:n]]


def cli_records(*args) -> list[dict]:
    result = runner.invoke(app, ["predict", "--format", "json", "--quiet", *[str(a) for a in args]])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_error(response, status: int, fragment: str = ""):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert fragment in body["error"], body
    assert "Traceback" not in response.text


# --- records are what `qism predict --format json` prints ---------------------------------------


def test_records_are_those_of_qism_predict(sample_server, sample_model_dir):
    texts = sample_texts(12) + [SPORTS, ECONOMY, "", "   "]
    parameters = {"top_k": 3, "threshold": 0.6, "unknown_label": "review", "explain": 4}
    response = sample_server.predict(texts, **parameters)
    assert response.status_code == 200, response.text
    expected = cli_records(
        *texts,
        "--model",
        sample_model_dir,
        "--top-k",
        3,
        "--threshold",
        0.6,
        "--unknown-label",
        "review",
        "--explain",
        4,
    )
    assert response.json() == {"predictions": expected}
    assert {record["label"] for record in expected} >= {"review"}  # the threshold and empty texts did act


def test_records_with_ids_are_those_of_qism_predict_on_a_jsonl_file(sample_server, sample_model_dir, tmp_path):
    articles = [
        {"id": 7, "text": SPORTS},
        {"id": "b-2", "text": ECONOMY},
        {"id": "empty", "text": ""},
        {"text": SPORTS + " " + ECONOMY},
        {"id": "surrogate", "text": "\ud800" + SPORTS},
    ]
    source = tmp_path / "articles.jsonl"
    source.write_text("".join(json.dumps(article) + "\n" for article in articles), encoding="utf-8")
    response = sample_server.client.post(
        "/v1/predict",
        content=json.dumps({"inputs": articles, "parameters": {"top_k": 2}}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == cli_records("--input", source, "--model", sample_model_dir, "--top-k", 2)


def test_one_text_gives_one_record_and_default_parameters_are_predicts(sample_server, sample_model_dir):
    response = sample_server.predict(SPORTS)
    assert response.status_code == 200
    assert response.json()["predictions"] == cli_records(SPORTS, "--model", sample_model_dir)


def test_model_card_health_readiness_and_docs(sample_server, sample_model_dir):
    client = sample_server.client
    assert client.get("/v1/model").json() == load_model(sample_model_dir).card
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["labels"] == load_model(sample_model_dir).labels
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/model", "/healthz", "/readyz"} <= set(schema["paths"])
    assert "PredictRequest" in json.dumps(schema["paths"]["/v1/predict"])


def test_default_model_serves_what_qism_predict_prints(start):
    server = start()
    texts = [SPORTS, ECONOMY, ""]
    response = server.predict(texts, top_k=3, explain=3)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == cli_records(*texts, "--top-k", 3, "--explain", 3)


# --- limits: a clear JSON error, never a 5xx or a traceback --------------------------------------


def test_body_over_the_limit_is_413_whether_its_length_is_declared_or_not(sample_server):
    big = json.dumps({"inputs": ["ن" * 1_200_000]}).encode()  # 2.4 MB of UTF-8
    assert_error(
        sample_server.client.post("/v1/predict", content=big, headers={"content-type": "application/json"}),
        413,
        "2,097,152 bytes",
    )

    def chunks():  # no Content-Length: chunked transfer encoding
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    assert_error(
        sample_server.client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "bytes",
    )
    assert sample_server.predict(SPORTS).status_code == 200  # and the server goes on


def test_batch_over_256_texts_is_413(sample_server):
    assert_error(sample_server.predict([SPORTS] * 257), 413, "at most 256 texts")
    assert sample_server.predict([SPORTS] * 256).status_code == 200


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b'{"inputs": [', "not valid JSON"),
        (b"\xff\xfe not even text", ""),
        (b"[" * 100_000, ""),
        (b'"just a string"', "does not match"),
        (b'{"inputs": 5}', "does not match"),
        (b'{"inputs": [1, 2]}', "does not match"),
        (b'{"inputs": [{"text": 5}]}', "does not match"),
        (b'{"inputs": [{"id": 1.5, "text": "x"}]}', "does not match"),
        (b'{"inputs": [{"txt": "x"}]}', "does not match"),
        (b'{"inputs": "x", "parameters": {"top_k": "3"}}', "does not match"),
        (b'{"inputs": "x", "parameters": {"top_k": true}}', "does not match"),
        (b'{"inputs": "x", "parameters": {"topk": 3}}', "does not match"),
        (b'{"inputs": "x", "parameters": {"top_k": 0}}', "top_k takes a whole number from 1"),
        (b'{"inputs": "x", "parameters": {"top_k": 1001}}', "top_k takes a whole number from 1 to 1,000"),
        (b'{"inputs": "x", "parameters": {"threshold": 1.5}}', "threshold takes a number in [0, 1]"),
        (b'{"inputs": "x", "parameters": {"threshold": NaN}}', ""),
        (b'{"inputs": "x", "parameters": {"top_k": ' + b"9" * 5000 + b"}}", ""),
        (b'{"inputs": "x", "parameters": {"explain": -1}}', "explain takes a whole number from 0"),
        (b'{"inputs": "x", "parameters": {"explain": 101}}', "explain takes a whole number from 0 to 100"),
        (b'{"inputs": "x", "parameters": {"unknown_label": " "}}', "unknown_label takes a name"),
        (
            '{"inputs": "x", "parameters": {"unknown_label": "رياضة"}}'.encode(),
            "unknown_label must be a name the model does not use",
        ),
        (b'{"inputs": "x", "parameters": {"unknown_label": "' + b"x" * 201 + b'"}}', "does not match"),
    ],
)
def test_malformed_bodies_and_out_of_range_parameters_are_4xx(sample_server, body, fragment):
    response = sample_server.client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert_error(response, response.status_code, fragment)


def test_a_body_sent_without_json_content_type_is_told_how(sample_server):
    response = sample_server.client.post(
        "/v1/predict",
        content=json.dumps({"inputs": SPORTS}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 422, "Content-Type: application/json")


def test_unknown_paths_and_methods_answer_json(sample_server):
    assert_error(sample_server.client.get("/v2/nothing"), 404)
    assert_error(sample_server.client.get("/v1/predict"), 405)


#: Any text, lone surrogates included (JSON carries them as escapes such as \ud800).
ANY_CHARACTER = st.characters(exclude_categories=())
TEXTS = st.text(ANY_CHARACTER)
KEYS = st.text(ANY_CHARACTER, max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXTS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
PARAMETERS = st.dictionaries(
    st.sampled_from(["top_k", "threshold", "unknown_label", "explain", "other"]),
    JSON_VALUES | st.integers(-(10**30), 10**30) | st.floats(-2, 2),
    max_size=5,
)
INPUTS = (
    JSON_VALUES
    | TEXTS
    | st.lists(TEXTS, max_size=6)
    | st.lists(st.fixed_dictionaries({"text": TEXTS}, optional={"id": JSON_VALUES}), max_size=6)
)
REQUESTS = st.tuples(
    st.fixed_dictionaries({}, optional={"inputs": INPUTS, "parameters": PARAMETERS | JSON_VALUES}),
    st.dictionaries(KEYS, JSON_VALUES, max_size=2),
).map(lambda parts: {**parts[1], **parts[0]})
BODIES = (
    st.binary(max_size=300)
    | JSON_VALUES.map(lambda value: json.dumps(value).encode())
    | REQUESTS.map(lambda value: json.dumps(value).encode())
)


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(body=BODIES, content_type=st.sampled_from(["application/json", "text/plain", None]))
def test_no_body_gets_a_5xx_or_a_traceback(sample_server, body, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = sample_server.client.post("/v1/predict", content=body, headers=headers)
    assert response.status_code == 200 or response.status_code in CLIENT_ERRORS, response.text
    answer = response.json()
    assert "Traceback" not in response.text
    assert ("predictions" in answer) if response.status_code == 200 else isinstance(answer["error"], str)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    articles=st.lists(
        st.fixed_dictionaries(
            {"id": st.text(ANY_CHARACTER, max_size=10), "text": st.text(ANY_CHARACTER, max_size=300)}
        ),
        min_size=1,
        max_size=8,
    ),
    top_k=st.integers(1, 20),
    explain=st.integers(0, 5),
)
def test_any_texts_get_one_record_each_in_order(sample_server, articles, top_k, explain):
    response = sample_server.predict(articles, top_k=top_k, explain=explain)
    assert response.status_code == 200, response.text
    records = response.json()["predictions"]
    assert [record["id"] for record in records] == [replace_lone_surrogates(article["id"]) for article in articles]
    labels = sample_server.client.get("/readyz").json()["labels"]
    assert all(len(record["top"]) == min(top_k, len(labels)) or record.get("reason") for record in records)


# --- overload, stopping, workers ------------------------------------------------------------------


def heavy_request(server, texts: int = 128) -> httpx.Response:
    """Long texts with explanations: a request that keeps the sample model busy for a while."""
    long_text = " ".join(sample_texts(40))[:3500]
    body = json.dumps({"inputs": [long_text] * texts, "parameters": {"explain": 10}}, ensure_ascii=False)
    return httpx.post(
        f"{server.url}/v1/predict", content=body.encode(), timeout=120, headers={"content-type": "application/json"}
    )


def test_overload_is_503_with_retry_after_not_a_queue(start, sample_model_dir):
    server = start("--model", sample_model_dir, "--max-pending", 1)
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: heavy_request(server), range(12)))
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    busy = next(response for response in responses if response.status_code == 503)
    assert_error(busy, 503, "busy")
    assert busy.headers["retry-after"] == "1"
    assert server.predict(SPORTS).status_code == 200


def test_sigterm_lets_the_request_in_flight_finish(start, sample_model_dir):
    server = start("--model", sample_model_dir, "--max-pending", 1)

    def small_request_is_refused() -> bool:
        return httpx.post(f"{server.url}/v1/predict", json={"inputs": "x"}).status_code == 503

    with ThreadPoolExecutor(1) as pool:
        for _ in range(10):  # the heavy request is refused if it comes while a small one is labeled: again
            in_flight = pool.submit(heavy_request, server)
            # the worker holds one request at most: a small one refused means the heavy one is being labeled
            while not in_flight.done() and not small_request_is_refused():
                pass
            if not in_flight.done():
                break
            assert in_flight.result().status_code == 503, "the heavy request finished before it was seen in flight"
        server.process.send_signal(signal.SIGTERM)
        response = in_flight.result()
    assert response.status_code == 200 and len(response.json()["predictions"]) == 128
    assert server.process.wait(30) in STOPPED
    assert "Application shutdown complete" in server.log()


def test_several_workers_serve_and_stop_on_sigterm(start, tiny_model_dir):
    server = start("--model", tiny_model_dir, "--workers", 2)
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: server.predict([SPORTS, ECONOMY]), range(8)))
    assert all(response.status_code == 200 for response in responses)
    assert responses[0].json()["predictions"] == cli_records(SPORTS, ECONOMY, "--model", tiny_model_dir)
    assert server.stop() in STOPPED


# --- the command ------------------------------------------------------------------------------


def test_a_bad_model_folder_is_one_line_before_serving(tmp_path):
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "missing"), "--port", str(free_port())])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no model folder" in lines[0] and "Traceback" not in result.output


def test_without_the_serve_extra_the_cli_works_and_serve_names_the_extra():
    without_fastapi = "import sys; sys.modules['fastapi'] = None; from qism.cli import app; app()"
    result = subprocess.run([sys.executable, "-c", without_fastapi, "serve"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "qism: error: qism serve needs FastAPI and uvicorn (fastapi is missing): pip install 'qism[serve]'"
    ]
    assert subprocess.run([sys.executable, "-c", without_fastapi, "--help"], capture_output=True).returncode == 0
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, qism.cli; print('fastapi' in sys.modules)"], capture_output=True, text=True
    )
    assert imported.stdout.strip() == "False"

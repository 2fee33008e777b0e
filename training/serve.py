"""qism over HTTP: a CMS or a wire ingester posts articles and gets back their sections.

A face like the command line: it parses a request, calls `label_documents` and returns its
records, exactly what `qism predict --format json` prints. Each worker process loads the model
once and reloads it in place (SIGHUP, or a changed folder with `reload_model`); every answer names
the model that gave it. Parsing, validating and labeling run on a worker thread, so the event loop
keeps answering health checks. Every request is bounded before any work on it: its body's size, its
lists' lengths (checked before validation, which reports a few errors at most), the time its client
takes to send it (serve_connections), and the work a worker holds: past `max_pending` requests it
answers 503 with Retry-After instead of queueing without end.
"""

from __future__ import annotations

import asyncio
import fcntl
import hmac
import html
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import QismError

try:
    import anyio
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
except ImportError as err:
    raise QismError(
        f"qism serve needs FastAPI and uvicorn ({err.name} is missing): pip install 'qism[serve]'"
    ) from None

from .card import qism_version
from .config import LabelOptions
from .corpus import Document, replace_lone_surrogates
from .model import Model, load_model
from .predict import label_documents
from .serve_connections import BODY_SECONDS, HEADER_SECONDS, IDLE_SECONDS, GuardedHTTPProtocol, set_timeouts
from .serve_metrics import MULTIPROCESS_ENV, Metrics
from .serve_workers import LOG_FORMATS, die_with_parent, log_config, run_workers

#: A request body larger than this is refused (413) before it is read whole.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: Texts one request may carry; more is refused (413).
MAX_BATCH = 256
#: Requests one worker holds at once, labeling or waiting for a thread; past it, 503.
MAX_PENDING = 64
#: Threads per worker that label: two, so one article need not wait for a batch to finish;
#: featurizing holds the GIL most of the time, so more would only queue.
LABELING_THREADS = 2
#: Longest `unknown_label`: it is copied into every record, so it must not multiply a body's size.
MAX_LABEL_CHARS = 200
#: Connections (open, idle or not) one worker keeps at once; uvicorn answers 503 past it.
MAX_CONNECTIONS = 1000
#: Seconds the supervisor of `--workers` waits for a worker to answer before it restarts it: a worker
#: on a busy machine can take longer than uvicorn's 5 s to import its packages and load the model.
WORKER_HEALTHCHECK_SECONDS = 60
#: `--header-timeout` and `--body-timeout` when not given.
DEFAULT_TIMEOUTS = (HEADER_SECONDS, BODY_SECONDS)
#: Seconds a stopping server waits for requests in flight (those still being sent are closed at once).
GRACEFUL_SHUTDOWN_SECONDS = 10
#: How `qism serve` tells each uvicorn worker process its options (model folder, limits, key file).
OPTIONS_ENV = "QISM_SERVE_OPTIONS"
#: Validation errors a 422 lists: enough to fix a body, never one per item of a long list.
MAX_ERRORS_REPORTED = 5
#: The header of every answer that names the model which gave it.
MODEL_HEADER = "x-qism-model"
#: Endpoints open without an API key (a load balancer's and a supervisor's checks).
OPEN_ENDPOINTS = frozenset({"/healthz", "/readyz"})
#: Pages open without an API key: they hold nothing of the server's; what they ask for needs the key.
OPEN_PAGES = frozenset({"/", "/docs", "/openapi.json"})
#: Endpoints counted by name in /metrics; any other path counts as "other".
ENDPOINTS = (
    frozenset({"/v1/predict", "/v1/model", "/v1/corrections", "/v1/editor", "/metrics", "/docs", "/openapi.json", "/"})
    | OPEN_ENDPOINTS
)
#: Seconds between two looks at the model folder with `reload_model`.
RELOAD_POLL_SECONDS = 1.0
#: Largest API key file read, and the shortest key accepted in it.
MAX_KEY_FILE_BYTES = 64 * 1024
MIN_KEY_CHARS = 16

log = logging.getLogger("qism.serve")


# --- the request and response bodies ------------------------------------------------------------


class Article(BaseModel):
    """One article, with the id its record carries back."""

    model_config = ConfigDict(extra="forbid")
    id: StrictStr | StrictInt | None = None
    text: StrictStr


class Parameters(BaseModel):
    """How to label, as `qism predict`'s options of the same names."""

    model_config = ConfigDict(extra="forbid")
    top_k: StrictInt = Field(LabelOptions.top_k, description="How many labels to give per article, best first")
    threshold: StrictInt | StrictFloat = Field(
        LabelOptions.threshold, description="Below this best probability the label is unknown_label"
    )
    unknown_label: StrictStr = Field(
        LabelOptions.unknown_label,
        max_length=MAX_LABEL_CHARS,
        description="The label of articles below threshold, or without text",
    )
    explain: StrictInt = Field(
        LabelOptions.explain, description="How many terms that pushed each article towards its label to list"
    )


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: StrictStr | list[StrictStr] | list[Article] = Field(
        description=f"One text, a list of texts, or a list of {{id, text}} objects; at most {MAX_BATCH}"
    )
    parameters: Parameters = Field(default_factory=Parameters)


class Scored(BaseModel):
    label: str
    label_ar: str | None = None
    score: float


class Term(BaseModel):
    term: str
    weight: float


class Record(BaseModel):
    """What `qism predict --format json` prints for one article."""

    id: str | None = None
    label: str
    label_ar: str | None = None
    #: A multi-label model's chosen labels, best first, and their display names.
    labels: list[str] | None = None
    labels_ar: list[str] | None = None
    top: list[Scored]
    terms: list[Term] | None = None
    reason: str | None = None


class PredictResponse(BaseModel):
    predictions: list[Record]


class ErrorResponse(BaseModel):
    error: str
    details: list[dict[str, Any]] | None = None


# --- turning a request into library calls ------------------------------------------------------


def documents_of(inputs: str | list[str] | list[Article]) -> list[Document]:
    """The documents a request names, in order. Lone surrogates (JSON escapes such as \\ud800) become
    U+FFFD, as when `qism predict` reads a file, so every record can be written as UTF-8."""
    if isinstance(inputs, str):
        inputs = [inputs]
    return [
        Document(text=replace_lone_surrogates(item))
        if isinstance(item, str)
        else Document(
            text=replace_lone_surrogates(item.text),
            id=None if item.id is None else replace_lone_surrogates(str(item.id)),
        )
        for item in inputs
    ]


#: The command-line names LabelOptions' messages use, and the request's names for the same options.
_PARAMETER_NAMES = {
    "--top-k": "top_k",
    "--threshold": "threshold",
    "--unknown-label": "unknown_label",
    "--explain": "explain",
}


def label_options(parameters: Parameters, model: Model) -> LabelOptions:
    """The request's parameters, checked by `LabelOptions` as `qism predict`'s options are; its
    messages name them as the request does."""
    try:
        options = LabelOptions(
            top_k=parameters.top_k,
            threshold=parameters.threshold,
            unknown_label=replace_lone_surrogates(parameters.unknown_label),
            explain=parameters.explain,
        )
        options.check_against(model.labels)
    except QismError as err:
        message = str(err)
        for option, name in _PARAMETER_NAMES.items():
            message = message.replace(option, name)
        raise QismError(message) from None
    return options


def predictions_body(model: Model, documents: list[Document], options: LabelOptions) -> bytes:
    """The response body: the records of `label_documents`, encoded (on the labeling thread too)."""
    records = list(label_documents(model, documents, options, batch_size=max(1, len(documents))))
    return json.dumps({"predictions": records}, ensure_ascii=False).encode("utf-8")


class Refused(Exception):
    """A request refused before labeling: its status, message and where the body is wrong."""

    def __init__(self, status: int, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


SCHEMA_MISMATCH = "the body does not match the schema of this endpoint (see /docs)"


def _detail(location, message: str) -> dict:
    """Where and why the body does not fit, without echoing its content back (a location can name a key
    of the body, so lone surrogates become U+FFFD)."""
    return {"location": replace_lone_surrogates(str(location)), "message": replace_lone_surrogates(message)}


def _only_known_keys(payload: dict, schema: type[BaseModel], where: str) -> None:
    unknown = [key for key in payload if key not in schema.model_fields]
    if unknown:
        details = [_detail(f"{where}{key}", "Extra inputs are not permitted") for key in unknown]
        raise Refused(422, SCHEMA_MISMATCH, details[:MAX_ERRORS_REPORTED])


def check_bounds(payload: Any) -> None:
    """Before validation: no list longer and no object wider than the schema allows, so validating
    costs at most MAX_BATCH items' worth, however the body is built."""
    if not isinstance(payload, dict):
        return
    _only_known_keys(payload, PredictRequest, "")
    inputs = payload.get("inputs")
    if isinstance(inputs, list):
        if len(inputs) > MAX_BATCH:
            raise Refused(413, f"at most {MAX_BATCH} texts per request; got {len(inputs)}")
        for at, item in enumerate(inputs):
            if isinstance(item, dict):
                _only_known_keys(item, Article, f"inputs.{at}.")
    if isinstance(payload.get("parameters"), dict):
        _only_known_keys(payload["parameters"], Parameters, "parameters.")


#: A JSON string, escapes included (the unrolled form: one tight loop per run of plain characters).
JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
#: Commas outside strings a request can hold: MAX_BATCH {id, text} objects, two top keys, four parameters.
MAX_STRUCTURAL_COMMAS = 2 * MAX_BATCH + 8


def commas_over(body: bytes, limit: int) -> int:
    """The commas outside the body's strings when they are over `limit`, else 0: counted in C before
    parsing, so no body makes the parser build millions of objects while it holds the interpreter's lock."""
    if body.count(b",") <= limit:
        return 0
    # without a backslash no string holds an escaped quote: the parts between quotes alternate
    outside_strings = JSON_STRING.sub(b"", body) if b"\\" in body else b"".join(body.split(b'"')[::2])
    commas = outside_strings.count(b",")
    return commas if commas > limit else 0


def parse_request(body: bytes) -> PredictRequest:
    """The request a body holds, its size checked before it is parsed and before it is validated."""
    if commas := commas_over(body, MAX_STRUCTURAL_COMMAS):
        raise Refused(413, f"at most {MAX_BATCH} texts per request; this body holds {commas + 1:,} values or more")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise Refused(422, "the body is not valid JSON", [_detail("body", str(err)[:200])]) from None
    check_bounds(payload)
    try:
        return PredictRequest.model_validate(payload)
    except ValidationError as err:
        errors = err.errors(include_url=False, include_context=False, include_input=False)
        details = [_detail(".".join(map(str, error["loc"])), error["msg"]) for error in errors]
        raise Refused(422, SCHEMA_MISMATCH, details[:MAX_ERRORS_REPORTED]) from None


def answer(model: Model, body: bytes) -> tuple[bytes, int]:
    """A predict request's answer and its number of articles: all its work, on a labeling thread."""
    request = parse_request(body)
    documents = documents_of(request.inputs)
    try:
        options = label_options(request.parameters, model)
    except QismError as err:
        raise Refused(422, str(err)) from None
    return predictions_body(model, documents, options), len(documents)


# --- errors: always a JSON body, never a traceback ----------------------------------------------


def error_response(status: int, message: str, details: list | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"error": message} if details is None else {"error": message, "details": details}
    return JSONResponse(body, status_code=status, headers=headers)


async def _on_validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
    details = [_detail(".".join(map(str, e.get("loc", ()))), str(e.get("msg", ""))) for e in err.errors()]
    return error_response(422, SCHEMA_MISMATCH, details[:MAX_ERRORS_REPORTED])


async def _on_http_error(request: Request, err: HTTPException) -> JSONResponse:
    return error_response(err.status_code, str(err.detail), headers=getattr(err, "headers", None))


async def _on_unexpected_error(request: Request, err: Exception) -> JSONResponse:
    log.exception("error while answering %s %s", request.method, request.url.path)
    return error_response(500, "internal error; the server log has the details")


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413: at once when its Content-Length says so,
    else as soon as the bytes read pass it (chunked uploads), so it is never held whole. The
    connection then reads and drops the rest of the body, within bounds, so the client reads the 413
    (serve_connections)."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            response = error_response(
                413 if length.isdigit() else 400,
                f"the body is over {self.limit:,} bytes" if length.isdigit() else "bad Content-Length",
            )
            return await response(scope, receive, send)
        received = 0

        async def receive_within_limit():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, f"the body is over {self.limit:,} bytes")
            return message

        await self.app(scope, receive_within_limit, send)


# --- the model served, reloaded in place ------------------------------------------------------


def model_identity(model: Model) -> tuple[str, str]:
    """A model's name and card checksum: what names it in answers and in /metrics."""
    return str(model.card.get("name") or ""), str(model.card.get("card_sha256") or "")


def folder_signature(source: str | None) -> tuple | None:
    """What changes when a model folder, or the link to it, is replaced: its real path and its files' times."""
    if not source:
        return None
    real = os.path.realpath(source)
    try:
        with os.scandir(real) as entries:
            return real, tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries))
    except OSError:
        return real, None


class ServedModel:
    """The model a worker serves. A reload loads the new one on a thread and swaps it in between two
    requests: a request answers with the model it started with, and names it. A model that fails to
    load leaves the old one serving; the log says why."""

    def __init__(self, source: str | None, model: Model, metrics: Metrics):
        self.source, self.metrics, self.loading, self.asked_again = source, metrics, False, None
        self.signature = folder_signature(source)
        self.use(model)

    def use(self, model: Model) -> None:
        model.set_jobs(1)  # a request is at most MAX_BATCH texts: forking workers costs more
        old = getattr(self, "identity", None)
        self.model, self.identity = model, model_identity(model)
        name, checksum = self.identity
        self.header = f"{quote(name[:MAX_LABEL_CHARS], safe='')}; card-sha256={checksum[:64]}".encode("latin-1")
        self.metrics.serving(old, self.identity)

    async def reload(self, why: str) -> None:
        """Load the model again; a reload asked for while one runs (the link moved again) follows it."""
        if self.loading:
            self.asked_again = why
            return
        self.loading = True
        try:
            while why:
                self.asked_again = None
                await self.load(why)
                why = self.asked_again
        finally:
            self.loading = False

    async def load(self, why: str) -> None:
        try:
            model = await anyio.to_thread.run_sync(load_model, self.source)
        except Exception as err:  # whatever a half-written folder gives: the old model stays
            log.error("%s: the model could not be loaded, still serving %s: %s", why, self.described(), err)
            return
        self.use(model)
        log.info("%s: now serving %s", why, self.described())

    def described(self) -> str:
        name, checksum = self.identity
        return f"{name or 'a model without a name'} (card {checksum[:12]})"

    async def watch(self) -> None:
        """Reload when the folder, or where its link points, changes (`reload_model`)."""
        while True:
            await asyncio.sleep(RELOAD_POLL_SECONDS)
            signature = await anyio.to_thread.run_sync(folder_signature, self.source)
            if signature != self.signature:
                self.signature = signature
                await self.reload("the model folder changed")


# --- what every request passes: a key, metrics, the model's name --------------------------------


def read_api_keys(path: str | os.PathLike) -> tuple[bytes, ...]:
    """The keys of an API key file: one a line, blank lines and # comments skipped."""
    try:
        with open(path, "rb") as file:
            content = file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as err:
        raise QismError(f"cannot read --api-key-file {path}: {err.strerror or err}") from None
    if len(content) > MAX_KEY_FILE_BYTES:
        raise QismError(f"--api-key-file {path} is over {MAX_KEY_FILE_BYTES:,} bytes: is it the right file?")
    lines = [line.strip() for line in content.splitlines()]
    keys = tuple(line for line in lines if line and not line.startswith(b"#"))
    if not keys:
        raise QismError(f"--api-key-file {path} holds no key (one a line)")
    if any(len(key) < MIN_KEY_CHARS or not key.isascii() or b" " in key for key in keys):
        raise QismError(f"--api-key-file {path}: each key must be at least {MIN_KEY_CHARS} ASCII characters, no spaces")
    return keys


def has_key(scope, keys: tuple[bytes, ...]) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return scheme.lower() == b"bearer" and any(hmac.compare_digest(token.strip(), key) for key in keys)
    return False


class Operated:
    """Around every request: the API key checked (health endpoints open), the model that answered named
    in a header, the request counted and timed for /metrics."""

    def __init__(self, app, metrics: Metrics, keys: tuple[bytes, ...]):
        self.app, self.metrics, self.keys = app, metrics, keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        served = getattr(scope["app"].state, "served", None)

        async def send_named(message):
            nonlocal status
            if message["type"] == "http.response.start" and served is not None:
                status = message["status"]
                named = scope.get("state", {}).get("model_header", served.header)
                message["headers"] = [*message.get("headers", ()), (MODEL_HEADER.encode(), named)]
            await send(message)

        try:
            if self.keys and endpoint not in OPEN_ENDPOINTS | OPEN_PAGES and not has_key(scope, self.keys):
                message = "this server needs an API key: send Authorization: Bearer KEY"
                refusal = error_response(401, message, headers={"WWW-Authenticate": "Bearer"})
                return await refusal(scope, receive, send_named)
            await self.app(scope, receive, send_named)
        finally:
            self.metrics.observe(endpoint, status, time.perf_counter() - started)


# --- the API page, served from here: it works offline --------------------------------------------


def with_request_schema(app: FastAPI) -> None:
    """/v1/predict parses its body itself (bounded); its schema is still the API's."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            request = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(request.pop("$defs", {}), PredictRequest=request)
            body = {"$ref": "#/components/schemas/PredictRequest"}
            schema["paths"]["/v1/predict"]["post"]["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body}},
            }
        return app.openapi_schema

    app.openapi = openapi


def docs_page(schema: dict) -> str:
    """A plain page of the API: each endpoint, what it does, what it takes and answers (no script)."""
    parts = [f"<h1>{html.escape(schema['info']['title'])} {html.escape(schema['info']['version'])}</h1>"]
    parts.append('<p>The machine-readable schema: <a href="/openapi.json">/openapi.json</a>.</p>')
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            parts.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>")
            parts.append(f"<p>{html.escape(operation.get('description') or operation.get('summary') or '')}</p>")
            for status, response in operation.get("responses", {}).items():
                parts.append(f"<p><b>{html.escape(status)}</b>: {html.escape(response.get('description', ''))}</p>")
    parts.append("<h2>Schemas</h2>")
    for name, definition in schema.get("components", {}).get("schemas", {}).items():
        parts.append(f"<h3>{html.escape(name)}</h3><pre>{html.escape(json.dumps(definition, indent=2))}</pre>")
    style = "body{font-family:sans-serif;max-width:60em;margin:auto}pre{background:#f4f4f4;padding:1em}"
    return f"<!doctype html><meta charset=utf-8><title>qism API</title><style>{style}</style>{''.join(parts)}"


# --- the editor's page and its corrections -------------------------------------------------------

#: The editor's page (Arabic, right to left, no resource from outside the machine).
EDITOR_PAGE = Path(__file__).with_name("editor.html")
#: A corrections file stops growing here: each line is at most a request body.
MAX_CORRECTIONS_BYTES = 2**30
MAX_TITLE_CHARS = 2000


class Correction(BaseModel):
    """An editor's correction: the article and the section it belongs to."""

    model_config = ConfigDict(extra="forbid")
    id: StrictStr | StrictInt | None = None
    title: StrictStr | None = Field(None, max_length=MAX_TITLE_CHARS)
    text: StrictStr = Field(min_length=1)
    label: StrictStr = Field(min_length=1, max_length=MAX_LABEL_CHARS, description="The section's id")


class CorrectionsFile:
    """Corrections appended to a JSON Lines file that `qism train --base` reads as labeled articles:
    `{"id", "title"?, "text", "label", "guess", "time"}`, one a line. Each line is one write under an
    exclusive lock (workers share the file), after a newline if a crash left the last line unfinished;
    the file is never rewritten, and stops growing at MAX_CORRECTIONS_BYTES."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.path.abspath(path)
        if os.path.lexists(self.path) and not os.path.isfile(self.path):
            raise QismError(f"--corrections {path} is not a file")
        if not os.path.isdir(os.path.dirname(self.path)):
            raise QismError(f"--corrections {path}: no folder {os.path.dirname(self.path)}")

    def record(self, model: Model, body: bytes) -> dict:
        """Parse, check, label (the model's guess) and append one correction; on a labeling thread."""
        if commas_over(body, len(Correction.model_fields)):
            raise Refused(422, "the body is not a correction {id, title?, text, label}: it holds more values")
        try:
            correction = Correction.model_validate(json.loads(body))
        except (ValueError, RecursionError) as err:
            details = err.errors(include_url=False, include_input=False) if isinstance(err, ValidationError) else []
            found = [_detail(".".join(map(str, e["loc"])), e["msg"]) for e in details]
            raise Refused(422, "the body is not a correction {id, title?, text, label}", found[:5]) from None
        text = replace_lone_surrogates(correction.text)
        guess = next(iter(label_documents(model, [Document(text=text)], LabelOptions())))["label"]
        record = {"id": None if correction.id is None else replace_lone_surrogates(str(correction.id))}
        if correction.title is not None:
            record["title"] = replace_lone_surrogates(correction.title)
        record |= {"text": text, "label": replace_lone_surrogates(correction.label), "guess": guess}
        self.append({**record, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        return {key: value for key, value in record.items() if key != "text"}

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            size = os.fstat(descriptor).st_size
            if size + len(line) > MAX_CORRECTIONS_BYTES:
                raise Refused(507, f"the corrections file is full ({MAX_CORRECTIONS_BYTES:,} bytes): start a new one")
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                line = b"\n" + line
            while line:
                line = line[os.write(descriptor, line) :]
        finally:
            os.close(descriptor)


# --- the application ---------------------------------------------------------------------------


def create_app(
    model: Model | str | os.PathLike | None = None,
    max_pending: int = MAX_PENDING,
    *,
    api_keys: tuple[bytes, ...] = (),
    reload_model: bool = False,
    source: str | None = None,
    corrections: str | os.PathLike | None = None,
) -> FastAPI:
    """The HTTP application for `model` (a loaded model, a model folder, or None: the default model),
    loaded when the application starts, once per worker process. A reload reads `source`, else the
    folder `model` names."""
    if not isinstance(model, Model) and model is not None:
        source = os.fspath(model)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.served = ServedModel(source, model if isinstance(model, Model) else load_model(source), metrics)
        app.state.threads = anyio.CapacityLimiter(LABELING_THREADS)
        app.state.pending = 0
        async with anyio.create_task_group() as tasks:
            _reload_on_sighup(app.state.served, tasks)
            if reload_model and source:
                tasks.start_soon(app.state.served.watch)
            yield
            tasks.cancel_scope.cancel()
        metrics.worker_stopped()

    app = FastAPI(
        title="qism",
        summary="Label Arabic news articles with their section",
        version=qism_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(Operated, metrics=metrics, keys=api_keys)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
    _add_routes(app, max_pending, metrics)
    _add_editor(app, CorrectionsFile(corrections) if corrections is not None else None)
    with_request_schema(app)
    return app


def _reload_on_sighup(served: ServedModel, tasks) -> None:
    """SIGHUP reloads the model (`systemctl reload`); the supervisor of `--workers` passes it on."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: tasks.start_soon(served.reload, "SIGHUP"))
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no SIGHUP here
        pass


def _add_routes(app: FastAPI, max_pending: int, metrics: Metrics) -> None:
    errors = {
        status: {"model": ErrorResponse, "description": description}
        for status, description in {
            401: "no API key, or a wrong one (when the server has --api-key-file)",
            413: f"body over {MAX_BODY_BYTES:,} bytes or more than {MAX_BATCH} texts",
            422: "malformed JSON, wrong types or parameters out of range",
            503: "the server is busy: retry after the seconds Retry-After says",
        }.items()
    }

    @app.post("/v1/predict", response_model=PredictResponse, responses=errors)
    async def predict(request: Request):
        """Label one article or a batch: one record per text, in input order, as `qism predict --format json`.
        The header X-Qism-Model names the model that answered: its name and card checksum."""
        state = request.app.state
        if "json" not in request.headers.get("content-type", "json"):
            return error_response(422, "send the body as JSON, with the header Content-Type: application/json")
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(status_code=400)  # no one is left to read it
        if state.pending >= max_pending:
            return error_response(503, "the server is busy; retry shortly", headers={"Retry-After": "1"})
        served = state.served
        model, request.state.model_header = served.model, served.header
        state.pending += 1
        try:
            content, articles = await anyio.to_thread.run_sync(answer, model, body, limiter=state.threads)
        except Refused as refusal:
            return error_response(refusal.status, refusal.message, refusal.details)
        finally:
            state.pending -= 1
        metrics.articles.inc(articles)
        return Response(content, media_type="application/json")

    @app.get("/v1/model")
    async def model_card(request: Request) -> dict:
        """The model's card: its name, card_sha256, labels, training data, configuration and held-out scores."""
        return request.app.state.served.model.card

    @app.get("/healthz")
    async def healthz() -> dict:
        """The process answers."""
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz(request: Request):
        """The model is loaded and requests can be labeled."""
        served = getattr(request.app.state, "served", None)
        if served is None:
            return error_response(503, "the model is not loaded yet")
        return {"status": "ready", "labels": served.model.labels}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        content, media_type = metrics.exposition()
        return Response(content, media_type=media_type)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()))


def _add_editor(app: FastAPI, corrections: CorrectionsFile | None) -> None:
    page = EDITOR_PAGE.read_bytes()

    @app.get("/", include_in_schema=False)
    async def editor() -> HTMLResponse:
        """The editor's page: paste or upload articles, see their sections, correct them."""
        return HTMLResponse(page)

    @app.get("/v1/editor")
    async def editor_settings() -> dict:
        """What the editor's page may do here: keep corrections (the server has --corrections FILE)."""
        return {"corrections": corrections is not None}

    @app.post("/v1/corrections", responses={404: {"description": "the server keeps no corrections"}})
    async def correct(request: Request):
        """Append an editor's correction {id, title?, text, label} to the corrections file, with the
        model's guess and the time; answers the line written, without its text."""
        if corrections is None:
            return error_response(404, "this server keeps no corrections: start it with --corrections FILE")
        body = await request.body()
        state = request.app.state
        model, request.state.model_header = state.served.model, state.served.header
        try:
            return await anyio.to_thread.run_sync(corrections.record, model, body, limiter=state.threads)
        except Refused as refusal:
            return error_response(refusal.status, refusal.message, refusal.details)


def app_from_environment() -> FastAPI:
    """The application each uvicorn worker builds (`--factory`), with the options in $QISM_SERVE_OPTIONS;
    it stops with the process that started it."""
    die_with_parent()
    options = json.loads(os.environ[OPTIONS_ENV])
    set_timeouts(*options["timeouts"])
    keys = read_api_keys(options["api_key_file"]) if options["api_key_file"] else ()
    return create_app(
        options["model"],
        options["max_pending"],
        api_keys=keys,
        reload_model=options["reload_model"],
        corrections=options["corrections"],
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_host(host: str, keys: tuple) -> str:
    """The address to listen on: '' is refused (it silently meant every interface); beyond loopback
    without a key, a warning."""
    if not host.strip():
        raise QismError("--host '' would listen on every interface: give 0.0.0.0 (or ::) to mean that, or an address")
    if not keys and not is_loopback(host):
        print(
            f"qism: warning: listening on {host} without --api-key-file: anyone who reaches this port can use it",
            file=sys.stderr,
        )
    return host


def serve(
    model_dir: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    max_pending: int | None = None,
    access_log: bool = True,
    *,
    log_format: str = "text",
    api_key_file: str | os.PathLike | None = None,
    reload_model: bool = False,
    timeouts: tuple[float | None, float | None] = (None, None),
    corrections: str | os.PathLike | None = None,
) -> None:
    """Run the server until SIGTERM or Ctrl-C, which let requests in flight finish first.

    The model (and the key file) are read here first, so a bad folder is one line of error rather
    than a worker's traceback; with one worker that model is served, with more each worker process
    loads its own.
    """
    if workers < 1:
        raise QismError("--workers must be at least 1")
    max_pending = MAX_PENDING if max_pending is None else max_pending
    if max_pending < 1:
        raise QismError("--max-pending must be at least 1")
    if log_format not in LOG_FORMATS:
        raise QismError(f"--log-format takes {' or '.join(LOG_FORMATS)}")
    keys = read_api_keys(api_key_file) if api_key_file is not None else ()
    host = checked_host(host, keys)
    timeouts = tuple(given if given is not None else default for given, default in zip(timeouts, DEFAULT_TIMEOUTS))
    set_timeouts(*timeouts)
    if corrections is not None:
        corrections = CorrectionsFile(corrections).path
    model = load_model(model_dir)
    source = os.path.abspath(model_dir) if model_dir is not None else None  # not resolved: a link may change
    settings = dict(
        host=host,
        port=port,
        access_log=access_log,
        log_config=log_config(log_format),
        http=GuardedHTTPProtocol,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=IDLE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    with _metrics_folder():
        if workers == 1:
            app = create_app(
                model, max_pending, api_keys=keys, reload_model=reload_model, source=source, corrections=corrections
            )
            uvicorn.run(app, **settings)
            return
        del model
        key_file = os.path.abspath(api_key_file) if api_key_file is not None else None
        options = dict(model=source, max_pending=max_pending, api_key_file=key_file, reload_model=reload_model)
        os.environ[OPTIONS_ENV] = json.dumps({**options, "timeouts": timeouts, "corrections": corrections})
        # the protocol by name: a worker imports it once it answers the supervisor's health checks
        settings["http"] = f"{GuardedHTTPProtocol.__module__}:{GuardedHTTPProtocol.__name__}"
        run_workers(uvicorn.Config(f"{__name__}:app_from_environment", factory=True, workers=workers, **settings))


@contextmanager
def _metrics_folder():
    """Where the workers keep their metrics: $PROMETHEUS_MULTIPROC_DIR if set, else a folder made here
    and removed at the end."""
    if os.environ.get(MULTIPROCESS_ENV):
        yield
        return
    folder = tempfile.mkdtemp(prefix="qism-serve-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_ENV]
        shutil.rmtree(folder, ignore_errors=True)

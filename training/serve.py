"""qism over HTTP: a CMS or a wire ingester posts articles and gets back their sections.

A face like the command line: it parses a request, calls `label_documents` and returns its
records, exactly what `qism predict --format json` prints. Each worker process loads the model
once; labeling runs on a worker thread, so the event loop keeps answering health checks. Every
request is bounded (body size, batch size), and so is the work a worker holds: past
`max_pending` requests it answers 503 with Retry-After instead of queueing without end.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from .errors import QismError

try:
    import anyio
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr
    from starlette.exceptions import HTTPException
except ImportError as err:
    raise QismError(
        f"qism serve needs FastAPI and uvicorn ({err.name} is missing): pip install 'qism[serve]'"
    ) from None
try:  # the HTTP parser uvicorn's "auto" would pick
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HTTPProtocol
except ImportError:
    from uvicorn.protocols.http.h11_impl import H11Protocol as _HTTPProtocol

from .card import qism_version
from .config import LabelOptions
from .corpus import Document, replace_lone_surrogates
from .model import Model, load_model
from .predict import label_documents

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
#: Seconds a stopping server waits for requests in flight.
GRACEFUL_SHUTDOWN_SECONDS = 30
#: How `qism serve` tells each uvicorn worker process which model to load (absent: the default model).
MODEL_ENV = "QISM_SERVE_MODEL"
PENDING_ENV = "QISM_SERVE_MAX_PENDING"

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


# --- errors: always a JSON body, never a traceback ----------------------------------------------


def error_response(status: int, message: str, details: list | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"error": message} if details is None else {"error": message, "details": details}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_details(err: RequestValidationError) -> list[dict]:
    """Where and why the body does not fit, without echoing its content back (a location can name
    a key of the body, so lone surrogates become U+FFFD)."""
    return [
        {
            "location": replace_lone_surrogates(".".join(str(part) for part in error.get("loc", ()))),
            "message": replace_lone_surrogates(str(error.get("msg", ""))),
        }
        for error in err.errors()[:20]
    ]


async def _on_validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
    details = _validation_details(err)
    if any(error.get("type") == "json_invalid" for error in err.errors()):
        return error_response(422, "the body is not valid JSON", details)
    if "json" not in request.headers.get("content-type", "json"):
        return error_response(422, "send the body as JSON, with the header Content-Type: application/json", details)
    return error_response(422, "the body does not match the schema of this endpoint (see /docs)", details)


async def _on_http_error(request: Request, err: HTTPException) -> JSONResponse:
    return error_response(err.status_code, str(err.detail), headers=getattr(err, "headers", None))


async def _on_qism_error(request: Request, err: QismError) -> JSONResponse:
    return error_response(422, str(err))


async def _on_unexpected_error(request: Request, err: Exception) -> JSONResponse:
    log.exception("error while answering %s %s", request.method, request.url.path)
    return error_response(500, "internal error; the server log has the details")


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413: at once when its Content-Length says so,
    else as soon as the bytes read pass it (chunked uploads), so it is never held whole."""

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


# --- the application ---------------------------------------------------------------------------


class NoDelayHTTPProtocol(_HTTPProtocol):
    """uvicorn's HTTP protocol with Nagle's algorithm off on every connection.

    With `--workers`, uvicorn binds the listening socket itself, with protocol number 0, and asyncio
    then leaves Nagle's algorithm on for the connections it accepts (uvicorn issue 3149): every
    answer on a keep-alive connection waits about 40 ms for the client's delayed ACK.
    """

    def connection_made(self, transport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def create_app(model: Model | str | os.PathLike | None = None, max_pending: int = MAX_PENDING) -> FastAPI:
    """The HTTP application for `model` (a loaded model, a model folder, or None: the default model),
    loaded when the application starts, once per worker process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.model = model if isinstance(model, Model) else load_model(model)
        app.state.model.set_jobs(1)  # a request is at most MAX_BATCH texts: forking workers costs more
        app.state.threads = anyio.CapacityLimiter(LABELING_THREADS)
        app.state.pending = 0
        yield

    app = FastAPI(
        title="qism", summary="Label Arabic news articles with their section", version=qism_version(), lifespan=lifespan
    )
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(QismError, _on_qism_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
    errors = {
        status: {"model": ErrorResponse, "description": description}
        for status, description in {
            413: f"body over {MAX_BODY_BYTES:,} bytes or more than {MAX_BATCH} texts",
            422: "malformed JSON, wrong types or parameters out of range",
            503: "the server is busy: retry after the seconds Retry-After says",
        }.items()
    }

    @app.post("/v1/predict", response_model=PredictResponse, responses=errors)
    async def predict(body: PredictRequest, request: Request):
        """Label one article or a batch: one record per text, in input order, as `qism predict --format json`."""
        state = request.app.state
        documents = documents_of(body.inputs)
        if len(documents) > MAX_BATCH:
            return error_response(413, f"at most {MAX_BATCH} texts per request; got {len(documents)}")
        options = label_options(body.parameters, state.model)
        if state.pending >= max_pending:
            return error_response(503, "the server is busy; retry shortly", headers={"Retry-After": "1"})
        state.pending += 1
        try:
            content = await anyio.to_thread.run_sync(
                predictions_body, state.model, documents, options, limiter=state.threads
            )
        finally:
            state.pending -= 1
        return Response(content, media_type="application/json")

    @app.get("/v1/model")
    async def model_card(request: Request) -> dict:
        """The model's card: labels, training data, configuration and held-out scores."""
        return request.app.state.model.card

    @app.get("/healthz")
    async def healthz() -> dict:
        """The process answers."""
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz(request: Request):
        """The model is loaded and requests can be labeled."""
        if getattr(request.app.state, "model", None) is None:
            return error_response(503, "the model is not loaded yet")
        return {"status": "ready", "labels": request.app.state.model.labels}

    return app


def app_from_environment() -> FastAPI:
    """The application each uvicorn worker builds (`--factory`): the model folder comes from $QISM_SERVE_MODEL."""
    return create_app(os.environ.get(MODEL_ENV) or None, int(os.environ.get(PENDING_ENV, MAX_PENDING)))


def serve(
    model_dir: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    max_pending: int | None = None,
    access_log: bool = True,
) -> None:
    """Run the server until SIGTERM or Ctrl-C, which let requests in flight finish first.

    The model is loaded here first, so a bad folder is one line of error rather than a worker's
    traceback; with one worker that model is served, with more each worker process loads its own.
    """
    if workers < 1:
        raise QismError("--workers must be at least 1")
    max_pending = MAX_PENDING if max_pending is None else max_pending
    if max_pending < 1:
        raise QismError("--max-pending must be at least 1")
    model = load_model(model_dir)
    # the protocol by name: a worker imports it once it answers the supervisor's health checks
    settings = dict(
        host=host,
        port=port,
        access_log=access_log,
        http=f"{__name__}:{NoDelayHTTPProtocol.__name__}",
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    if workers == 1:
        uvicorn.run(create_app(model, max_pending), **settings)
        return
    del model
    os.environ[MODEL_ENV] = str(Path(model_dir).resolve()) if model_dir is not None else ""
    os.environ[PENDING_ENV] = str(max_pending)
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **settings)

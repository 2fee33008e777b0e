"""The processes of `qism serve --workers N` and what they log.

uvicorn's supervisor restarts every worker on SIGHUP and leaves its workers serving forever when it is
killed with SIGKILL (an OOM kill, a supervisor's timeout). Here SIGHUP is passed on to the workers, which
reload their model in place without dropping a request, and each worker asks the kernel to stop it when
its parent dies (Linux's PR_SET_PDEATHSIG), or, where that is missing, watches its parent's pid.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import threading
import time

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

#: How `qism serve` tells its worker processes which process they must not outlive.
PARENT_ENV = "QISM_SERVE_PARENT"
#: prctl's request number for "signal me when my parent dies" (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: Seconds between two looks at the parent's pid where prctl is missing.
PARENT_WATCH_SECONDS = 0.5
#: Log formats `--log-format` takes.
LOG_FORMATS = ("text", "json")


class Workers(Multiprocess):
    """uvicorn's supervisor, with SIGHUP passed on to each worker instead of replacing them all."""

    def handle_hup(self) -> None:
        logging.getLogger("qism.serve").info("SIGHUP: each worker reloads its model")
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGHUP)


def run_workers(config: uvicorn.Config) -> None:
    """Serve `config`'s application from `config.workers` processes until SIGTERM or Ctrl-C."""
    os.environ[PARENT_ENV] = str(os.getpid())
    socket = config.bind_socket()
    try:
        Workers(config, sockets=[socket]).run()
    finally:
        socket.close()


def die_with_parent() -> None:
    """In a worker: stop (SIGTERM, so requests in flight finish) as soon as the supervisor is gone."""
    parent = int(os.environ.get(PARENT_ENV) or 0)
    if not parent:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and an access log's fields by name."""

    ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            entry.update(zip(self.ACCESS_FIELDS, record.args))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


JsonLogFormatter.converter = time.gmtime


def log_config(log_format: str) -> dict:
    """uvicorn's logging configuration, in `log_format`, with qism's own messages (reloads) shown too."""
    config = json.loads(json.dumps(uvicorn.config.LOGGING_CONFIG))
    if log_format == "json":
        json_formatter = {"()": f"{__name__}.{JsonLogFormatter.__name__}"}
        config["formatters"] = {"default": json_formatter, "access": json_formatter}
    config["loggers"]["qism"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config

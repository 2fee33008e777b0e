"""Label many files on a Dask cluster: one task per input file, each output written whole or not at all.

A task reads one input file, labels it with `predict.label_documents` (the model is loaded once per
worker process and kept), and writes `<input name>.labels.jsonl` (or `.jsonl.gz`, `.parquet`) under
the output folder: locally to a temporary name renamed when complete, on an object store as one
object that appears only when its upload completes. A manifest `<output name>.manifest.json` follows
the output and records what it holds. A worker killed mid-task leaves no output of that task; the
scheduler runs the task again elsewhere, and the rerun replaces nothing but its own file, so every
input record is labeled exactly once in the outputs. `resume` skips inputs whose manifest and output
are already there.

Dask, distributed, fsspec (paths as URLs) and pyarrow (Parquet) are imported only when used: they
are the extras `qism[dask]` and `qism[parquet]`.
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import glob
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from .config import CLUSTER_TIMEOUT, LabelOptions, ReadOptions, check_engine, check_scheduler_address
from .corpus import Document, data_suffixes, is_data_file, read_jsonl_range, read_source
from .errors import Interrupted, QismError, require_extra
from .files import atomic_file
from .model import Model, load_model
from .output import describe_run, input_fingerprint, write_record_bytes
from .predict import label_documents
from .streaming import ChunkEngine

#: Formats `label_files` writes: JSON Lines (optionally gzipped) or Parquet.
CLUSTER_OUTPUT_FORMATS = ("jsonl", "parquet")
OUTPUT_SUFFIX = ".labels"
MANIFEST_SUFFIX = ".manifest.json"
#: A plain JSON Lines file larger than this is labeled in shards of about this size, one task each.
SHARD_BYTES = 256 << 20
#: Documents labeled per batch inside a task (one thread per task: a batch is one chunk of work).
TASK_BATCH_SIZE = 2000


# --- paths: local or fsspec URLs --------------------------------------------------------------


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _filesystem(url: str):
    fsspec = require_extra("fsspec", "dask")
    try:
        fs, _, paths = fsspec.get_fs_token_paths(url)
    except ImportError as err:
        extra = " (pip install 'qism[s3]')" if url.startswith(("s3://", "s3a://")) else ""
        raise QismError(f"{url}: this kind of URL needs a package that is not installed{extra}: {err}") from None
    except ValueError as err:
        raise QismError(f"{url}: cannot open this kind of URL ({err})") from None
    return fs, paths


#: Packages whose errors mean an object store refused a request (no credentials, no such bucket,
#: access denied, no endpoint): one line naming what to set, never a traceback.
STORAGE_PACKAGES = ("botocore", "aiobotocore", "s3fs", "gcsfs", "adlfs", "azure")


@contextlib.contextmanager
def storage_errors():
    """Turn an object store's refusal, here or in a task on a worker, into one line."""
    try:
        yield
    except Exception as err:
        if type(err).__module__.split(".")[0] not in STORAGE_PACKAGES:
            raise
        raise QismError(
            f"the object store refused ({type(err).__name__}: {str(err)[:160]}); check the credentials "
            "(for s3://, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE), the bucket and the endpoint"
        ) from None


def _readable(name: str) -> bool:
    """An input qism reads (a data file, as in a folder given to `read_source`, or one article), and
    not an output of an earlier run."""
    name = name.rsplit("/", 1)[-1]
    return is_data_file(name) or (name.lower().endswith(".txt") and OUTPUT_SUFFIX + "." not in name.lower())


def expand_inputs(spec: str) -> list[str]:
    """The input files a GLOB, folder, file or URL names, sorted; folders are searched recursively
    for the formats qism reads."""
    if is_url(spec):
        fs, paths = _filesystem(spec)
        protocol = spec.split("://", 1)[0]
        found = []
        for path in paths:
            if fs.isdir(path):
                found += [p for p in fs.find(path) if _readable(p)]
            else:
                found += [p for p in (fs.glob(path) if glob.has_magic(path) else [path]) if fs.isfile(p)]
        files = sorted({f"{protocol}://{p.split('://', 1)[-1]}" for p in found})
    else:
        spec = spec.removeprefix("file://")
        if Path(spec).is_dir():
            files = sorted(str(p) for p in Path(spec).rglob("*") if p.is_file() and _readable(p.name))
        elif glob.has_magic(spec):
            files = sorted(p for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        else:
            files = [spec] if Path(spec).is_file() else []
    if not files:
        raise QismError(f"{spec}: no input files here (looked for {', '.join((*data_suffixes(), '.txt'))})")
    return files


def _size(path: str) -> int:
    if is_url(path):
        fs, paths = _filesystem(path)
        return int(fs.size(paths[0]))
    return os.path.getsize(path)


def _input_identity(path: str, byte_range: tuple[int, int] | None) -> dict:
    """What an input (or the byte range of it a shard labels) is, to know it again on `--resume`:
    its size and the SHA-256 of its content, as `output.input_fingerprint` knows a run's input; an
    object store's object by its size and the tag the store changes with its content."""
    if is_url(path):
        fs, paths = _filesystem(path)
        info = fs.info(paths[0])
        tag = next((str(info[key]) for key in ("ETag", "etag", "checksum", "md5", "mtime") if info.get(key)), None)
        return {"input_bytes": int(info.get("size") or 0), "input_tag": tag}
    if byte_range is None:
        found = input_fingerprint(path)
        return {"input_bytes": found["size"], "input_sha256": found["sha256"]}
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.seek(byte_range[0])
        for start in range(*byte_range, 1 << 20):
            digest.update(handle.read(min(1 << 20, byte_range[1] - start)))
    return {"input_bytes": os.path.getsize(path), "input_sha256": digest.hexdigest()}


def _exists(path: str) -> bool:
    if is_url(path):
        fs, paths = _filesystem(path)
        return fs.exists(paths[0])
    return os.path.exists(path)


def _join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}" if is_url(folder) else str(Path(folder) / name)


# --- one task ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileTask:
    """What a worker needs to label one input file."""

    input: str
    output: str
    manifest: str
    model: str | None
    output_format: str = "jsonl"
    label_options: LabelOptions = LabelOptions()
    read_options: ReadOptions = ReadOptions(require_labels=False)
    #: The byte range of the input this task labels (a shard of a big JSON Lines file), or None: all of it.
    byte_range: tuple[int, int] | None = None
    #: What decides its records, as `output.describe_run` says it for a local run's record (the
    #: model's checksums, the options); its manifest keeps it, and `--resume` trusts only the same.
    run: dict | None = None


#: Models loaded in this process, by folder: a worker loads each model once and reuses it for every task.
_MODELS: dict[str | None, Model] = {}
_MODELS_LOCK = threading.Lock()


def _model(directory: str | None) -> Model:
    with _MODELS_LOCK:
        if directory not in _MODELS:
            model = load_model(directory)
            model.set_jobs(1)  # a task is one thread; the cluster runs many
            _MODELS[directory] = model
        return _MODELS[directory]


def _documents(path: str, task: FileTask) -> Iterator[Document]:
    if task.byte_range is not None:
        return read_jsonl_range(Path(path), task.byte_range, task.read_options)
    return read_source(path, task.read_options)


class _Digesting(io.RawIOBase):
    """A binary stream that passes writes on and keeps their SHA-256 and size, for the manifest."""

    def __init__(self, target):
        self.target, self.sha256, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)


def _open_output(path: str):
    """A binary file that appears at `path` only once complete (see the module docstring)."""
    if is_url(path):
        fs, paths = _filesystem(path)
        return fs.open(paths[0], "wb")  # an object store makes the object visible when the upload ends
    return atomic_file(path, "wb")


def _write_output(task: FileTask, records: Iterator[dict]) -> dict:
    with _open_output(task.output) as raw:
        digesting = _Digesting(raw)
        count = write_record_bytes(records, task.output_format, digesting, compress=task.output.endswith(".gz"))
    return {"records": count, "output_bytes": digesting.size, "sha256": digesting.sha256.hexdigest()}


def _write_manifest(path: str, manifest: dict) -> None:
    data = (json.dumps(manifest, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    with _open_output(path) as handle:
        handle.write(data)


def _local_copy(url: str, folder: str) -> str:
    """Copy a remote input to the worker's disk, so every reader (zip, CSV, Parquet) can seek in it."""
    fs, paths = _filesystem(url)
    local = str(Path(folder) / Path(paths[0]).name)
    with fs.open(paths[0], "rb") as source, open(local, "wb") as target:
        shutil.copyfileobj(source, target, 1 << 20)
    return local


def label_file(task: FileTask) -> dict:
    """Label one input file into its output and manifest; return the manifest. Runs on a worker."""
    started = time.perf_counter()
    # joblib warns inside every daemonic Dask worker, though a task asks for one process anyway
    warnings.filterwarnings("ignore", message="Inside a Dask worker with daemon=True")
    model = _model(task.model)
    identity = _input_identity(task.input, task.byte_range)  # before reading: what was labeled
    with tempfile.TemporaryDirectory(prefix="qism-") as scratch:
        path = _local_copy(task.input, scratch) if is_url(task.input) else task.input
        records = label_documents(model, _documents(path, task), task.label_options, batch_size=TASK_BATCH_SIZE)
        written = _write_output(task, records)
    manifest = {
        "input": task.input,
        **identity,
        "byte_range": task.byte_range,
        "run": task.run,
        "output": Path(task.output).name,
        **written,
        "model": task.model or "default",
        "seconds": round(time.perf_counter() - started, 3),
    }
    _write_manifest(task.manifest, manifest)
    return manifest


def finished(task: FileTask) -> bool:
    """Whether an earlier run completed this task: its manifest is there, for the same input (its
    size and content, see `_input_identity`) and the same model and options, and so is its output,
    at the size the manifest records."""
    if not _exists(task.manifest) or not _exists(task.output):
        return False
    try:
        if is_url(task.manifest):
            fs, paths = _filesystem(task.manifest)
            with fs.open(paths[0], "rb") as handle:
                manifest = json.loads(handle.read())
        else:
            manifest = json.loads(Path(task.manifest).read_text(encoding="utf-8"))
        identity = _input_identity(task.input, task.byte_range)
        same_input = all(manifest.get(key) == value for key, value in identity.items())
        return same_input and manifest.get("run") == task.run and manifest["output_bytes"] == _size(task.output)
    except (OSError, ValueError, KeyError, TypeError):
        return False


# --- the run ----------------------------------------------------------------------------------


def _byte_ranges(path: str, shard_bytes: int, read_options: ReadOptions) -> list[tuple[int, int]] | None:
    """The shards of a plain local UTF-8 JSON Lines file larger than `shard_bytes`, else None (one task)."""
    if is_url(path) or not path.lower().endswith(".jsonl") or (size := os.path.getsize(path)) <= shard_bytes:
        return None
    with open(path, "rb") as handle:
        utf16 = handle.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    if utf16 or (read_options.encoding or "utf-8").lower().replace("_", "-") not in ("utf-8", "utf8", "utf-8-sig"):
        return None  # lines of other encodings are not found by their bytes
    n = -(-size // shard_bytes)
    return [(size * k // n, size * (k + 1) // n) for k in range(n)]


def plan_tasks(
    inputs: list[str],
    output_dir: str,
    model: str | None,
    output_format: str = "jsonl",
    compress: bool = False,
    label_options: LabelOptions = LabelOptions(),
    read_options: ReadOptions = ReadOptions(require_labels=False),
    shard_bytes: int = SHARD_BYTES,
) -> list[FileTask]:
    """One task per input file, each with its output and manifest names, or per shard of a plain
    JSON Lines file larger than `shard_bytes` (`<name>.00002-of-00005.labels.jsonl`); two inputs of
    the same name would write the same output, which is refused."""
    if output_format not in CLUSTER_OUTPUT_FORMATS:
        raise QismError(f"--engine dask writes --format {' or '.join(CLUSTER_OUTPUT_FORMATS)}; got {output_format!r}")
    if compress and output_format != "jsonl":
        raise QismError("--gzip is for --format jsonl")
    suffix = OUTPUT_SUFFIX + (".parquet" if output_format == "parquet" else ".jsonl.gz" if compress else ".jsonl")
    tasks, seen = [], {}
    for path in inputs:
        name = path.rstrip("/").rsplit("/", 1)[-1] + suffix
        if name in seen:
            raise QismError(
                f"{seen[name]} and {path} would both be labeled into {name}; give inputs with distinct names"
            )
        seen[name] = path
        ranges = _byte_ranges(path, shard_bytes, read_options)
        for k, byte_range in enumerate(ranges or [None]):
            shard = (
                name
                if ranges is None
                else name.replace(OUTPUT_SUFFIX, f".{k + 1:05d}-of-{len(ranges):05d}{OUTPUT_SUFFIX}", 1)
            )
            output = _join(output_dir, shard)
            tasks.append(
                FileTask(
                    path,
                    output,
                    output + MANIFEST_SUFFIX,
                    model,
                    output_format,
                    label_options,
                    read_options,
                    byte_range,
                )
            )
    return tasks


def _remove_partial_outputs(tasks: list[FileTask]) -> None:
    """Delete what workers killed mid-task left of their outputs: temporary `.part` files of this
    run's outputs (local only: an object store keeps no unfinished upload in view)."""
    for task in tasks:
        for path in (task.output, task.manifest):
            if not is_url(path):
                for partial in Path(path).parent.glob(f".{glob.escape(Path(path).name)}.*.part"):
                    partial.unlink(missing_ok=True)


#: Largest scheduler file read (Dask writes a few hundred bytes).
MAX_SCHEDULER_FILE_BYTES = 2**20


def scheduler_address(scheduler: str) -> str:
    """The address `--scheduler` names: itself, or the `address` of a scheduler file, which must
    exist now (Dask's own client waits for it to appear, forever) and be a JSON table."""
    if not scheduler.endswith(".json"):
        return scheduler
    if os.path.exists(scheduler) and not os.path.isfile(scheduler):  # a FIFO would hold the open forever
        raise QismError(f"{scheduler}: not a regular file; give the scheduler file Dask wrote, or its address")
    try:
        with open(scheduler, "rb") as handle:
            raw = handle.read(MAX_SCHEDULER_FILE_BYTES + 1)
        info = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_SCHEDULER_FILE_BYTES else None
    except FileNotFoundError:
        raise QismError(
            f"{scheduler}: no such scheduler file; start the scheduler with --scheduler-file {scheduler}, "
            "or give its address"
        ) from None
    except (OSError, ValueError, RecursionError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise QismError(f"{scheduler}: cannot read the scheduler file ({str(err)[:80]})") from None
    if not isinstance(info, dict) or "address" not in info:
        raise QismError(f"{scheduler}: not a Dask scheduler file (a JSON table with the scheduler's address)")
    return check_scheduler_address(info["address"], scheduler)


def _within(seconds: float, attempt: Callable, gave_up: str):
    """`attempt()` in a thread of its own, given up after `seconds` with the one line `gave_up`: a
    peer that accepts and never answers holds Dask's client past its own timeout."""
    outcome = {}

    def run():
        try:
            outcome["value"] = attempt()
        except BaseException as err:  # handed to the caller's thread
            outcome["error"] = err

    thread = threading.Thread(target=run, name="qism-dask-connect", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise QismError(gave_up)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextlib.contextmanager
def _ctrl_c_left_to_this_process():
    """Start a local cluster's processes with SIGINT ignored (an ignored signal stays ignored in a
    started program): Ctrl-C, sent to the whole process group, then stops only this process, which
    closes the cluster, instead of every worker printing its traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _scheduler_in_this_process(address: str) -> bool:
    """Whether a scheduler of this process listens at the `inproc://` address."""
    inproc = require_extra("distributed.comm.inproc", "dask")
    try:
        return inproc.global_manager.get_listener_for(address.removeprefix("inproc://")) is not None
    except ValueError:  # another process's (or no) inproc address
        return False


def _client(scheduler: str | None, n_workers: int | None, timeout: float = CLUSTER_TIMEOUT):
    """A Dask client of the cluster at `scheduler` (or of a local one of `n_workers` processes) with
    a worker to run tasks, or one line within `timeout` seconds saying which is missing."""
    require_extra("dask", "dask")
    distributed = require_extra("distributed", "dask")
    if scheduler is None:
        with _ctrl_c_left_to_this_process():
            cluster = distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: others may run a cluster here
                silence_logs=logging.CRITICAL,  # what a run must know comes back with its tasks' results
            )
        return distributed.Client(cluster), cluster
    address = scheduler_address(scheduler)
    if address.startswith("inproc://") and not _scheduler_in_this_process(address):
        raise QismError(
            f"{address} is an in-process address, and no scheduler in this process has it; give the "
            "scheduler's tcp://HOST:PORT"
        )  # Dask's client would wait for it to its timeout, then raise
    hint = "is a Dask scheduler there? --cluster-timeout waits longer"
    try:
        client = _within(
            timeout,
            lambda: distributed.Client(address, timeout=f"{timeout}s"),
            f"the Dask scheduler at {address} did not answer within {timeout:g} s ({hint})",
        )
    except (OSError, TimeoutError) as err:
        raise QismError(f"cannot reach the Dask scheduler at {address} ({str(err)[:120]}; {hint})") from None
    except (ValueError, TypeError) as err:  # an address Dask cannot parse; tls:// without TLS settings
        raise QismError(
            f"cannot connect to {address} ({str(err)[:120]}); give tcp://HOST:PORT, or Dask's TLS settings for tls://"
        ) from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        client.close()
        raise QismError(
            f"the Dask cluster at {address} has no worker (none joined within {timeout:g} s); start one with "
            f"`dask worker {address}`"
        ) from None
    return client, None


def when_done(client, futures: Iterable, timeout: float = CLUSTER_TIMEOUT) -> Iterator:
    """`futures` as they finish; one line once the cluster has had no worker for `timeout` seconds
    (its tasks would wait for one forever). Tasks that take long on live workers are waited for."""
    distributed = require_extra("distributed", "dask")
    pending = set(futures)
    while pending:
        try:
            done, pending = distributed.wait(pending, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            if not client.nthreads():
                raise QismError(
                    f"the Dask cluster has had no worker for {timeout:g} s (did its workers die?); "
                    "start one, then run again"
                ) from None
            continue
        yield from done


def label_files(
    input_spec: str,
    output_dir: str,
    *,
    model: str | os.PathLike | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    output_format: str | None = "jsonl",
    compress: bool = False,
    n_workers: int | None = None,
    label_options: LabelOptions = LabelOptions(),
    read_options: ReadOptions = ReadOptions(require_labels=False),
    shard_bytes: int = SHARD_BYTES,
    report: Callable[[str], None] = lambda message: None,
    cluster_timeout: float = CLUSTER_TIMEOUT,
) -> dict:
    """Label every file `input_spec` names (GLOB, folder, file or URL) into `output_dir`, one Dask task
    per file (or per `shard_bytes` of a big JSON Lines file), on the cluster at `scheduler` or on a
    local one of `n_workers` processes. Each wait on the cluster ends within `cluster_timeout` seconds
    (see `_client` and `when_done`).

    Returns a summary: the files labeled, skipped (with `resume`) and their records. A run's summary
    is also written to `_qism_run.json` in the output folder.
    """
    check_engine("dask", scheduler)
    model = str(Path(model).resolve()) if model is not None and not is_url(str(model)) else model
    if label_options.explain:
        raise QismError("--explain is not offered with --engine dask")
    loaded = load_model(model)
    label_options.check_against(loaded.labels)  # a wrong model is one line here, not one failure per task
    run = describe_run(loaded, label_options, output_format or "jsonl", False, None, read_options)
    run = {"model": run["model"], "options": run["options"], "compress": compress}  # the input: per task
    inputs = expand_inputs(input_spec)
    output_dir = output_dir.removeprefix("file://")  # a local folder as a URL names the folder, not `file:`
    if not is_url(output_dir):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        inputs = [p if is_url(p) else str(Path(p).resolve()) for p in inputs]
        output_dir = str(Path(output_dir).resolve())
    planned = plan_tasks(
        inputs, output_dir, model, output_format or "jsonl", compress, label_options, read_options, shard_bytes
    )
    tasks = [replace(task, run=run) for task in planned]
    todo = [task for task in tasks if not (resume and finished(task))]
    report(f"{len(tasks)} input files, {len(tasks) - len(todo)} already labeled")
    manifests = []
    if todo:
        distributed = require_extra("distributed", "dask")
        client, cluster = _client(scheduler, n_workers, cluster_timeout)
        try:
            futures = [
                client.submit(
                    label_file,
                    task,
                    key=f"qism-label-{i}-{hashlib.sha1(task.input.encode()).hexdigest()[:12]}",
                    pure=False,
                    retries=0,
                )
                for i, task in enumerate(todo)
            ]
            for future in when_done(client, futures, cluster_timeout):
                try:
                    manifests.append(future.result())
                except distributed.KilledWorker as err:
                    raise QismError(
                        f"workers kept dying while labeling a file ({err}); the files labeled so far "
                        "are complete, and --resume continues"
                    ) from None
                report(f"labeled {len(manifests)} of {len(todo)} files")
        except KeyboardInterrupt:
            raise Interrupted(
                f"{len(manifests)} of {len(todo)} files labeled, each complete; --resume labels the rest"
            ) from None
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    _remove_partial_outputs(tasks)
    summary = {
        "inputs": len(tasks),
        "labeled": len(manifests),
        "skipped": len(tasks) - len(todo),
        "records": sum(m["records"] for m in manifests),
        "output": output_dir,
        "files": sorted(manifests, key=lambda m: m["input"]),
    }
    _write_manifest(_join(output_dir, "_qism_run.json"), summary)
    return summary


@storage_errors()
def label_files_on_cluster(
    texts: list[str], input_spec: str | None, output: str | os.PathLike | None, **options
) -> dict:
    """`qism predict --engine dask`: the files of `input_spec` into the folder `output` (see `label_files`)."""
    if texts or input_spec is None or output is None:
        raise QismError(
            "--engine dask labels the files of --input into the folder --output; give both, and no articles"
        )
    return label_files(input_spec, str(output), **options)


# --- training: streaming's work on each chunk, on the cluster ---------------------------------


class DaskChunks(ChunkEngine):
    """Streaming training's tasks (cleaning and counting each chunk, fitting each averaged shard
    model) on a Dask cluster: the featurizer or classifier is sent to every worker once per pass, at
    most `in_flight` tasks are out at a time (memory stays bounded), and results come back in order.
    A task lost with its worker is run again."""

    name = "dask"

    def __init__(self, client, in_flight: int | None = None, timeout: float = CLUSTER_TIMEOUT):
        self.client = client
        self.timeout = timeout
        self.in_flight = in_flight or 2 * max(1, sum(client.nthreads().values()))

    def map(self, function: Callable, featurizer, arguments: Iterable[tuple]) -> Iterator:
        on_workers = copy.copy(featurizer)
        on_workers.set_params(n_jobs=1)  # a task is one thread; the cluster runs many
        shared = self.client.scatter(on_workers, broadcast=True, hash=False)
        pending = deque()
        for args in arguments:
            pending.append(self.client.submit(function, shared, *args, pure=False))
            if len(pending) >= self.in_flight:
                yield self._result(pending.popleft())
        while pending:
            yield self._result(pending.popleft())

    def _result(self, future):
        return next(when_done(self.client, [future], self.timeout)).result()


@storage_errors()
def train_and_save_on_cluster(
    out: str | os.PathLike,
    sources=(),
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    cluster_timeout: float = CLUSTER_TIMEOUT,
    **options,
) -> Model:
    """`qism train --engine dask`: `trainer.train_and_save`, streaming, with each chunk cleaned and
    counted on the cluster at `scheduler` (or a local one of `n_workers` processes), and the shard
    models of averaged learners fitted there; SGD's epochs over the shards run here."""
    from .trainer import train_and_save

    check_engine("dask", scheduler)
    client, cluster = _client(scheduler, n_workers, cluster_timeout)
    try:
        return train_and_save(out, sources, engine=DaskChunks(client, timeout=cluster_timeout), **options)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

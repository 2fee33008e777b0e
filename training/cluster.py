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
import copy
import glob
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import LabelOptions, ReadOptions, check_engine
from .corpus import Document, jsonl_documents, read_source
from .errors import QismError
from .files import atomic_file
from .model import Model, load_model
from .predict import label_documents
from .streaming import ChunkEngine

#: Formats `label_files` writes: JSON Lines (optionally gzipped) or Parquet.
CLUSTER_OUTPUT_FORMATS = ("jsonl", "parquet")
#: What an input folder or pattern may hold: the file formats qism reads, and Parquet.
INPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv", ".tsv", ".txt", ".parquet")
OUTPUT_SUFFIX = ".labels"
MANIFEST_SUFFIX = ".manifest.json"
#: A plain JSON Lines file larger than this is labeled in shards of about this size, one task each.
SHARD_BYTES = 256 << 20
#: Documents labeled per batch inside a task (one thread per task: a batch is one chunk of work).
TASK_BATCH_SIZE = 2000


def require_extra(module: str, extra: str):
    """Import an optional dependency, or stop with one line naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise QismError(f"this needs the {module.split('.')[0]} package: pip install 'qism[{extra}]'") from None


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


def _readable(name: str) -> bool:
    """An input qism reads, and not an output of an earlier run."""
    name = name.lower()
    return name.endswith(INPUT_SUFFIXES) and OUTPUT_SUFFIX + "." not in name


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
        raise QismError(f"{spec}: no input files here (looked for {', '.join(INPUT_SUFFIXES)})")
    return files


def _size(path: str) -> int:
    if is_url(path):
        fs, paths = _filesystem(path)
        return int(fs.size(paths[0]))
    return os.path.getsize(path)


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


def _parquet_documents(path: str, text_column: str | None) -> Iterator[Document]:
    """The articles of a Parquet file, a batch of rows at a time: its text column (`text_column`,
    else text, content, body or article), id and title when it has them."""
    pq = require_extra("pyarrow.parquet", "parquet")
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    text_key = text_column or next((name for name in ("text", "content", "body", "article") if name in names), None)
    if text_key not in names:
        raise QismError(f"{path}: no {text_column or 'text'!r} column; name it with --text-column")
    id_key = next((name for name in ("id", "doc_id", "article_id") if name in names), None)
    title_key = "title" if "title" in names else None
    columns = [key for key in (text_key, id_key, title_key) if key]
    for batch in parquet.iter_batches(batch_size=TASK_BATCH_SIZE, columns=columns):
        rows = batch.to_pydict()
        for i, text in enumerate(rows[text_key]):
            text = text if isinstance(text, str) else ""
            title = rows[title_key][i] if title_key else None
            if isinstance(title, str) and title:
                text = f"{title}\n{text}"
            doc_id = rows[id_key][i] if id_key else None
            yield Document(text=text, id=str(doc_id) if doc_id is not None else None, outlet=Path(path).name)


def _lines_in_range(path: str, start: int, end: int, errors: str) -> Iterator[tuple[str, str]]:
    """(where, line) of each line that starts in [start, end) of a UTF-8 file: a line belongs to the
    shard its first byte is in, so shards side by side read every line once."""
    with open(path, "rb") as handle:
        if start:
            handle.seek(start - 1)
            handle.readline()  # the rest of the line the previous shard holds
        while (offset := handle.tell()) < end and (line := handle.readline()):
            try:
                yield f"{path}: byte {offset}", line.decode("utf-8-sig" if offset == 0 else "utf-8", errors)
            except UnicodeDecodeError as err:
                raise QismError(
                    f"{path}: byte {offset + err.start}: not UTF-8; name the encoding with --encoding "
                    "or use --errors replace"
                ) from None


def _documents(path: str, task: FileTask) -> Iterator[Document]:
    if task.byte_range is not None:
        lines = _lines_in_range(path, *task.byte_range, task.read_options.errors)
        return jsonl_documents(lines, Path(path).name, task.read_options)
    if path.lower().endswith(".parquet"):
        return _parquet_documents(path, task.read_options.text_column)
    return read_source(path, task.read_options)


_PARQUET_SCHEMA_FIELDS = ("id", "label", "label_ar", "labels", "labels_ar", "top", "reason")


def _write_parquet(records: Iterator[dict], handle) -> int:
    pa = require_extra("pyarrow", "parquet")
    pq = require_extra("pyarrow.parquet", "parquet")
    item = pa.struct([("label", pa.string()), ("score", pa.float64()), ("label_ar", pa.string())])
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("label", pa.string()),
            ("label_ar", pa.string()),
            ("labels", pa.list_(pa.string())),  # a multi-label model's chosen labels, else empty
            ("labels_ar", pa.list_(pa.string())),
            ("top", pa.list_(item)),
            ("reason", pa.string()),
        ]
    )
    count = 0
    with pq.ParquetWriter(handle, schema) as writer:
        batch: list[dict] = []
        for record in records:
            batch.append({key: record.get(key) for key in _PARQUET_SCHEMA_FIELDS})
            count += 1
            if len(batch) == TASK_BATCH_SIZE:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch or not count:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return count


def _write_jsonl(records: Iterator[dict], handle) -> int:
    count = 0
    for record in records:
        handle.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        count += 1
    return count


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
        if task.output_format == "parquet":
            count = _write_parquet(records, digesting)
        elif task.output.endswith(".gz"):
            # mtime 0: the same labels make the same bytes, so a rerun writes an identical file
            with gzip.GzipFile(fileobj=digesting, mode="wb", mtime=0) as packed:
                count = _write_jsonl(records, packed)
        else:
            count = _write_jsonl(records, digesting)
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
    with tempfile.TemporaryDirectory(prefix="qism-") as scratch:
        path = _local_copy(task.input, scratch) if is_url(task.input) else task.input
        records = label_documents(model, _documents(path, task), task.label_options, batch_size=TASK_BATCH_SIZE)
        written = _write_output(task, records)
    manifest = {
        "input": task.input,
        "input_bytes": _size(task.input),
        "byte_range": task.byte_range,
        "output": Path(task.output).name,
        **written,
        "model": task.model or "default",
        "seconds": round(time.perf_counter() - started, 3),
    }
    _write_manifest(task.manifest, manifest)
    return manifest


def finished(task: FileTask) -> bool:
    """Whether an earlier run completed this task: its manifest is there, for the same input size,
    and so is its output, at the size the manifest records."""
    if not _exists(task.manifest) or not _exists(task.output):
        return False
    try:
        if is_url(task.manifest):
            fs, paths = _filesystem(task.manifest)
            with fs.open(paths[0], "rb") as handle:
                manifest = json.loads(handle.read())
        else:
            manifest = json.loads(Path(task.manifest).read_text(encoding="utf-8"))
        return manifest["input_bytes"] == _size(task.input) and manifest["output_bytes"] == _size(task.output)
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


def _client(scheduler: str | None, n_workers: int | None):
    require_extra("dask", "dask")
    distributed = require_extra("distributed", "dask")
    if scheduler is None:
        cluster = distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )  # any free port: others may run a cluster here
        return distributed.Client(cluster), cluster
    try:
        if scheduler.endswith(".json"):
            return distributed.Client(scheduler_file=scheduler, timeout="30s"), None
        return distributed.Client(scheduler, timeout="30s"), None
    except (OSError, TimeoutError) as err:
        raise QismError(f"cannot reach the Dask scheduler at {scheduler} ({err})") from None


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
) -> dict:
    """Label every file `input_spec` names (GLOB, folder, file or URL) into `output_dir`, one Dask task
    per file (or per `shard_bytes` of a big JSON Lines file), on the cluster at `scheduler` or on a
    local one of `n_workers` processes.

    Returns a summary: the files labeled, skipped (with `resume`) and their records. A run's summary
    is also written to `_qism_run.json` in the output folder.
    """
    check_engine("dask", scheduler)
    model = str(Path(model).resolve()) if model is not None and not is_url(str(model)) else model
    if label_options.explain:
        raise QismError("--explain is not offered with --engine dask")
    label_options.check_against(load_model(model).labels)  # a wrong model is one line here, not one failure per task
    inputs = expand_inputs(input_spec)
    if not is_url(output_dir):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        inputs = [p if is_url(p) else str(Path(p).resolve()) for p in inputs]
        output_dir = str(Path(output_dir).resolve())
    tasks = plan_tasks(
        inputs, output_dir, model, output_format or "jsonl", compress, label_options, read_options, shard_bytes
    )
    todo = [task for task in tasks if not (resume and finished(task))]
    report(f"{len(tasks)} input files, {len(tasks) - len(todo)} already labeled")
    manifests = []
    if todo:
        distributed = require_extra("distributed", "dask")
        client, cluster = _client(scheduler, n_workers)
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
            for future in distributed.as_completed(futures):
                try:
                    manifests.append(future.result())
                except distributed.KilledWorker as err:
                    raise QismError(
                        f"workers kept dying while labeling a file ({err}); the files labeled so far "
                        "are complete, and --resume continues"
                    ) from None
                report(f"labeled {len(manifests)} of {len(todo)} files")
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

    def __init__(self, client, in_flight: int | None = None):
        self.client = client
        self.in_flight = in_flight or 2 * max(1, sum(client.nthreads().values()))

    def map(self, function: Callable, featurizer, arguments: Iterable[tuple]) -> Iterator:
        on_workers = copy.copy(featurizer)
        on_workers.set_params(n_jobs=1)  # a task is one thread; the cluster runs many
        shared = self.client.scatter(on_workers, broadcast=True, hash=False)
        pending = deque()
        for args in arguments:
            pending.append(self.client.submit(function, shared, *args, pure=False))
            if len(pending) >= self.in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def train_and_save_on_cluster(
    out: str | os.PathLike, sources=(), *, scheduler: str | None = None, n_workers: int | None = None, **options
) -> Model:
    """`qism train --engine dask`: `trainer.train_and_save`, streaming, with each chunk cleaned and
    counted on the cluster at `scheduler` (or a local one of `n_workers` processes), and the shard
    models of averaged learners fitted there; SGD's epochs over the shards run here."""
    from .trainer import train_and_save

    check_engine("dask", scheduler)
    client, cluster = _client(scheduler, n_workers)
    try:
        return train_and_save(out, sources, engine=DaskChunks(client), **options)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

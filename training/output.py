"""Where records go: writers for people and programs, atomic output files, and `--resume`.

Every writer takes the stream of records `predict.label_documents` makes, so a file of any size is
written in bounded memory. An output file appears whole (see `files.atomic_file`); a run that was
killed or interrupted leaves its partial beside it, and a run record saying what made it, which
`--resume` continues without labeling a document twice, and only with the same model, input and
options.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import itertools
import json
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .config import LabelOptions
from .corpus import Document
from .errors import Interrupted, QismError
from .files import atomic_file, replaced_atomically, write_atomically, write_target
from .model import Model
from .predict import batch_size_for, label_documents

OUTPUT_FORMATS = ("table", "json", "jsonl", "csv")


def _with_terms(records: Iterable[dict]) -> tuple[bool, Iterator[dict]]:
    """Whether the records carry explaining terms (judged by the first, for the header), and all the records."""
    records = iter(records)
    first = next(records, None)
    if first is None:
        return False, records
    return "terms" in first, itertools.chain([first], records)


def _write_table(records: Iterable[dict], out: IO[str]) -> None:
    explained, records = _with_terms(records)
    out.write("id\tlabel\tscore\talternatives" + ("\tterms" if explained else "") + "\n")
    for number, record in enumerate(records, 1):
        best, *rest = record["top"] or [None]
        score = f"{best['score']:.2f}" if best else "-"
        others = record.get("reason") or "  ".join(f"{_shown(item)} {item['score']:.2f}" for item in rest)
        terms = "\t" + ", ".join(f"{item['term']} {item['weight']:.2f}" for item in record["terms"]) if explained else ""
        out.write(f"{record.get('id', number)}\t{_shown(record)}\t{score}\t{others}{terms}\n")


def _shown(item: dict) -> str:
    """A label for people: its display name too, when the model has one."""
    return f"{item['label']} ({item['label_ar']})" if item.get("label_ar") else item["label"]


def _write_json(records: Iterable[dict], out: IO[str]) -> None:
    out.write("[")
    for i, record in enumerate(records):
        out.write(("," if i else "") + "\n  " + json.dumps(record, ensure_ascii=False))
    out.write("\n]\n")


def _write_jsonl(records: Iterable[dict], out: IO[str]) -> None:
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_csv(records: Iterable[dict], out: IO[str], header: bool = True) -> None:
    explained, records = _with_terms(records)
    writer = csv.writer(out)
    if header:
        writer.writerow(["id", "label", "score", "top", "reason"] + (["terms"] if explained else []))
    for record in records:
        top = ";".join(f"{item['label']}:{item['score']}" for item in record["top"])
        score = record["top"][0]["score"] if record["top"] else ""
        terms = [";".join(f"{item['term']}:{item['weight']}" for item in record["terms"])] if explained else []
        writer.writerow([record.get("id", ""), record["label"], score, top, record.get("reason", ""), *terms])


WRITERS = {"table": _write_table, "json": _write_json, "jsonl": _write_jsonl, "csv": _write_csv}


def write_records(records: Iterable[dict], fmt: str, out: IO[str], bom: bool = False, header: bool = True) -> None:
    """Write `records` in format `fmt`; `bom` starts with a UTF-8 byte order mark, which Excel needs
    to read a CSV file as UTF-8. `header=False` continues an output that has its start already."""
    if bom and header:
        out.write("\ufeff")
    if fmt == "csv":
        _write_csv(records, out, header)
    else:
        WRITERS[fmt](records, out)
    out.flush()


@contextmanager
def atomic_output(path: str | os.PathLike | None, newline: str | None = None, keep_on_interrupt: bool = False):
    """A text stream that becomes `path` only when the block completes (stdout when None); see
    `files.atomic_file` for links, devices and FIFOs, and for what Ctrl-C keeps."""
    if path is None:
        yield sys.stdout
        return
    with atomic_file(path, "w", newline=newline, keep_on_interrupt=keep_on_interrupt) as handle:
        yield handle


# --- continuing an interrupted run (--resume) -------------------------------------------------

#: Formats whose records are lines, so a cut-off output can be continued.
RESUMABLE_FORMATS = ("jsonl", "csv")
#: The options that decide an output's records, as the command line names them.
RUN_OPTIONS = {"format": "--format", "top_k": "--top-k", "explain": "--explain", "threshold": "--threshold",
               "unknown_label": "--unknown-label", "bom": "--bom"}
#: Bytes of an input file whose SHA-256 stands for its content in a run record (with its size).
INPUT_HEAD_BYTES = 1 << 20


@dataclass
class Continuation:
    """An output being written: its stream, what an earlier run left in it (records, the id of the
    last one, whether the CSV header is there), and the records this run wrote. `complete`: an
    earlier run finished it, and there is nothing to write."""

    out: IO[str] | None
    done: int = 0
    last_id: str | None = None
    has_header: bool = False
    written: int = 0
    complete: bool = False


def describe_run(model: Model, options: LabelOptions, fmt: str, bom: bool, input_path: str | None) -> dict:
    """What decides the records of a run: the model (the checksums of its files and its display
    names), the input (see `_input_fingerprint`) and the options."""
    card = model.card
    decisive = card.get("files") or card  # a model never saved has no checksums: its whole card
    digest = hashlib.sha256(json.dumps([decisive, card.get("label_names")], sort_keys=True, default=str).encode())
    return {"model": {"name": card.get("name"), "sha256": digest.hexdigest()},
            "input": _input_fingerprint(input_path),
            "options": {"format": fmt, "top_k": options.top_k, "explain": options.explain,
                        "threshold": options.threshold, "unknown_label": options.unknown_label, "bom": bom}}


def _input_fingerprint(input_path: str | None) -> dict:
    """A file by its size and the SHA-256 of its first MiB, wherever it is; a folder (or a FIFO) by
    its real path. Standard input and arguments cannot be told apart: for them, and in a folder, the
    ids of the records already written are checked against the input (see `skip_done`)."""
    if input_path is None or str(input_path) == "-":
        return {"path": None}
    path = os.path.realpath(input_path)
    if not os.path.isfile(path):
        return {"path": path}
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(INPUT_HEAD_BYTES)).hexdigest()
    return {"path": path, "size": os.path.getsize(path), "head_sha256": head}


def _run_record_path(target: Path) -> Path:
    """Where the record of the run writing `target` is kept: a hidden file beside it."""
    return target.with_name(f".{target.name}.qism-run.json")


def _read_run_record(record: Path, shown: str) -> dict | None:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise QismError(f"{shown}: its run record {record.name} cannot be read ({err}); "
                        "run without --resume to start again") from None
    if not isinstance(data, dict) or data.get("format") != "qism-run" or not isinstance(data.get("run"), dict):
        raise QismError(f"{shown}: its run record {record.name} is not one qism wrote; run without --resume to start again")
    return data


def _write_run_record(record: Path, run: dict, **state) -> None:
    write_atomically(record, json.dumps({"format": "qism-run", "run": run, **state}, ensure_ascii=False,
                                        indent=1).encode("utf-8"))


def _run_difference(recorded: dict, run: dict) -> str | None:
    """How this run differs from the one that wrote an output, in the user's words (None: the same)."""
    if recorded.get("model", {}).get("sha256") != run["model"]["sha256"]:
        return f"another model ({recorded.get('model', {}).get('name') or 'unnamed'})"
    before, now = recorded.get("input", {}), run["input"]
    if before.get("path") != now["path"] and (before.get("size") is None or now.get("size") is None):
        return f"another input ({before.get('path') or 'standard input or arguments'})"
    if (before.get("size"), before.get("head_sha256")) != (now.get("size"), now.get("head_sha256")):
        return (f"another input ({before.get('path')}, {before.get('size') or 0:,} bytes then; "
                f"{now.get('size') or 0:,} bytes now)")
    for key, option in RUN_OPTIONS.items():
        old, new = recorded.get("options", {}).get(key), run["options"][key]
        if old != new:
            if isinstance(new, bool):
                return f"{'' if old else 'no '}{option}, not {'' if new else 'no '}{option}"
            return f"{option} {old}, not {new}"
    return None


def _partial_outputs(target: Path) -> list[Path]:
    """What runs that did not finish left beside `target` (see `files.atomic_file`)."""
    return list(target.parent.glob(f".{glob.escape(target.name)}.*.part"))


def _jsonl_records(handle: IO[str]) -> Iterator[tuple[str, str | None]]:
    """Each complete JSON Lines record (its line and id), up to the first cut-off or damaged line."""
    for line in handle:
        try:
            record = json.loads(line) if line.endswith("\n") else None
        except ValueError:
            return
        if not isinstance(record, dict):
            return
        yield line, record.get("id")


def _csv_records(handle: IO[str]) -> Iterator[tuple[str, str | None]]:
    """Each complete CSV record (its text, which may span lines, and id), header first."""
    lines: list[str] = []

    def read_lines():
        for line in handle:
            lines.append(line)
            yield line

    try:
        for row in csv.reader(read_lines(), strict=True):
            text = "".join(lines)
            lines.clear()
            if not text.endswith("\n"):
                return
            yield text, row[0] if row else None
    except csv.Error:
        return


def _copy_complete_records(source: Path, fmt: str, out: IO[str]) -> Continuation:
    reader = _csv_records if fmt == "csv" else _jsonl_records
    copied, last_id = 0, None
    # a killed run can leave half a character at the end: replaced, it only spoils the cut-off record
    with open(source, encoding="utf-8", errors="replace", newline="") as handle:
        for text, last_id in reader(handle):
            out.write(text)
            copied += 1
    header = fmt == "csv" and copied > 0
    return Continuation(out, copied - header, last_id if copied > header else None, header)


def _earlier_output(target: Path, shown: str, run: dict) -> tuple[Path | None, dict | None]:
    """For --resume: the file whose complete records come first (the partial the run record names,
    or the finished output), and the run record; refused when it is another run's."""
    if not target.is_file() and not _partial_outputs(target):
        return None, None
    recorded = _read_run_record(_run_record_path(target), shown) or {}
    partial = recorded.get("partial")
    if isinstance(partial, str) and partial in {p.name for p in _partial_outputs(target)}:
        earlier = target.with_name(partial)
    elif recorded.get("complete") and target.is_file():
        earlier = target
    else:
        raise QismError(f"{shown}: no record of the run that wrote it, so it cannot be continued; "
                        "run without --resume to start again")
    difference = _run_difference(recorded["run"], run)
    if difference:
        raise QismError(f"{shown} was written with {difference}; resume with the same model, input and options, "
                        "or run without --resume to start again")
    return earlier, recorded


def _refuse_writing_the_input(shown: str, target: Path, input_path: str | None) -> None:
    """The output must not replace the input, nor sit in an input folder under an article's name."""
    if input_path is None or str(input_path) == "-":
        return
    if target.exists() and os.path.samefile(target, input_path):
        raise QismError(f"--output {shown} is the input; write the records to another file")
    folder = Path(os.path.realpath(input_path))
    if folder.is_dir() and folder in target.parents and target.suffix.lower() == ".txt":
        raise QismError(f"--output {shown} is inside the input folder, where it would be read as an article; "
                        "write it elsewhere or name it otherwise than .txt")


@contextmanager
def output_for(path: str | os.PathLike | None, fmt: str, run: dict, resume: bool = False,
               newline: str | None = None, input_path: str | None = None):
    """A `Continuation` to write records to, atomically (see `atomic_output`); stdout when `path`
    is None.

    A regular output file in a resumable format has a run record beside it (`run`, see
    `describe_run`): first the partial being written, then the records and size of the finished
    file. With `resume`, the complete records of what that run left come first, and the caller
    skips `done` documents and appends; an output another run wrote is refused, and a finished one
    is `complete`. Ctrl-C keeps what was written as the partial to resume, and says so.
    """
    if path is None:
        yield Continuation(sys.stdout)
        return
    shown, target = str(path), write_target(path)
    _refuse_writing_the_input(shown, target, input_path)
    regular = replaced_atomically(target)
    if resume and not regular:
        raise QismError(f"--resume continues a file; {shown} is a device or a FIFO")
    record = _run_record_path(target)
    recorded_run = regular and fmt in RESUMABLE_FORMATS
    earlier, recorded = _earlier_output(target, shown, run) if resume else (None, None)
    if earlier == target and recorded.get("output_bytes") == target.stat().st_size:
        yield Continuation(None, done=recorded.get("records", 0), complete=True)
        return
    continuation = partial = None
    previous_record = record.read_bytes() if recorded_run and record.is_file() else None
    try:
        with atomic_output(target, newline, keep_on_interrupt=recorded_run) as out:
            if recorded_run:
                partial = Path(out.name)  # what Ctrl-C keeps (see `files.atomic_file`)
            continuation = _copy_complete_records(earlier, fmt, out) if earlier else Continuation(out)
            if recorded_run:  # after the copy: until it is done, the earlier partial is the one to resume
                _write_run_record(record, run, partial=partial.name)
            yield continuation
    except BaseException as err:
        kept = continuation.done + continuation.written if continuation else 0
        if isinstance(err, KeyboardInterrupt) and partial is not None and kept:
            for other in _partial_outputs(target):
                if other != partial:
                    other.unlink(missing_ok=True)  # its records are in the partial kept
            raise Interrupted(f"{kept:,} records kept in the partial; run again with --resume to finish") from None
        if partial is not None:
            partial.unlink(missing_ok=True)
        if recorded_run:  # this run left nothing: the record describes what is there again
            write_atomically(record, previous_record) if previous_record is not None else record.unlink(missing_ok=True)
        if isinstance(err, KeyboardInterrupt) and earlier:
            raise Interrupted("what the earlier run left is as it was; run again with --resume to finish") from None
        raise
    for partial in _partial_outputs(target):
        partial.unlink(missing_ok=True)  # what runs that did not finish left: the output is whole now
    if recorded_run:
        _write_run_record(record, run, complete=True, records=continuation.done + continuation.written,
                          output_bytes=target.stat().st_size)
    elif record.exists():
        record.unlink()  # it described the file just replaced


def skip_done(documents: Iterable[Document], continuation: Continuation) -> Iterator[Document]:
    """The documents an earlier run did not label, after checking that it labeled the same ones."""
    documents = iter(documents)
    skipped = deque(enumerate(itertools.islice(documents, continuation.done), 1), maxlen=1)
    count, last = skipped[0] if skipped else (0, None)
    if count < continuation.done:
        raise QismError("the output to resume holds more records than the input has documents; "
                        "is it the same input? Run without --resume to start again")
    if last is not None and continuation.last_id and last.id and last.id != continuation.last_id:
        raise QismError(f"the output to resume ends with id {continuation.last_id!r} where the input has "
                        f"{last.id!r}; is it the same input? Run without --resume to start again")
    return documents


def _counting_replaced(documents: Iterable[Document], replaced: list[int]) -> Iterator[Document]:
    """Pass documents on, counting the U+FFFD characters in their text (what --errors replace put there)."""
    for doc in documents:
        replaced[0] += doc.text.count("\ufffd")
        yield doc


def _counting_written(records: Iterable[dict], continuation: Continuation) -> Iterator[dict]:
    """Pass records on to a writer, counting each once the writer asks for the next: it is written then."""
    for record in records:
        yield record
        continuation.written += 1


def label_to_output(model: Model, documents: Iterable[Document], options: LabelOptions = LabelOptions(), *,
                    fmt: str = "jsonl", output: str | os.PathLike | None = None, resume: bool = False,
                    bom: bool = False, n_jobs: int | None = None, input_path: str | None = None,
                    on_batch=lambda n: None) -> dict:
    """`qism predict`: label `documents` (read from `input_path`, when they come from a file or a
    folder) and write their records in `fmt` to `output` (atomically; stdout when None), continuing
    what an interrupted run left with `resume`. Returns counts: the documents labeled by this run,
    the undecodable characters replaced in them, and with `resume`, `already_complete`: the records
    of an output that an earlier run had finished (nothing is labeled then)."""
    if fmt not in OUTPUT_FORMATS:
        raise QismError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}; got {fmt!r}")
    if bom and fmt != "csv":
        raise QismError("--bom is for --format csv")
    if resume and (output is None or fmt not in RESUMABLE_FORMATS):
        raise QismError(f"--resume continues an --output file in --format {' or '.join(RESUMABLE_FORMATS)}")
    options.check_against(model.labels)
    model.set_jobs(n_jobs)
    replaced, labeled = [0], [0]

    def counted(n: int) -> None:
        labeled[0] += n
        on_batch(n)

    run = describe_run(model, options, fmt, bom, input_path)
    with output_for(output, fmt, run, resume, newline="" if fmt == "csv" else None, input_path=input_path) as target:
        if target.complete:
            return {"documents": 0, "replaced_characters": 0, "already_complete": target.done}
        records = label_documents(model, _counting_replaced(skip_done(documents, target), replaced), options,
                                  batch_size=batch_size_for(n_jobs), on_batch=counted)
        write_records(_counting_written(records, target), fmt, target.out, bom=bom, header=not target.has_header)
    return {"documents": labeled[0], "replaced_characters": replaced[0]}

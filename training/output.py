"""Where records go: writers for people and programs, atomic output files, and `--resume`.

Every writer takes the stream of records `predict.label_documents` makes, so a file of any size is
written in bounded memory. An output file appears whole (see `files.atomic_file`); a run that was
killed leaves its partial beside it, which `--resume` continues without labeling a document twice.
"""

from __future__ import annotations

import csv
import glob
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
from .errors import QismError
from .files import atomic_file
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
def atomic_output(path: str | os.PathLike | None, newline: str | None = None):
    """A text stream that becomes `path` only when the block completes (stdout when None)."""
    if path is None:
        yield sys.stdout
        return
    with atomic_file(path, "w", newline=newline) as handle:
        yield handle


# --- continuing an interrupted run (--resume) -------------------------------------------------

#: Formats whose records are lines, so a cut-off output can be continued.
RESUMABLE_FORMATS = ("jsonl", "csv")


@dataclass
class Continuation:
    """An output being written: its stream, and what an earlier run left in it (records, the id of
    the last one, whether the CSV header is there)."""

    out: IO[str]
    done: int = 0
    last_id: str | None = None
    has_header: bool = False


def _partial_outputs(path: Path) -> list[Path]:
    """What runs killed before they finished left beside `path` (see `atomic_output`)."""
    return list(path.parent.glob(f".{glob.escape(path.name)}.*.part"))


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


@contextmanager
def output_for(path: str | os.PathLike | None, fmt: str, resume: bool = False, newline: str | None = None):
    """A `Continuation` to write records to, atomically (see `atomic_output`).

    With `resume`, the complete records of the newest earlier output come first: `path` itself or
    what a killed run left beside it; the caller skips `done` documents and appends. Either way an
    interruption leaves the earlier file as it was, and the partial outputs go once `path` is whole.
    """
    path = Path(path) if path is not None else None
    partials = _partial_outputs(path) if resume else []
    earlier = [p for p in [path, *partials] if p.is_file()] if resume else []
    with atomic_output(path, newline) as out:
        if earlier:
            yield _copy_complete_records(max(earlier, key=lambda p: p.stat().st_mtime), fmt, out)
        else:
            yield Continuation(out)
    for partial in partials:
        partial.unlink(missing_ok=True)


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


def label_to_output(model: Model, documents: Iterable[Document], options: LabelOptions = LabelOptions(), *,
                    fmt: str = "jsonl", output: str | os.PathLike | None = None, resume: bool = False,
                    bom: bool = False, n_jobs: int | None = None,
                    on_batch=lambda n: None) -> dict:
    """`qism predict`: label `documents` and write their records in `fmt` to `output` (atomically;
    stdout when None), continuing what an interrupted run left with `resume`. Returns counts: the
    documents labeled by this run and the undecodable characters replaced in them."""
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

    with output_for(output, fmt, resume, newline="" if fmt == "csv" else None) as target:
        records = label_documents(model, _counting_replaced(skip_done(documents, target), replaced), options,
                                  batch_size=batch_size_for(n_jobs), on_batch=counted)
        write_records(records, fmt, target.out, bom=bom, header=not target.has_header)
    return {"documents": labeled[0], "replaced_characters": replaced[0]}

"""Label documents with a model, as a stream of records, and write them in the format asked for.

Documents are labeled in batches, so a file of any size runs in bounded memory: one batch of text,
its features and its scores at a time. Every input document yields exactly one record, in order.
"""

from __future__ import annotations

import csv
import glob
import itertools
import json
import os
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from joblib import effective_n_jobs

from .clean import has_arabic_word
from .corpus import Document
from .errors import QismError
from .explain import explain
from .files import make_like_new
from .features import CHUNK_SIZE

OUTPUT_FORMATS = ("table", "json", "jsonl", "csv")


def batch_size_for(n_jobs: int | None) -> int:
    """Enough documents per batch to keep every core busy, few enough to bound memory."""
    return CHUNK_SIZE * max(1, effective_n_jobs(n_jobs)) * 2


def label_documents(model, documents: Iterable[Document], top_k: int = 1, batch_size: int = 1000,
                    on_batch: Callable[[int], None] = lambda n: None, threshold: float = 0.0,
                    unknown_label: str = "unknown", explain_terms: int = 0) -> Iterator[dict]:
    """One record per document: `id` (when known), `label`, `top` (best `top_k` labels) and, when
    `explain_terms` > 0, `terms`: that many terms that pushed it most towards its best label.

    `label` is `unknown_label` when the best probability is below `threshold`, so unsure articles can
    go to a person; `top` still lists the model's labels. A document without usable text (empty, a
    binary file, no Arabic word) is not sent to the model: its record has `unknown_label`, an empty
    `top` and a `reason`.
    """
    labels = model.labels
    names = model.label_names
    top_k = max(1, min(top_k, len(labels)))
    documents = iter(documents)
    while batch := list(itertools.islice(documents, batch_size)):
        records = [_unlabeled(doc, reason, unknown_label, names, explain_terms) if (reason := unusable(doc)) else None
                   for doc in batch]
        positions = [i for i, record in enumerate(records) if record is None]
        usable = [batch[i] for i in positions]
        if usable:
            texts = [doc.text for doc in usable]
            proba, terms = explain(model, texts, explain_terms) if explain_terms else (model.predict_proba(texts), None)
            order = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
            for i, (doc, row, best) in enumerate(zip(usable, proba, order)):
                record = {"id": doc.id} if doc.id is not None else {}
                record["label"] = labels[best[0]] if row[best[0]] >= threshold else unknown_label
                if names:
                    record["label_ar"] = names.get(record["label"], record["label"])
                record["top"] = [_scored(labels[j], row[j], names) for j in best]
                if terms is not None:
                    record["terms"] = terms[i]
                records[positions[i]] = record
        yield from records
        on_batch(len(batch))


def unusable(doc: Document) -> str | None:
    """Why a document cannot be labeled: it was a binary file, it has no text, or no Arabic word in
    it (English, numbers only), where a model of Arabic news would give a label at random."""
    if doc.problem:
        return doc.problem
    if not doc.text or doc.text.isspace():
        return "empty text"
    return None if has_arabic_word(doc.text) else "no Arabic words"


def _unlabeled(doc: Document, reason: str, unknown_label: str, names: dict[str, str], explain_terms: int) -> dict:
    record = {"id": doc.id} if doc.id is not None else {}
    record["label"] = unknown_label
    if names:
        record["label_ar"] = names.get(unknown_label, unknown_label)
    record["top"] = []
    if explain_terms:
        record["terms"] = []
    record["reason"] = reason
    return record


def _scored(label: str, probability: float, names: dict[str, str]) -> dict:
    item = {"label": label, "score": round(float(probability), 4)}
    if names:
        item["label_ar"] = names.get(label, label)
    return item


# --- writers ----------------------------------------------------------------------------------

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
    path = Path(path)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline=newline, dir=path.parent or ".",
                                         prefix=f".{path.name}.", suffix=".part", delete=False)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        make_like_new(handle.name)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


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

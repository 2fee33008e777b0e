"""Label documents with a model, as a stream of records, and write them in the format asked for.

Documents are labeled in batches, so a file of any size runs in bounded memory: one batch of text,
its features and its scores at a time. Every input document yields exactly one record, in order.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from joblib import effective_n_jobs

from .corpus import Document
from .features import CHUNK_SIZE

OUTPUT_FORMATS = ("table", "json", "jsonl", "csv")


def batch_size_for(n_jobs: int | None) -> int:
    """Enough documents per batch to keep every core busy, few enough to bound memory."""
    return CHUNK_SIZE * max(1, effective_n_jobs(n_jobs)) * 2


def label_documents(model, documents: Iterable[Document], top_k: int = 1, batch_size: int = 1000,
                    on_batch: Callable[[int], None] = lambda n: None) -> Iterator[dict]:
    """One record per document: `id` (when known), `label`, and `top` (best `top_k` labels)."""
    labels = model.labels
    names = model.label_names
    top_k = max(1, min(top_k, len(labels)))
    documents = iter(documents)
    while batch := list(itertools.islice(documents, batch_size)):
        proba = model.predict_proba([doc.text for doc in batch])
        order = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
        for doc, row, best in zip(batch, proba, order):
            record = {"id": doc.id} if doc.id is not None else {}
            record["label"] = labels[best[0]]
            if names:
                record["label_ar"] = names.get(record["label"], record["label"])
            record["top"] = [_scored(labels[j], row[j], names) for j in best]
            yield record
        on_batch(len(batch))


def _scored(label: str, probability: float, names: dict[str, str]) -> dict:
    item = {"label": label, "score": round(float(probability), 4)}
    if names:
        item["label_ar"] = names.get(label, label)
    return item


# --- writers ----------------------------------------------------------------------------------

def _write_table(records: Iterable[dict], out: IO[str]) -> None:
    out.write("id\tlabel\tscore\talternatives\n")
    for number, record in enumerate(records, 1):
        best, *rest = record["top"]
        others = "  ".join(f"{item['label']} {item['score']:.2f}" for item in rest)
        out.write(f"{record.get('id', number)}\t{record['label']}\t{best['score']:.2f}\t{others}\n")


def _write_json(records: Iterable[dict], out: IO[str]) -> None:
    out.write("[")
    for i, record in enumerate(records):
        out.write(("," if i else "") + "\n  " + json.dumps(record, ensure_ascii=False))
    out.write("\n]\n")


def _write_jsonl(records: Iterable[dict], out: IO[str]) -> None:
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_csv(records: Iterable[dict], out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(["id", "label", "score", "top"])
    for record in records:
        top = ";".join(f"{item['label']}:{item['score']}" for item in record["top"])
        writer.writerow([record.get("id", ""), record["label"], record["top"][0]["score"], top])


WRITERS = {"table": _write_table, "json": _write_json, "jsonl": _write_jsonl, "csv": _write_csv}


def write_records(records: Iterable[dict], fmt: str, out: IO[str]) -> None:
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
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise

"""`qism select`: the articles whose labels would teach a model most, as a sheet a person fills in.

Uncertainty sampling (Lewis & Gale, 1994) alone picks twenty copies of one story the model cannot
place; so the candidates are the articles the model is least sure of (smallest margin between its
two best sections), and from them articles are taken one at a time, the model's guessed sections
in turn, each the most uncertain of those least like the ones already taken (maximal marginal
relevance on TF-IDF cosine). The sheet
goes back into `qism train --base` as it is: its `label` column, filled with section ids or display
names, is the training label; rows left empty are not trained on.
"""

from __future__ import annotations

import csv
import heapq
import io
import itertools
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .config import ReadOptions
from .corpus import TITLE_COLUMNS, Document, read_sources
from .errors import QismError
from .files import write_atomically
from .model import load_model
from .output import spreadsheet_cell

#: Most articles `select` returns (a person labels them).
MAX_SELECT = 10_000
#: Candidates kept per article asked for: the least certain this many times N, at least MIN_CANDIDATES.
CANDIDATES_PER_PICK = 10
MIN_CANDIDATES = 500
#: How much resemblance to an article already taken costs against uncertainty.
DIVERSITY_WEIGHT = 1.0
#: Articles labeled at a time while the input streams.
BATCH = 1_000
#: Characters of an article shown in the sheet's excerpt.
EXCERPT_CHARS = 300
#: Longest text a spreadsheet cell holds (Excel's limit); longer texts are cut in .xlsx sheets.
XLSX_CELL_CHARS = 32_767
COLUMNS = ("id", "title", "excerpt", "guess", "guess_name", "guess_score", "label", "text")


def uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 minus the margin between the two most probable sections: 1 is a coin toss, 0 sure."""
    top = np.sort(proba, axis=1)[:, -2:]
    return 1.0 - (top[:, 1] - top[:, 0]) if proba.shape[1] > 1 else np.zeros(len(proba))


def least_certain(model, documents: Iterable[Document], keep: int) -> list[tuple[float, int, Document, np.ndarray]]:
    """The `keep` articles of `documents` the model is least sure of, as (uncertainty, position,
    document, probabilities), read in batches so an input of any size takes bounded memory."""
    heap: list[tuple[float, int, Document, np.ndarray]] = []
    position = itertools.count()
    documents = (doc for doc in documents if doc.problem is None and doc.text and not doc.text.isspace())
    while batch := list(itertools.islice(documents, BATCH)):
        proba = model.predict_proba([doc.text for doc in batch])
        for doc, row, unsure in zip(batch, proba, uncertainty(proba)):
            entry = (float(unsure), -next(position), doc, row)  # ties: the earlier article
            if len(heap) < keep:
                heapq.heappush(heap, entry)
            elif entry[:2] > heap[0][:2]:
                heapq.heapreplace(heap, entry)
    return sorted(heap, key=lambda entry: (-entry[0], -entry[1]))


def diverse_picks(unsure: np.ndarray, X: sp.csr_matrix, n: int, guesses: np.ndarray) -> list[int]:
    """`n` rows, each the one of highest uncertainty minus `DIVERSITY_WEIGHT` times its greatest
    cosine similarity to a row already picked (rows of X are L2-normalized), taking the model's
    guessed sections in turn, so that no section the model sees in the input goes unasked."""
    picked: list[int] = []
    closest = np.zeros(X.shape[0])
    available = np.ones(X.shape[0], dtype=bool)
    sections = list(dict.fromkeys(guesses.tolist()))
    for turn in range(min(n, X.shape[0])):
        open_sections = [section for section in sections if (available & (guesses == section)).any()]
        section = open_sections[turn % len(open_sections)]
        gain = np.where(available & (guesses == section), unsure - DIVERSITY_WEIGHT * closest, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, np.asarray(X @ X[best].T.toarray()).ravel())
    return picked


def select(model, documents: Iterable[Document], n: int) -> list[dict]:
    """The `n` articles of `documents` whose labels would teach `model` most, as the sheet's rows."""
    if not 1 <= n <= MAX_SELECT:
        raise QismError(f"-n takes 1 to {MAX_SELECT:,} articles; got {n}")
    candidates = least_certain(model, documents, max(CANDIDATES_PER_PICK * n, MIN_CANDIDATES))
    if not candidates:
        raise QismError("the input has no articles with text to select from")
    X = model.pipeline.named_steps["features"].transform([doc.text for _, _, doc, _ in candidates])
    rows = []
    guesses = np.asarray([int(np.argmax(entry[3])) for entry in candidates])
    for i in diverse_picks(np.asarray([entry[0] for entry in candidates]), X, n, guesses):
        unsure, position, doc, proba = candidates[i]
        guess = model.labels[int(np.argmax(proba))]
        title = dict(doc.fields).get("title", "")
        text = doc.text[len(title) + 1 :] if title and doc.text.startswith(title + "\n") else doc.text
        rows.append(
            {
                "id": doc.id if doc.id is not None else str(1 - position),
                "title": title,
                "excerpt": " ".join(text[:EXCERPT_CHARS].split()),
                "guess": guess,
                "guess_name": model.label_names.get(guess, guess),
                "guess_score": round(float(np.max(proba)), 3),
                "label": "",
                "text": text,
            }
        )
    return rows


def title_column(path: str | None) -> str | None:
    """The title column of a CSV/TSV or JSON Lines input (`title`, `headline` or `عنوان`), if any."""
    if path is None or not Path(path).is_file():
        return None
    name = Path(path).name.lower()
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            first = handle.readline(1 << 20)
    except OSError:
        return None
    if name.endswith((".csv", ".tsv")):
        header = next(csv.reader([first], delimiter="\t" if name.endswith(".tsv") else ","), [])
    elif name.endswith(".jsonl"):
        import json

        try:
            record = json.loads(first)
        except ValueError:
            return None
        header = list(record) if isinstance(record, dict) else []
    else:
        return None
    by_name = {column.strip().lower(): column for column in header}
    return next((by_name[title] for title in TITLE_COLUMNS if title in by_name), None)


def sheet_bytes(rows: list[dict], output: Path) -> bytes:
    """The sheet as a CSV (UTF-8 with a BOM, for Excel) or, for a `.xlsx` name, a workbook."""
    columns = [column for column in COLUMNS if column != "title" or any(row["title"] for row in rows)]
    if output.name.lower().endswith(".xlsx"):
        return _xlsx_bytes(rows, columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([spreadsheet_cell(row[column]) for column in columns] for row in rows)
    return ("\ufeff" + buffer.getvalue()).encode()


def _xlsx_bytes(rows: list[dict], columns: list[str]) -> bytes:
    try:
        from openpyxl import Workbook
    except ImportError:
        raise QismError("writing .xlsx needs openpyxl: pip install 'qism[xlsx]' (or write a .csv)") from None
    book = Workbook()
    sheet = book.active
    sheet.title = "select"
    sheet.sheet_view.rightToLeft = True
    sheet.append(columns)
    for row in rows:
        sheet.append([_xlsx_cell(row[column]) for column in columns])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xlsx_cell(value):
    """A value as a cell that stays text: cut to Excel's limit, never read as a formula."""
    if isinstance(value, str):
        value = spreadsheet_cell(value[:XLSX_CELL_CHARS])
    return value


def select_to_file(
    model_path,
    input_path: str,
    n: int,
    output: str | Path,
    read_options: ReadOptions = ReadOptions(require_labels=False),
    input_format: str | None = None,
    *,
    n_jobs: int | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> int:
    """`qism select`: write the sheet of the `n` articles of `input_path` whose labels would teach the
    model at `model_path` (or `default`) most to `output` (.csv or .xlsx); returns the rows written."""
    output = Path(output)
    if not output.name.lower().endswith((".csv", ".xlsx")):
        raise QismError(f"{output}: the sheet is a .csv or an .xlsx file; name it so")
    if output.name.lower().endswith(".xlsx"):
        _xlsx_bytes([], list(COLUMNS))  # a missing openpyxl says so before the input is read
    if Path(input_path).exists() and output.exists() and output.resolve() == Path(input_path).resolve():
        raise QismError(f"{output}: is the input; write the sheet to another file")
    model = load_model(model_path)
    model.set_jobs(n_jobs)
    title = title_column(input_path)
    if title is not None:
        read_options = replace(read_options, keep_columns=(title,))
    report(f"reading {input_path}")
    documents = read_sources([input_path], read_options, input_format)
    rows = select(
        model, ((replace(doc, fields=(("title", doc.fields[0][1]),)) if title else doc) for doc in documents), n
    )
    write_atomically(output, sheet_bytes(rows, output))
    return len(rows)

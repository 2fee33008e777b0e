"""Where records go: writers for people and programs, atomic output files, and `--resume`.

Every writer takes the stream of records `predict.label_documents` makes, so a file of any size is
written in bounded memory. An output file appears whole (see `files.atomic_file`); a run that was
killed or interrupted leaves its partial beside it, and a run record saying what made it, which
`--resume` continues without labeling a document twice, and only with the same model, input and
options.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import gzip
import hashlib
import io
import itertools
import json
import os
import sys
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from .config import OUTPUT_FORMATS, RECORD_KEYS, LabelOptions, ReadOptions
from .corpus import Document, is_data_file
from .errors import Interrupted, QismError, printable, require_extra
from .files import atomic_file, replaced_atomically, write_atomically, write_target
from .model import Model
from .predict import batch_size_for, label_documents

#: How many records the table reads before it sets its column widths (later rows keep them), and
#: the most cells a kept input column takes in it (longer values are cut there; CSV and JSON keep them whole).
#: Between the labels of a multi-label record's `labels` cell (CSV and table), so a spreadsheet's
#: "text to columns" or pandas' `str.split("|")` splits them.
LABELS_SEPARATOR = "|"
TABLE_BLOCK = 1000
TABLE_KEPT_CELLS = 40


def _with_first(records: Iterable[dict]) -> tuple[dict | None, Iterator[dict]]:
    """The first record (whose keys say what every record carries) and all the records."""
    records = iter(records)
    first = next(records, None)
    return first, (itertools.chain([first], records) if first is not None else records)


@dataclass(frozen=True)
class _Layout:
    """The columns of a CSV or table output, the same for every run with the same model and options
    (so `--resume` continues under the same header): the ranks of `top`, the display names when the
    model has them, the explaining terms, and the input columns kept."""

    top_k: int
    names: bool
    explained: bool
    kept: tuple[str, ...]
    #: A multi-label model's records: a `labels` cell (and `labels_ar`) after the score.
    multi_label: bool = False

    @classmethod
    def of(cls, first: dict | None, top_k: int) -> _Layout:
        if first is None:
            return cls(top_k, False, False, ())
        kept = tuple(key for key in first if key not in RECORD_KEYS)
        return cls(top_k, "label_ar" in first, "terms" in first, kept, "labels" in first)

    def header(self) -> list[str]:
        names = ["label_ar"] if self.names else []
        columns = ["id", "label", *names, "score"]
        if self.multi_label:
            columns += ["labels", *(["labels_ar"] if self.names else [])]
        for rank in range(2, self.top_k + 1):
            columns += [f"label_{rank}", *(f"{name}_{rank}" for name in names), f"score_{rank}"]
        return columns + ["reason", *self.kept] + (["terms"] if self.explained else [])

    def cells(self, record: dict, score: Callable[[float], object], terms: Callable[[list[dict]], str]) -> list:
        """The record's cells in `header` order; `score` and `terms` format those for the output."""
        ranked = record["top"][: self.top_k]
        best = ranked[0]["score"] if ranked else None
        cells = [
            record.get("id", ""),
            record["label"],
            *([record["label_ar"]] if self.names else []),
            "" if best is None else score(best),
        ]
        if self.multi_label:
            keys = ["labels", "labels_ar"] if self.names else ["labels"]
            cells += [LABELS_SEPARATOR.join(record[key]) for key in keys]
        for rank in range(1, self.top_k):
            item = ranked[rank] if rank < len(ranked) else None
            cells += [item["label"] if item else ""] + ([item["label_ar"] if item else ""] if self.names else [])
            cells.append(score(item["score"]) if item else "")
        cells += [record.get("reason", ""), *(record.get(name, "") for name in self.kept)]
        return cells + ([terms(record["terms"])] if self.explained else [])


# --- CSV --------------------------------------------------------------------------------------

#: What a spreadsheet takes for the start of a formula (OWASP, CSV injection): a cell starting with
#: one of these is written with a `'` first, which spreadsheets read as "this is text".
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")


def spreadsheet_cell(value):
    """A cell a spreadsheet shows as text and never runs as a formula (numbers pass as they are)."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def _write_csv(records: Iterable[dict], out: IO[str], header: bool = True, top_k: int = 1) -> None:
    first, records = _with_first(records)
    layout = _Layout.of(first, top_k)
    writer = csv.writer(out)
    if header:
        writer.writerow(layout.header())
    terms = lambda items: ";".join(f"{item['term']}:{item['weight']}" for item in items)
    for record in records:
        writer.writerow([spreadsheet_cell(cell) for cell in layout.cells(record, lambda p: p, terms)])


# --- table ------------------------------------------------------------------------------------

_ZERO_WIDTH_CATEGORIES = ("Mn", "Me", "Cf")


def display_width(text: str) -> int:
    """The terminal cells `text` takes: one a letter (Arabic or Latin), two a wide East Asian
    character, none a combining mark (Arabic vowel signs) or a format character."""
    return sum(
        0
        if unicodedata.category(char) in _ZERO_WIDTH_CATEGORIES
        else 2
        if unicodedata.east_asian_width(char) in "WF"
        else 1
        for char in text
    )


def _right_to_left(text: str) -> bool:
    return any(unicodedata.bidirectional(char) in ("R", "AL") for char in text)


def _fit(text: str, cells: int) -> str:
    """`text` cut to `cells` terminal cells, with … where it was cut."""
    if display_width(text) <= cells:
        return text
    kept, width = [], 0
    for char in text:
        width += display_width(char)
        if width > cells - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def _isolated(text: str) -> str:
    """Arabic in a table cell between FSI and PDI, so a terminal that reorders right-to-left text
    keeps the columns in place (a terminal that does not gives the two no width)."""
    return f"\u2068{text}\u2069" if _right_to_left(text) else text


def _table_rows(layout: _Layout, records: Iterable[dict]) -> Iterator[list[str]]:
    """Each record's cells as the terminal shows them: control characters escaped (see
    `errors.printable`), kept input columns cut to `TABLE_KEPT_CELLS`, and no display name where a
    label has none (the unknown label)."""
    header = layout.header()
    terms = lambda items: ", ".join(f"{item['term']} {item['weight']:.2f}" for item in items)
    kept_at = {header.index(name) for name in layout.kept}
    names_at = [i for i, name in enumerate(header[: header.index("reason")]) if name.startswith("label_ar")]
    for number, record in enumerate(records, 1):
        cells = [printable(str(cell)) for cell in layout.cells({"id": number, **record}, lambda p: f"{p:.2f}", terms)]
        for i in names_at:
            if cells[i] == cells[i - 1]:
                cells[i] = ""
        yield [_fit(cell, TABLE_KEPT_CELLS) if i in kept_at else cell for i, cell in enumerate(cells)]


def _write_table(records: Iterable[dict], out: IO[str], top_k: int = 1) -> None:
    """Columns aligned by display width, for Arabic and Latin alike, two spaces apart. Widths are set
    by the first `TABLE_BLOCK` records, so a table of any length streams; the reason column appears
    when one of them has a reason (a later reason ends its row)."""
    first, records = _with_first(records)
    layout = _Layout.of(first, top_k)
    header = [printable(name) for name in layout.header()]
    rows = _table_rows(layout, records)
    block = list(itertools.islice(rows, TABLE_BLOCK))
    reason_at = header.index("reason")
    late_reasons = not any(row[reason_at] for row in block)
    shown = [i for i in range(len(header)) if not (i == reason_at and late_reasons)]
    widths = {i: max([display_width(header[i])] + [display_width(row[i]) for row in block]) for i in shown}

    def line(cells: list[str], after: str = "") -> str:
        parts = [_isolated(cells[i]) + " " * (widths[i] - display_width(cells[i])) for i in shown]
        return "  ".join(parts + ([_isolated(after)] if after else [])).rstrip() + "\n"

    out.write(line(header))
    for row in itertools.chain(block, rows):
        out.write(line(row, row[reason_at] if late_reasons else ""))


# --- JSON -------------------------------------------------------------------------------------


def _record_encoder() -> Callable[[dict], str]:
    """`json.dumps(record, ensure_ascii=False)`, byte for byte, without its Python-level detours per
    record (a new encoder for each call, then a new C encoder for each): the C encoder is made once
    and writes each record whole. Records are trees of dicts, lists, text and numbers, so the check
    for circular references is left out. Where `json` has no C encoder, `dumps`'s own way."""
    python_encoder = json.JSONEncoder(ensure_ascii=False)
    if json.encoder.c_make_encoder is None:
        return python_encoder.encode
    c_encoder = json.encoder.c_make_encoder(
        None,
        python_encoder.default,
        json.encoder.encode_basestring,
        None,
        python_encoder.key_separator,
        python_encoder.item_separator,
        False,
        False,
        True,
    )
    return lambda record: "".join(c_encoder(record, 0))


_encode_record = _record_encoder()


def _write_json(records: Iterable[dict], out: IO[str]) -> None:
    out.write("[")
    for i, record in enumerate(records):
        out.write(("," if i else "") + "\n  " + _encode_record(record))
    out.write("\n]\n")


def _write_jsonl(records: Iterable[dict], out: IO[str]) -> None:
    for record in records:
        out.write(_encode_record(record) + "\n")


#: Rows of a Parquet output written at a time.
PARQUET_BATCH_ROWS = 2000


def _parquet_schema(first: dict | None):
    """The columns of a Parquet output: qism's record keys, then the input columns kept, as text."""
    pa = require_extra("pyarrow", "parquet")
    item = pa.struct([("label", pa.string()), ("score", pa.float64()), ("label_ar", pa.string())])
    kept = [key for key in (first or {}) if key not in RECORD_KEYS]
    fields = [("id", pa.string()), ("label", pa.string()), ("label_ar", pa.string())]
    if first is not None and "labels" in first:  # a multi-label model's chosen labels
        fields += [("labels", pa.list_(pa.string())), ("labels_ar", pa.list_(pa.string()))]
    fields.append(("top", pa.list_(item)))
    return pa.schema([*fields, ("reason", pa.string()), *((key, pa.string()) for key in kept)])


def _write_parquet(records: Iterable[dict], out: IO[bytes]) -> None:
    pa = require_extra("pyarrow", "parquet")
    pq = require_extra("pyarrow.parquet", "parquet")
    first, records = _with_first(records)
    schema = _parquet_schema(first)
    with pq.ParquetWriter(out, schema) as writer:
        batch: list[dict] = []
        for record in records:
            batch.append({key: record.get(key) for key in schema.names})
            if len(batch) == PARQUET_BATCH_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch or first is None:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))


def write_record_bytes(records: Iterable[dict], fmt: str, out: IO[bytes], compress: bool = False) -> int:
    """Write `records` as JSON Lines (gzipped with `compress`) or Parquet to a binary stream, with the
    same writers as `write_records`; return how many were written."""
    counted = [0]

    def counting(records: Iterable[dict]) -> Iterator[dict]:
        for record in records:
            counted[0] += 1
            yield record

    if fmt == "parquet":
        _write_parquet(counting(records), out)
        return counted[0]
    # mtime 0: the same labels make the same bytes, so a rerun writes an identical file
    packed = gzip.GzipFile(fileobj=out, mode="wb", mtime=0) if compress else contextlib.nullcontext(out)
    with packed as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="\n", write_through=True)
        _write_jsonl(counting(records), text)
        text.flush()
        text.detach()  # the stream stays open for its owner
    return counted[0]


def write_records(
    records: Iterable[dict], fmt: str, out: IO[str], bom: bool = False, header: bool = True, top_k: int = 1
) -> None:
    """Write `records` in format `fmt`; `bom` starts with a UTF-8 byte order mark, which Excel needs
    to read a CSV file as UTF-8. `header=False` continues an output that has its start already.
    `top_k` is how many ranked labels the CSV and table have columns for."""
    if bom and header:
        out.write("\ufeff")
    if fmt == "csv":
        _write_csv(records, out, header, top_k)
    elif fmt == "table":
        _write_table(records, out, top_k)
    else:
        {"json": _write_json, "jsonl": _write_jsonl}[fmt](records, out)
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
RUN_OPTIONS = {
    "format": "--format",
    "top_k": "--top-k",
    "explain": "--explain",
    "threshold": "--threshold",
    "unknown_label": "--unknown-label",
    "bom": "--bom",
    "text_column": "--text-column",
    "id_column": "--id-column",
    "keep_columns": "--keep-columns",
    "encoding": "--encoding",
    "errors": "--errors",
}
#: Bytes of an input read at a time while it is hashed for its run record or manifest.
INPUT_HASH_BLOCK = 1 << 20


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


def describe_run(
    model: Model,
    options: LabelOptions,
    fmt: str,
    bom: bool,
    input_path: str | None,
    read_options: ReadOptions = ReadOptions(),
) -> dict:
    """What decides the records of a run: the model (the checksums of its files and its display
    names), the input (see `input_fingerprint`) and the options (`RUN_OPTIONS`)."""
    card = model.card
    decisive = card.get("files") or card  # a model never saved has no checksums: its whole card
    digest = hashlib.sha256(json.dumps([decisive, card.get("label_names")], sort_keys=True, default=str).encode())
    chosen = {"format": fmt, "bom": bom, **asdict(options), **asdict(read_options)}
    return {
        "model": {"name": card.get("name"), "sha256": digest.hexdigest()},
        "input": input_fingerprint(input_path),
        "options": json.loads(json.dumps({key: chosen[key] for key in RUN_OPTIONS})),
    }  # as the record stores them


def input_fingerprint(input_path: str | None) -> dict:
    """A file by its size and the SHA-256 of its whole content, wherever it is (an edited input of
    the same size is another input; hashing runs far faster than labeling); a folder (or a FIFO) by
    its real path. Standard input and arguments cannot be told apart: for them, and in a folder, the
    ids of the records already written are checked against the input (see `skip_done`)."""
    if input_path is None or str(input_path) == "-":
        return {"path": None}
    path = os.path.realpath(input_path)
    if not os.path.isfile(path):
        return {"path": path}
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(INPUT_HASH_BLOCK):
            digest.update(block)
    return {"path": path, "size": os.path.getsize(path), "sha256": digest.hexdigest()}


def _run_record_path(target: Path) -> Path:
    """Where the record of the run writing `target` is kept: a hidden file beside it."""
    return target.with_name(f".{target.name}.qism-run.json")


def _read_run_record(record: Path, shown: str) -> dict | None:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise QismError(
            f"{shown}: its run record {record.name} cannot be read ({err}); run without --resume to start again"
        ) from None
    if not isinstance(data, dict) or data.get("format") != "qism-run" or not isinstance(data.get("run"), dict):
        raise QismError(
            f"{shown}: its run record {record.name} is not one qism wrote; run without --resume to start again"
        )
    return data


def _write_run_record(record: Path, run: dict, **state) -> None:
    write_atomically(
        record, json.dumps({"format": "qism-run", "run": run, **state}, ensure_ascii=False, indent=1).encode("utf-8")
    )


def _run_difference(recorded: dict, run: dict) -> str | None:
    """How this run differs from the one that wrote an output, in the user's words (None: the same)."""
    if recorded.get("model", {}).get("sha256") != run["model"]["sha256"]:
        return f"another model ({recorded.get('model', {}).get('name') or 'unnamed'})"
    before, now = recorded.get("input", {}), run["input"]
    if before.get("path") != now["path"] and (before.get("size") is None or now.get("size") is None):
        return f"another input ({before.get('path') or 'standard input or arguments'})"
    if (before.get("size"), before.get("sha256")) != (now.get("size"), now.get("sha256")):
        return (
            f"another input ({before.get('path')}, {before.get('size') or 0:,} bytes then; "
            f"{now.get('size') or 0:,} bytes now)"
        )
    for key, option in RUN_OPTIONS.items():
        old, new = recorded.get("options", {}).get(key), run["options"][key]
        if old != new:
            return f"{_as_given(option, old)}, not {_as_given(option, new)}"
    return None


def _as_given(option: str, value) -> str:
    """An option's value as the command line gives it: `--top-k 2`, `--bom`, `no --id-column`."""
    if value is None or value is False or value == []:
        return f"no {option}"
    if value is True:
        return option
    return f"{option} {','.join(value) if isinstance(value, list) else value}"


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


def _complete_records(source: Path, fmt: str) -> Iterator[tuple[str, str | None]]:
    """The complete records of an output in `fmt` (a CSV file's header first), as --resume reads them."""
    reader = _csv_records if fmt == "csv" else _jsonl_records
    # a killed run can leave half a character at the end: replaced, it only spoils the cut-off record
    with open(source, encoding="utf-8", errors="replace", newline="") as handle:
        yield from reader(handle)


def _copy_complete_records(source: Path, fmt: str, out: IO[str]) -> Continuation:
    copied, last_id = 0, None
    for text, record_id in _complete_records(source, fmt):
        out.write(text)
        copied, last_id = copied + 1, record_id
    header = fmt == "csv" and copied > 0
    return Continuation(out, copied - header, last_id if copied > header else None, header)


def _count_complete_records(source: Path, fmt: str) -> int:
    """How many records --resume will find in `source` (not counting a CSV header)."""
    count = sum(1 for _ in _complete_records(source, fmt))
    return count - (fmt == "csv" and count > 0)


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
        raise QismError(
            f"{shown}: no record of the run that wrote it, so it cannot be continued; "
            "run without --resume to start again"
        )
    difference = _run_difference(recorded["run"], run)
    if difference:
        raise QismError(
            f"{shown} was written with {difference}; resume with the same model, input and options, "
            "or run without --resume to start again"
        )
    return earlier, recorded


def _refuse_writing_the_input(shown: str, target: Path, input_path: str | None) -> None:
    """The output must not replace the input, nor sit in an input folder under an article's name."""
    if input_path is None or str(input_path) == "-":
        return
    if target.exists() and os.path.samefile(target, input_path):
        raise QismError(f"--output {shown} is the input; write the records to another file")
    folder = Path(os.path.realpath(input_path))
    read_there = target.suffix.lower() == ".txt" or is_data_file(target.name)
    if folder.is_dir() and folder in Path(os.path.realpath(target)).parents and read_there:
        raise QismError(
            f"--output {shown} is inside the input folder, where it would be read as an article or a data file; "
            "write it elsewhere, or name it NAME.labels.jsonl (or .csv), which qism does not read"
        )


@contextmanager
def output_for(
    path: str | os.PathLike | None,
    fmt: str,
    run: dict,
    resume: bool = False,
    newline: str | None = None,
    input_path: str | None = None,
):
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
    if record.is_symlink() or (record.exists() and not record.is_file()):
        raise QismError(f"{record}: a link or not a file where qism keeps the record of its run; remove it")
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
            opened = _copy_complete_records(earlier, fmt, out) if earlier else Continuation(out)
            if recorded_run:  # after the copy: until it is done, the earlier partial is the one to resume
                _write_run_record(record, run, partial=partial.name)
            continuation = opened  # from here on, Ctrl-C keeps this run's partial
            yield continuation
    except BaseException as err:
        # counted in the partial: Ctrl-C can come between a record's writing and its counting
        interrupted = isinstance(err, KeyboardInterrupt) and continuation is not None and partial is not None
        kept = _count_complete_records(partial, fmt) if interrupted else 0
        if kept:
            for other in _partial_outputs(target):
                if other != partial:
                    other.unlink(missing_ok=True)  # its records are in the partial kept
            raise Interrupted(f"{kept:,} records kept in the partial; run again with --resume to finish") from None
        if partial is not None:
            partial.unlink(missing_ok=True)
        if previous_record is not None:  # this run left nothing: the record describes what is there again
            write_atomically(record, previous_record)
        elif recorded_run:
            record.unlink(missing_ok=True)
        if isinstance(err, KeyboardInterrupt) and earlier:
            raise Interrupted("what the earlier run left is as it was; run again with --resume to finish") from None
        raise
    for left in _partial_outputs(target):
        left.unlink(missing_ok=True)  # what runs that did not finish left: the output is whole now
    if recorded_run:
        _write_run_record(
            record,
            run,
            complete=True,
            records=continuation.done + continuation.written,
            output_bytes=target.stat().st_size,
        )
    elif record.exists():
        record.unlink()  # it described the file just replaced


def skip_done(documents: Iterable[Document], continuation: Continuation) -> Iterator[Document]:
    """The documents an earlier run did not label, after checking that it labeled the same ones."""
    documents = iter(documents)
    skipped = deque(enumerate(itertools.islice(documents, continuation.done), 1), maxlen=1)
    count, last = skipped[0] if skipped else (0, None)
    if count < continuation.done:
        raise QismError(
            "the output to resume holds more records than the input has documents; "
            "is it the same input? Run without --resume to start again"
        )
    if last is not None and continuation.last_id and last.id and last.id != continuation.last_id:
        raise QismError(
            f"the output to resume ends with id {continuation.last_id!r} where the input has "
            f"{last.id!r}; is it the same input? Run without --resume to start again"
        )
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


def label_to_output(
    model: Model,
    documents: Iterable[Document],
    options: LabelOptions = LabelOptions(),
    *,
    fmt: str = "jsonl",
    output: str | os.PathLike | None = None,
    resume: bool = False,
    bom: bool = False,
    n_jobs: int | None = None,
    input_path: str | None = None,
    read_options: ReadOptions = ReadOptions(),
    on_batch=lambda n: None,
) -> dict:
    """`qism predict`: label `documents` (read from `input_path` with `read_options`, when they come
    from a file or a folder) and write their records in `fmt` to `output` (atomically; stdout when
    None), continuing what an interrupted run left with `resume`. Returns counts: the documents
    labeled by this run, the undecodable characters replaced in them, and with `resume`,
    `already_complete`: the records of an output an earlier run had finished (nothing is labeled)."""
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

    run = describe_run(model, options, fmt, bom, input_path, read_options)
    with output_for(output, fmt, run, resume, newline="" if fmt == "csv" else None, input_path=input_path) as target:
        if target.complete:
            return {"documents": 0, "replaced_characters": 0, "already_complete": target.done}
        records = label_documents(
            model,
            _counting_replaced(skip_done(documents, target), replaced),
            options,
            batch_size=batch_size_for(n_jobs),
            on_batch=counted,
        )
        write_records(
            _counting_written(records, target),
            fmt,
            target.out,
            bom=bom,
            header=not target.has_header,
            top_k=min(options.top_k, len(model.labels)),
        )
    return {"documents": labeled[0], "replaced_characters": replaced[0]}

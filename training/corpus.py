"""Read labeled (or unlabeled) articles from the shapes corpora come in, as a stream of documents.

A source is picked by what its path is: a folder with one sub-folder per label, a `.zip` of the same
layout (also under one top folder, as SANAD ships), a `.csv`/`.tsv` with a header, or `.jsonl` /
`.jsonl.gz`. Readers yield documents one at a time, so a file of any size streams through.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import QismError

TEXT_COLUMNS = ("text", "content", "body", "article")
LABEL_COLUMNS = ("label", "class", "category", "section", "topic")
ID_COLUMNS = ("id", "doc_id", "article_id")
TITLE_COLUMNS = ("title", "headline")

#: Formats a user can name with --format where the path alone does not say.
FORMATS = ("folder", "zip", "csv", "tsv", "jsonl", "txt", "lines")


@dataclass(frozen=True, slots=True)
class Document:
    text: str
    label: str | None = None
    id: str | None = None
    #: Where the document came from: the outlet named in the record, else the file it was read from.
    source: str | None = None


@dataclass(frozen=True)
class ReadOptions:
    """How to read sources: column names, encoding, and whether labels are required."""

    text_column: str | None = None
    label_column: str | None = None
    encoding: str | None = None
    require_labels: bool = True


def decode(data: bytes, name: str, encoding: str | None = None) -> str:
    """Bytes to text: the named encoding, else a BOM, else UTF-8, else Windows-1256."""
    if encoding:
        try:
            return data.decode(encoding)
        except LookupError:
            raise QismError(f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as err:
            raise QismError(f"{name}: not valid {encoding} at byte {err.start}") from None
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(codec)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        try:
            return data.decode("cp1256")
        except UnicodeDecodeError:
            raise QismError(f"{name}: not valid UTF-8 at byte {err.start}; name the encoding with --encoding") from None


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "folder"
    name = path.name.lower()
    for suffix, fmt in ((".zip", "zip"), (".csv", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl"),
                        (".jsonl.gz", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"), (".txt", "txt")):
        if name.endswith(suffix):
            return fmt
    raise QismError(f"{path}: unknown format; expected a folder, .zip, .csv, .tsv, .jsonl, .jsonl.gz or .txt")


def read_source(path: str | os.PathLike, options: ReadOptions = ReadOptions(), fmt: str | None = None) -> Iterator[Document]:
    """Yield the documents of one source (`-` is standard input, one article or one per line)."""
    if str(path) == "-":
        yield from _read_stdin(options, lines=(fmt == "lines"))
        return
    path = Path(path)
    if not path.exists():
        raise QismError(f"{path}: no such file or folder")
    fmt = fmt or detect_format(path)
    reader = {
        "folder": _read_folder,
        "zip": _read_zip,
        "csv": _read_table,
        "tsv": _read_table,
        "jsonl": _read_jsonl,
        "txt": _read_text_file,
        "lines": _read_lines_file,
    }[fmt]
    try:
        yield from reader(path, options)
    except UnicodeDecodeError as err:
        raise QismError(f"{path}: undecodable bytes ({err.reason}); name the encoding with --encoding") from None
    except OSError as err:
        raise QismError(f"{path}: {err.strerror or err}") from None


def read_sources(paths: Iterable[str | os.PathLike], options: ReadOptions = ReadOptions(), fmt: str | None = None) -> Iterator[Document]:
    for path in paths:
        yield from read_source(path, options, fmt)


# --- folder and zip ---------------------------------------------------------------------------

def _label_of(parts: tuple[str, ...], options: ReadOptions, where: str) -> str | None:
    """The folder an article sits in is its label."""
    if len(parts) >= 2:
        return parts[-2]
    if options.require_labels:
        raise QismError(f"{where}: article outside a label folder; put each article under <label>/")
    return None


def _read_folder(root: Path, options: ReadOptions) -> Iterator[Document]:
    files = sorted(p for p in root.rglob("*.txt") if p.is_file())
    if not files:
        raise QismError(f"{root}: no .txt articles found (expected <label>/<article>.txt)")
    for file in files:
        parts = file.relative_to(root).parts
        yield Document(
            text=decode(file.read_bytes(), str(file), options.encoding),
            label=_label_of(parts, options, str(file)),
            id="/".join(parts),
            source=root.name,
        )


def _read_zip(path: Path, options: ReadOptions) -> Iterator[Document]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise QismError(f"{path}: not a valid zip archive") from None
    with archive:
        entries = sorted(
            (info for info in archive.infolist() if not info.is_dir() and info.filename.lower().endswith(".txt")),
            key=lambda info: info.filename,
        )
        if not entries:
            raise QismError(f"{path}: no .txt articles in the archive (expected <label>/<article>.txt)")
        for info in entries:
            parts = PurePosixPath(info.filename).parts
            yield Document(
                text=decode(archive.read(info), f"{path}:{info.filename}", options.encoding),
                label=_label_of(parts, options, f"{path}:{info.filename}"),
                id=info.filename,
                source=path.name,
            )


# --- tables -----------------------------------------------------------------------------------

def _find_column(header: list[str], wanted: str | None, defaults: tuple[str, ...], what: str, path: Path, required: bool) -> int | None:
    lowered = [name.strip().lower() for name in header]
    candidates = (wanted,) if wanted else defaults
    for name in candidates:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    if required:
        named = f"column {wanted!r}" if wanted else f"a {what} column ({', '.join(defaults)})"
        raise QismError(f"{path}: no {named}; columns are: {', '.join(header)}")
    return None


_SNIFF_BYTES = 1 << 16


def _sniff_encoding(head: bytes, encoding: str | None) -> str:
    """The encoding to stream a text file with, judged from its first bytes (see `decode`)."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise QismError(f"unknown encoding {encoding!r}") from None
        return encoding
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not just a character cut at the end of the sample
            return "cp1256"
    return "utf-8"


def _open_text(path: Path, options: ReadOptions, newline: str | None = None) -> io.TextIOWrapper:
    """Open a (possibly gzipped) text file for streaming, in its own encoding."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as probe:
        head = probe.read(_SNIFF_BYTES)
    encoding = _sniff_encoding(head, options.encoding)
    return io.TextIOWrapper(opener(path, "rb"), encoding=encoding, newline=newline)


def _read_table(path: Path, options: ReadOptions) -> Iterator[Document]:
    csv.field_size_limit(sys.maxsize)
    delimiter = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    with _open_text(path, options, newline="") as handle:
        rows = csv.reader(handle, delimiter=delimiter)
        header = next(rows, None)
        if not header:
            raise QismError(f"{path}: empty file, expected a header row")
        text_at = _find_column(header, options.text_column, TEXT_COLUMNS, "text", path, True)
        label_at = _find_column(header, options.label_column, LABEL_COLUMNS, "label", path, options.require_labels)
        id_at = _find_column(header, None, ID_COLUMNS, "id", path, False)
        title_at = _find_column(header, None, TITLE_COLUMNS, "title", path, False)
        for row in rows:
            if not row:
                continue
            if len(row) != len(header):
                raise QismError(f"{path}: line {rows.line_num}: {len(row)} fields, the header has {len(header)}")
            text = row[text_at]
            if title_at is not None and row[title_at]:
                text = f"{row[title_at]}\n{text}"
            yield Document(
                text=text,
                label=row[label_at] if label_at is not None else None,
                id=row[id_at] if id_at is not None else None,
                source=path.name,
            )


def _read_jsonl(path: Path, options: ReadOptions) -> Iterator[Document]:
    text_key = options.text_column or "text"
    label_key = options.label_column or "label"
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(decode(raw, f"{path}: line {number}", options.encoding))
            except json.JSONDecodeError as err:
                raise QismError(f"{path}: line {number}: not valid JSON ({err.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_key), str):
                raise QismError(f"{path}: line {number}: no {text_key!r} text in the record")
            label = record.get(label_key)
            if options.require_labels and not isinstance(label, str):
                raise QismError(f"{path}: line {number}: no {label_key!r} in the record")
            text = record[text_key]
            if isinstance(record.get("title"), str) and record["title"]:
                text = f"{record['title']}\n{text}"
            yield Document(
                text=text,
                label=label if isinstance(label, str) else None,
                id=str(record["id"]) if record.get("id") is not None else None,
                source=str(record["source"]) if record.get("source") else path.name,
            )


# --- plain text -------------------------------------------------------------------------------

def _read_text_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    if options.require_labels:
        raise QismError(f"{path}: a single .txt file has no label; give a folder of <label>/<article>.txt")
    yield Document(text=decode(path.read_bytes(), str(path), options.encoding), id=path.name, source=path.name)


def _read_lines_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    with _open_text(path, options) as handle:
        for number, line in enumerate(handle, 1):
            yield Document(text=line.rstrip("\r\n"), id=str(number), source=path.name)


def _read_stdin(options: ReadOptions, lines: bool) -> Iterator[Document]:
    stream = io.TextIOWrapper(sys.stdin.buffer, encoding=options.encoding or "utf-8-sig") if hasattr(sys.stdin, "buffer") else sys.stdin
    if lines:
        for number, line in enumerate(stream, 1):
            yield Document(text=line.rstrip("\r\n"), id=str(number), source="<stdin>")
    else:
        yield Document(text=stream.read(), id="1", source="<stdin>")

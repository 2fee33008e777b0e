"""Sources of one record a line or row: CSV and TSV with a header, JSON Lines (also gzipped), fastText
files, plain lines, and standard input. Every column is found by the one policy of `columns`."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..config import ReadOptions
from ..errors import QismError
from . import limits
from .columns import Columns, record_document, with_short_forms
from .decoding import BOMS, bounded_bytes, decode, stream_lines, text_lines
from .documents import Document, label_list, without_lone_surrogates
from .registry import reader


def _table_rows(rows, path: Path) -> Iterator[tuple[str, list[str]]]:
    """Each CSV row with where it is (`line 7`, or `lines 7-9` for a row with line breaks); a quoting
    error stops reading with the line the bad row starts on (`rows` is a strict csv.reader)."""
    while True:
        start = rows.line_num + 1
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as err:
            if "field larger than field limit" in str(err):
                raise QismError(
                    f"{path}: line {start}: a field of more than the {limits.MAX_FILE_BYTES:,} characters "
                    "qism reads as one article; split it into articles, or check its quotes"
                ) from None
            if "unexpected end of data" in str(err):
                raise QismError(
                    f"{path}: line {start}: a quote opened in this row never closes, so the rest of "
                    "the file would be one field; close the quote"
                ) from None
            raise QismError(
                f"{path}: {_lines(start, rows.line_num)}: {err}; a quote inside a field must be "
                'doubled ("") and the field quoted'
            ) from None
        yield _lines(start, rows.line_num), row


def _lines(first: int, last: int) -> str:
    return f"line {first}" if last <= first else f"lines {first}-{last}"


@reader("csv", (".csv", ".csv.gz"), columns=True, data=True)
@reader("tsv", (".tsv", ".tsv.gz"), columns=True, data=True)
def _read_table(path: Path, options: ReadOptions) -> Iterator[Document]:
    csv.field_size_limit(limits.MAX_FILE_BYTES)
    delimiter = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    rows = _table_rows(csv.reader(text_lines(path, options), delimiter=delimiter, strict=True), path)
    _, header = next(rows, (None, None))
    if not header:
        raise QismError(f"{path}: empty file, expected a header row")
    columns = Columns.of(header, options, str(path))
    at = {name: header.index(name) for name in columns.used}
    for where, row in rows:
        if not row:
            continue
        if len(row) != len(header):
            hint = "a quote may be unbalanced" if where.startswith("lines") else "quote fields that hold the delimiter"
            raise QismError(f"{path}: {where}: {len(row)} fields, the header has {len(header)}; {hint}")
        values = {name: row[index] for name, index in at.items()}
        document = record_document(values, columns, options, f"{path}: {where}", path.name)
        yield from with_short_forms(document, values, columns, options)


def _json_record(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise QismError(
            f"{where}: not valid JSON ({getattr(err, 'msg', err)}); each line must hold one JSON object"
        ) from None
    if not isinstance(record, dict):
        raise QismError(f"{where}: not a JSON object; each line must hold one object with the text and the label")
    return record


@reader("jsonl", (".jsonl", ".jsonl.gz", ".ndjson", ".json"), columns=True, data=True)
def _read_jsonl(path: Path, options: ReadOptions) -> Iterator[Document]:
    lines = ((f"{path}: line {number}", line) for number, line in enumerate(text_lines(path, options), 1))
    return jsonl_documents(lines, path.name, options)


def jsonl_documents(lines: Iterable[tuple[str, str]], name: str, options: ReadOptions) -> Iterator[Document]:
    """The documents of JSON Lines, given as (where, line) pairs (where: for messages); `name` is the
    outlet of records that name none. The first record's keys decide the columns, as a header would
    (a later record may lack one: sparse data)."""
    columns = None
    for where, line in lines:
        if not line.strip():
            continue
        record = _json_record(line, where)
        columns = columns or Columns.of(list(record), options, where, "key")
        for document in with_short_forms(
            record_document(record, columns, options, where, name), record, columns, options
        ):
            yield without_lone_surrogates(document) if "\\u" in line else document


def _lines_in_range(path: Path, start: int, end: int, errors: str) -> Iterator[tuple[str, str]]:
    """(where, line) of each line that starts in [start, end) of a UTF-8 file: a line belongs to the
    range its first byte is in, so ranges side by side read every line once."""
    with open(path, "rb") as handle:
        if start:
            handle.seek(start - 1)
            _bounded_line(handle, path, start - 1)  # the rest of the line the previous range holds
        while (offset := handle.tell()) < end and (line := _bounded_line(handle, path, offset)):
            try:
                yield f"{path}: byte {offset}", line.decode("utf-8-sig" if offset == 0 else "utf-8", errors)
            except UnicodeDecodeError as err:
                raise QismError(
                    f"{path}: byte {offset + err.start}: not UTF-8; name the encoding with --encoding "
                    "or use --errors replace"
                ) from None


def _bounded_line(handle, path: Path, offset: int) -> bytes:
    line = handle.readline(limits.MAX_FILE_BYTES + 1)
    if len(line) > limits.MAX_FILE_BYTES:
        raise QismError(f"{path}: byte {offset}: a line of more than the {limits.MAX_FILE_BYTES:,} bytes qism reads")
    return line


def read_jsonl_range(path: Path, byte_range: tuple[int, int], options: ReadOptions) -> Iterator[Document]:
    """The documents of the JSON Lines records that start in `byte_range` of a UTF-8 file (a shard of
    a big file, labeled as one task of the cluster engine)."""
    return jsonl_documents(_lines_in_range(path, *byte_range, options.errors), path.name, options)


#: What starts each label of a fastText line (`__label__sports __label__economy text ...`).
FASTTEXT_LABEL = "__label__"


_FASTTEXT_SNIFF_BYTES = 1 << 12


def looks_like_fasttext(path: Path) -> bool:
    """Whether a regular file's first line that is not blank starts with a fastText label (a FIFO or
    device is not looked into: what is read to look is lost to the reading)."""
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        head = handle.read(_FASTTEXT_SNIFF_BYTES)
    for bom, _ in BOMS:
        head = head.removeprefix(bom)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return head.lstrip().startswith(FASTTEXT_LABEL.encode())


#: A fastText line's leading labels (`__label__a __label__b `); the rest of the line is its text.
_FASTTEXT_LABELS_RE = re.compile(rf"[^\S\n]*((?:{FASTTEXT_LABEL}\S*(?:\s+|$))*)")


def fasttext_document(line: str, where: str, options: ReadOptions) -> Document:
    """One fastText line as a document: its leading `__label__` words are its labels (a list when
    more than one), the rest its text (a line with labels only has an empty text, counted as such)."""
    found = _FASTTEXT_LABELS_RE.match(line)
    names = [word[len(FASTTEXT_LABEL) :] for word in found.group(1).split()]
    labels = label_list(names, where, options.label_separator)
    return Document(
        text=line[found.end() :].rstrip("\r\n"),
        label=labels[0] if labels else None,
        labels=labels if len(labels) > 1 else (),
    )


@reader("fasttext", sniff=looks_like_fasttext)
def _read_fasttext(path: Path, options: ReadOptions) -> Iterator[Document]:
    for number, line in enumerate(text_lines(path, options), 1):
        if line.strip():
            document = fasttext_document(line, f"{path}: line {number}", options)
            yield dataclasses.replace(document, id=str(number), outlet=path.name)


@reader("lines")
def _read_lines_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    for number, line in enumerate(text_lines(path, options), 1):
        yield Document(text=line.rstrip("\r\n"), id=str(number), outlet=path.name)


def read_stdin(path: str, options: ReadOptions, lines: bool) -> Iterator[Document]:
    """Standard input, read once like a file: one article per line, or one article."""
    if sys.stdin is None:
        raise QismError("standard input is closed; give the articles as arguments or with --input")
    if lines:
        for number, line in enumerate(stream_lines(sys.stdin.buffer, "<stdin>", options), 1):
            yield Document(text=line.rstrip("\r\n"), id=str(number), outlet="<stdin>")
    else:
        data = bounded_bytes(sys.stdin.buffer, "<stdin>")
        yield Document(text=decode(data, "<stdin>", options.encoding, options.errors), id="1", outlet="<stdin>")

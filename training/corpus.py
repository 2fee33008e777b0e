"""Read labeled (or unlabeled) articles from the shapes corpora come in, as a stream of documents.

A source is picked by what its path is: a folder with one sub-folder per label, a `.zip` of the same
layout (also under one top folder, as SANAD ships), a `.csv`/`.tsv` with a header, or `.jsonl` /
`.jsonl.gz`. Readers yield documents one at a time, so a file of any size streams through.

Corpora from unknown places are read defensively: the encoding is guessed (a BOM, else UTF-8 unless
bytes that are not UTF-8 are common, then Windows-1256), a bad byte is named by its offset, binary
files renamed `.txt` are passed on as documents without text (see `Document.problem`), zip entries
that point outside the archive are refused, archives that unpack to more than `MAX_ARCHIVE_BYTES`
are refused before they are read, and folder links are followed once each, so a link loop ends.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import io
import itertools
import json
import os
import re
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .config import ReadOptions
from .errors import QismError

TEXT_COLUMNS = ("text", "content", "body", "article")
LABEL_COLUMNS = ("label", "class", "category", "section", "topic")
ID_COLUMNS = ("id", "doc_id", "article_id", "guid")
TITLE_COLUMNS = ("title", "headline")

#: Formats a user can name with --format where the path alone does not say.
FORMATS = ("folder", "zip", "csv", "tsv", "jsonl", "txt", "lines")

#: The `problem` of a file that holds binary data (an image renamed .txt): passed on without text.
BINARY_FILE = "binary file"
#: The `problem` of a label folder with no articles, passed on so the training card can name it.
EMPTY_LABEL_FOLDER = "empty label folder"

#: The most a zip archive may unpack to, and the most one article file may hold (a zip bomb or a
#: file that is not an article stops with a message instead of filling memory).
MAX_ARCHIVE_BYTES = 4 << 30
MAX_FILE_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class Document:
    text: str
    label: str | None = None
    id: str | None = None
    #: Where the document came from: the outlet its record names, else the file it was read from.
    outlet: str | None = None
    #: Why the entry has no text to use (`BINARY_FILE`, `EMPTY_LABEL_FOLDER`), so that training can
    #: count it and prediction can still give it a record.
    problem: str | None = None
    #: The input columns its record carries to the output (`ReadOptions.keep_columns`), as (name, value).
    fields: tuple[tuple[str, str], ...] = ()


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_UTF8_REPLACEMENT = "\ufffd".encode()
#: Up to this many non-UTF-8 sequences per non-ASCII character, bytes are UTF-8 with some damage
#: (to report by offset); more, and they are in another encoding (Windows-1256).
_DAMAGED_UTF8_SHARE = 0.1


def _checked_encoding(encoding: str) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise QismError(f"unknown encoding {encoding!r}") from None
    return encoding


def _guess_encoding(data: bytes) -> str:
    """A BOM's encoding, else UTF-8 unless bytes that are not UTF-8 are common, else Windows-1256.

    A few bad bytes in UTF-8 text are damage to name (or replace), not a sign of another encoding;
    decoding such a file as Windows-1256 would turn all its Arabic into nonsense.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as err:
        if err.reason == "unexpected end of data":  # only the last character is cut
            return "utf-8"
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd") - data.count(_UTF8_REPLACEMENT)
    non_ascii = len(text) - len(text.encode("ascii", "ignore")) - bad
    return "utf-8" if bad <= _DAMAGED_UTF8_SHARE * non_ascii else "cp1256"


def _undecodable(name: str, encoding: str, offset: int) -> str:
    return (f"{name}: not valid {encoding} at byte {offset:,}; "
            "name the encoding with --encoding, or use --errors replace to put U+FFFD in place of bad bytes")


def decode(data: bytes, name: str, encoding: str | None = None, errors: str = "strict") -> str:
    """Bytes to text in the named encoding, else the guessed one (see `_guess_encoding`).

    `errors="replace"` puts U+FFFD in place of undecodable bytes; otherwise they stop reading with
    a message naming `name` and the byte's offset.
    """
    encoding = _checked_encoding(encoding) if encoding else _guess_encoding(data)
    try:
        return data.decode(encoding, errors)
    except UnicodeDecodeError as err:
        raise QismError(_undecodable(name, encoding, err.start)) from None


#: C0 control bytes other than tab, line breaks, form feed and escape: rare in text, common in binary.
_CONTROL_BYTES_RE = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_BINARY_SNIFF_BYTES = 8192
_BINARY_CONTROL_SHARE = 0.05


def looks_binary(head: bytes) -> bool:
    """An image, archive or other binary data renamed .txt: NUL bytes among many control bytes.

    A stray NUL in a text does not make it binary (the cleaner removes it); UTF-16, full of NULs,
    is known by its BOM.
    """
    sample = head[:_BINARY_SNIFF_BYTES]
    if b"\0" not in sample or sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    controls = len(sample) - len(_CONTROL_BYTES_RE.sub(b"", sample))
    return controls > _BINARY_CONTROL_SHARE * len(sample)


#: UTF-16 halves that JSON escapes (`\\ud800`) can carry alone: no character, and no file takes them.
_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(text: str) -> str:
    """Put U+FFFD in place of lone surrogates (from JSON escapes, or command-line bytes that are
    not UTF-8), which cannot be hashed, written or printed."""
    return _LONE_SURROGATE_RE.sub("\ufffd", text)


def _without_lone_surrogates(doc: Document) -> Document:
    texts = {field.name: getattr(doc, field.name) for field in dataclasses.fields(doc)}
    texts["fields"] = tuple((name, replace_lone_surrogates(value)) for name, value in doc.fields)
    return Document(**{name: replace_lone_surrogates(value) if isinstance(value, str) else value
                       for name, value in texts.items()})


def label_key(label: str) -> str:
    """What makes two label spellings one label: the same words, whatever their case and spacing."""
    return " ".join(label.split()).casefold()


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
        if options.names_table_columns:
            raise _not_a_table("standard input")
        yield from _read_stdin(options, lines=(fmt == "lines"))
        return
    path = Path(path)
    if not path.exists():
        raise QismError(f"{path}: no such file or folder")
    fmt = fmt or detect_format(path)
    if options.names_table_columns and fmt not in ("csv", "tsv", "jsonl"):
        raise _not_a_table(f"{fmt} input ({path})")
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
        if options.outlet:
            for doc in reader(path, options):
                yield dataclasses.replace(doc, outlet=options.outlet) if doc.outlet == path.name else doc
        else:
            yield from reader(path, options)
    except UnicodeDecodeError as err:
        raise QismError(f"{path}: undecodable bytes ({err.reason}); name the encoding with --encoding") from None
    except OSError as err:
        raise QismError(f"{path}: {err.strerror or err}") from None
    except (EOFError, zlib.error) as err:
        raise QismError(f"{path}: damaged compressed data ({err})") from None


def _not_a_table(what: str) -> QismError:
    return QismError(f"--id-column and --keep-columns name columns of a csv, tsv or jsonl --input, not of {what}")


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


def _article(data: bytes, name: str, relative: str, options: ReadOptions, outlet: str) -> Document:
    """One article file (at `relative`, its id) as a document; a binary file gives one without text."""
    relative = replace_lone_surrogates(relative)  # a file name that is not UTF-8
    label = _label_of(PurePosixPath(relative).parts, options, name)
    if looks_binary(data):
        return Document(text="", label=label, id=relative, outlet=outlet, problem=BINARY_FILE)
    return Document(decode(data, name, options.encoding, options.errors), label, relative, outlet)


def _too_big(name: str, size: int) -> str:
    return (f"{name}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} qism reads as one article; "
            "split it into articles")


def _article_bytes(file: Path) -> bytes:
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise QismError(_too_big(str(file), size))
    return file.read_bytes()


def _raise(err: OSError) -> None:
    raise err


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """The .txt files under `root`, and the folders without sub-folders that hold none of them.

    Links to folders are followed once per real folder, so a link loop ends and a folder linked
    twice is read once; an unreadable folder stops reading rather than being passed over.
    """
    seen = {os.path.realpath(root)}
    files: list[Path] = []
    empty: list[Path] = []
    for folder, subfolders, names in os.walk(root, followlinks=True, onerror=_raise):
        unseen = []
        for name in sorted(subfolders):
            real = os.path.realpath(os.path.join(folder, name))
            if real not in seen:
                seen.add(real)
                unseen.append(name)
        subfolders[:] = unseen
        texts = [Path(folder, name) for name in names if name.lower().endswith(".txt")]
        texts = [file for file in texts if file.is_file()]
        files += texts
        if not subfolders and not texts and folder != str(root):
            empty.append(Path(folder))
    return sorted(files), sorted(empty)


def _read_folder(root: Path, options: ReadOptions) -> Iterator[Document]:
    files, empty_folders = _walk(root)
    if not files:
        raise QismError(f"{root}: no .txt articles found (expected <label>/<article>.txt)")
    for file in files:
        yield _article(_article_bytes(file), str(file), file.relative_to(root).as_posix(), options, root.name)
    if options.require_labels:
        for folder in empty_folders:
            relative = replace_lone_surrogates(folder.relative_to(root).as_posix())
            yield Document(text="", label=PurePosixPath(relative).name, id=f"{relative}/", outlet=root.name,
                           problem=EMPTY_LABEL_FOLDER)


#: Entry names that point outside the archive: absolute (`/x`, `C:x`, `\\x`) or with a `..` part.
_UNSAFE_ENTRY_RE = re.compile(r"^(?:[/\\]|[A-Za-z]:)|(?:^|[/\\])\.\.(?:[/\\]|$)")
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except _ZIP_READ_ERRORS as err:
        raise QismError(f"{path}: not a valid zip archive ({err})") from None


def _check_archive(path: Path, archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo]) -> None:
    """Refuse, before reading anything, an archive whose entries point outside it or unpack too big."""
    unsafe = [info.filename for info in archive.infolist() if _UNSAFE_ENTRY_RE.search(info.filename)]
    if unsafe:
        raise QismError(f"{path}: entries that point outside the archive ({', '.join(map(repr, unsafe[:3]))}); "
                        "qism does not read archives with absolute paths or '..' in entry names")
    total = sum(info.file_size for info in entries)
    if total > MAX_ARCHIVE_BYTES:
        raise QismError(f"{path}: its articles unpack to {total:,} bytes, more than the {MAX_ARCHIVE_BYTES:,} "
                        "qism reads from one archive (a zip bomb?); unpack it yourself and give the folder")
    for info in entries:
        if info.file_size > MAX_FILE_BYTES:
            raise QismError(_too_big(f"{path}:{info.filename}", info.file_size))


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: int) -> bytes:
    """An entry's bytes, never more than `budget` or one article's limit, whatever its header says."""
    limit = min(budget, MAX_FILE_BYTES)
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except _ZIP_READ_ERRORS as err:
        raise QismError(f"{name}: cannot read the entry ({err}); the archive is damaged or encrypted") from None
    if len(data) > limit:
        raise QismError(f"{name}: unpacks to more than its header says or than qism reads (a zip bomb?)")
    return data


def _read_zip(path: Path, options: ReadOptions) -> Iterator[Document]:
    with _open_zip(path) as archive:
        entries = sorted(
            (info for info in archive.infolist() if not info.is_dir() and info.filename.lower().endswith(".txt")),
            key=lambda info: info.filename,
        )
        if not entries:
            raise QismError(f"{path}: no .txt articles in the archive (expected <label>/<article>.txt)")
        _check_archive(path, archive, entries)
        budget = MAX_ARCHIVE_BYTES
        for info in entries:
            name = f"{path}:{info.filename}"
            data = _read_entry(archive, info, name, budget)
            budget -= len(data)
            yield _article(data, name, info.filename, options, path.name)


# --- tables -----------------------------------------------------------------------------------

def _find_column(header: list[str], wanted: str | None, defaults: tuple[str, ...], what: str, path: Path,
                 required: bool, option: str | None = None) -> int | None:
    """Where the column `wanted` (else the first of `defaults`) is; one the user named must be there.
    `what` is what it holds, and `option` (--<what>-column unless named) what names it."""
    lowered = [name.strip().lower() for name in header]
    candidates = (wanted,) if wanted else defaults
    for name in candidates:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    if required or wanted:
        option = option or f"--{what}-column"
        missing = (f"column {wanted!r} ({option})" if wanted else
                   f"{what} column (looked for {', '.join(defaults)}; name it with {option})")
        raise QismError(f"{path}: no {missing}; the columns are: {', '.join(header)}")
    return None


_SNIFF_BYTES = 1 << 16


def _opener(path: Path):
    return gzip.open if path.name.lower().endswith(".gz") else open


def _first_bad_byte(path: Path, encoding: str) -> tuple[int, int]:
    """The offset and line of the first byte `encoding` cannot decode in the (unpacked) file, found
    by decoding it again: a decoding stream does not say where in the file it failed."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = newlines = 0
    with _opener(path)(path, "rb") as handle:
        for block in itertools.chain(iter(lambda: handle.read(_SNIFF_BYTES), b""), [b""]):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as err:
                return offset - pending + err.start, newlines + block[:max(0, err.start - pending)].count(b"\n") + 1
            offset += len(block)
            newlines += block.count(b"\n")
    return offset, newlines + 1


def _text_lines(path: Path, options: ReadOptions, newline: str | None = None) -> Iterator[str]:
    """The lines of a (possibly gzipped) text file, decoded as they stream in the file's encoding
    (guessed from its first bytes). Binary data is refused; an undecodable byte is named by offset."""
    with _opener(path)(path, "rb") as probe:
        head = probe.read(_SNIFF_BYTES)
    if looks_binary(head):
        raise QismError(f"{path}: binary data, not text; check that this is the file you meant")
    encoding = _checked_encoding(options.encoding) if options.encoding else _guess_encoding(head)
    with io.TextIOWrapper(_opener(path)(path, "rb"), encoding=encoding, errors=options.errors, newline=newline) as handle:
        try:
            yield from handle
        except UnicodeDecodeError:
            offset, line = _first_bad_byte(path, encoding)
            raise QismError(_undecodable(f"{path}: line {line}", encoding, offset)) from None


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
            if "unexpected end of data" in str(err):
                raise QismError(f"{path}: line {start}: a quote opened in this row never closes, so the rest of "
                                "the file would be one field; close the quote") from None
            raise QismError(f"{path}: {_lines(start, rows.line_num)}: {err}; a quote inside a field must be "
                            'doubled ("") and the field quoted') from None
        yield _lines(start, rows.line_num), row


def _lines(first: int, last: int) -> str:
    return f"line {first}" if last <= first else f"lines {first}-{last}"


def _read_table(path: Path, options: ReadOptions) -> Iterator[Document]:
    csv.field_size_limit(sys.maxsize)
    delimiter = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    rows = _table_rows(csv.reader(_text_lines(path, options, newline=""), delimiter=delimiter, strict=True), path)
    _, header = next(rows, (None, None))
    if not header:
        raise QismError(f"{path}: empty file, expected a header row")
    text_at = _find_column(header, options.text_column, TEXT_COLUMNS, "text", path, True)
    label_at = _find_column(header, options.label_column, LABEL_COLUMNS, "label", path, options.require_labels)
    id_at = _find_column(header, options.id_column, ID_COLUMNS, "id", path, False)
    title_at = _find_column(header, None, TITLE_COLUMNS, "title", path, False)
    kept_at = [(name, _find_column(header, name, (), "kept", path, True, "--keep-columns")) for name in options.keep_columns]
    for where, row in rows:
        if not row:
            continue
        if len(row) != len(header):
            hint = "a quote may be unbalanced" if where.startswith("lines") else "quote fields that hold the delimiter"
            raise QismError(f"{path}: {where}: {len(row)} fields, the header has {len(header)}; {hint}")
        text = row[text_at]
        if title_at is not None and row[title_at]:
            text = f"{row[title_at]}\n{text}"
        yield Document(
            text=text,
            label=row[label_at] if label_at is not None else None,
            id=row[id_at] if id_at is not None else None,
            outlet=path.name,
            fields=tuple((name, row[at]) for name, at in kept_at),
        )


def _json_record(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise QismError(f"{where}: not valid JSON ({getattr(err, 'msg', err)}); each line must hold one JSON object") from None
    if not isinstance(record, dict):
        raise QismError(f"{where}: not a JSON object; each line must hold one object with the text and the label")
    return record


def _field_value(value) -> str:
    """A JSON value as the text of an output field: strings as they are, other values as JSON."""
    return value if isinstance(value, str) else "" if value is None else json.dumps(value, ensure_ascii=False)


def _check_keys(record: dict, options: ReadOptions, where: str) -> None:
    """The first record must have the keys the user named (a later one may lack them: sparse data)."""
    for key, option in [(options.id_column, "--id-column")] + [(key, "--keep-columns") for key in options.keep_columns]:
        if key is not None and key not in record:
            raise QismError(f"{where}: no key {key!r} ({option}) in the first record; its keys are: {', '.join(record)}")


def _read_jsonl(path: Path, options: ReadOptions) -> Iterator[Document]:
    text_key = options.text_column or "text"
    label_key = options.label_column or "label"
    id_key = options.id_column or "id"
    first = True
    for number, line in enumerate(_text_lines(path, options), 1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        record = _json_record(line, where)
        if first:
            _check_keys(record, options, where)
            first = False
        if not isinstance(record.get(text_key), str):
            raise QismError(f"{where}: no {text_key!r} text in the record; name the key with --text-column")
        label = record.get(label_key)
        if isinstance(label, int) and not isinstance(label, bool):  # numbered classes
            label = str(label)
        if options.require_labels and not isinstance(label, str):
            raise QismError(f"{where}: no {label_key!r} in the record; name the key with --label-column")
        text = record[text_key]
        if isinstance(record.get("title"), str) and record["title"]:
            text = f"{record['title']}\n{text}"
        document = Document(
            text=text,
            label=label if isinstance(label, str) else None,
            id=_field_value(record[id_key]) if record.get(id_key) is not None else None,
            outlet=str(record["source"]) if record.get("source") else path.name,
            fields=tuple((key, _field_value(record.get(key))) for key in options.keep_columns),
        )
        yield _without_lone_surrogates(document) if "\\u" in line else document


# --- plain text -------------------------------------------------------------------------------

def _read_text_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    if options.require_labels:
        raise QismError(f"{path}: a single .txt file has no label; give a folder of <label>/<article>.txt")
    yield _article(_article_bytes(path), str(path), path.name, options, path.name)


def _read_lines_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    for number, line in enumerate(_text_lines(path, options), 1):
        yield Document(text=line.rstrip("\r\n"), id=str(number), outlet=path.name)


def _read_stdin(options: ReadOptions, lines: bool) -> Iterator[Document]:
    stream = (io.TextIOWrapper(sys.stdin.buffer, encoding=options.encoding or "utf-8-sig", errors=options.errors)
              if hasattr(sys.stdin, "buffer") else sys.stdin)
    if lines:
        for number, line in enumerate(stream, 1):
            yield Document(text=line.rstrip("\r\n"), id=str(number), outlet="<stdin>")
    else:
        yield Document(text=stream.read(), id="1", outlet="<stdin>")


def _names_a_path(text: str) -> bool:
    """Whether an article argument is really the name of an existing file or folder (no article is
    one word that is also a path)."""
    if len(text) > 1024 or "\0" in text or any(char.isspace() for char in text):
        return False
    try:
        return Path(text).exists()
    except OSError:
        return False


#: A text is taken for one article per line when it has at least this many lines, no blank line
#: between paragraphs, and this share of its lines are shorter than `_SHORT_LINE_CHARS` (headlines,
#: posts); only its first `_LINES_SNIFF_CHARS` are looked at.
_MIN_LINES, _SHORT_LINE_SHARE, _SHORT_LINE_CHARS, _LINES_SNIFF_CHARS = 5, 0.8, 200, 1 << 16
_PARAGRAPH_BREAK_RE = re.compile(r"\n[^\S\n]*\n")


def looks_like_one_per_line(text: str) -> bool:
    """Whether one text read as a single article looks like many articles, one per line."""
    head = text[:_LINES_SNIFF_CHARS].strip()
    if _PARAGRAPH_BREAK_RE.search(head):
        return False
    lines = head.splitlines()
    short = sum(len(line) < _SHORT_LINE_CHARS for line in lines)
    return len(lines) >= _MIN_LINES and short >= _SHORT_LINE_SHARE * len(lines)


def _noting_many_lines(documents: Iterator[Document], note: Callable[[str], None]) -> Iterator[Document]:
    for doc in documents:
        if looks_like_one_per_line(doc.text):
            where = "standard input" if doc.outlet == "<stdin>" else doc.id
            note(f"{where} is labeled as one article; if each of its {doc.text.strip().count(chr(10)) + 1:,} "
                 "lines is an article, add --lines")
        yield doc


def _read_as_one_article(source: str, fmt: str | None) -> bool:
    """Whether a source is read as one article: standard input or a .txt file, without --lines."""
    if source == "-":
        return fmt != "lines"
    return fmt == "txt" or (fmt is None and Path(source).is_file() and source.lower().endswith(".txt"))


def read_inputs(texts: Iterable[str] = (), input_path: str | None = None, fmt: str | None = None,
                lines: bool = False, options: ReadOptions = ReadOptions(require_labels=False),
                note: Callable[[str], None] = lambda message: None) -> Iterator[Document]:
    """What `qism predict` labels: articles given as `texts`, `["-"]` for standard input, or the
    file or folder `input_path`; `lines` reads one article per line. `note` gets the hint about
    --lines when one article (standard input, a .txt file) looks like one article per line."""
    texts = list(texts)
    fmt = "lines" if lines else fmt
    source = input_path if input_path is not None else "-" if texts == ["-"] else None
    if source is not None:
        documents = read_sources([source], options, fmt)
        return _noting_many_lines(documents, note) if _read_as_one_article(source, fmt) else documents
    if not texts:
        raise QismError("give articles as arguments, --input PATH, or '-' to read standard input")
    if options.names_table_columns:
        raise _not_a_table("articles given as arguments")
    named = next((text for text in texts if _names_a_path(text)), None)
    if named is not None:
        raise QismError(f"{named!r} is a file or folder, not an article; to label what it holds, use --input {named}")
    option = next((text for text in texts if len(text) > 1 and text.startswith("-") and not any(c.isspace() for c in text)), None)
    if option is not None:  # an article starting with '-' goes through, but a lone word like '--verbose' is a mistyped option
        raise QismError(f"{option!r} is taken for an article, but looks like an option: an option goes before '--' "
                        "and must be one the command has (see --help)")
    return (Document(text=replace_lone_surrogates(text)) for text in texts)

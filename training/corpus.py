"""Read labeled (or unlabeled) articles from the shapes corpora come in, as a stream of documents.

A source is picked by what its path is: a folder with one sub-folder per label, a `.zip` of the same
layout (also under one top folder, as SANAD ships), a `.csv`/`.tsv` with a header, or `.jsonl` /
`.jsonl.gz`. Readers yield documents one at a time, so a file of any size streams through.

Corpora from unknown places are read defensively: the encoding is guessed (a BOM, else UTF-8 unless
bytes that are not UTF-8 are common, then Windows-1256), a bad byte is named by its offset, binary
files renamed `.txt` are passed on as documents without text (see `Document.problem`), zip entries
that point outside the archive are refused, archives that unpack to more than `MAX_ARCHIVE_BYTES`
are refused before they are read, and folder links are followed once each, so a link loop ends;
links that lead out of a corpus folder are not followed but passed on as documents without text.
A file is opened and read once, so a pipe or FIFO loses nothing, and no article, line or CSV field
may hold more than `MAX_FILE_BYTES`.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import errno
import functools
import gzip
import io
import json
import os
import re
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .config import INPUT_FORMATS, ReadOptions
from .errors import QismError

TEXT_COLUMNS = ("text", "content", "body", "article")
LABEL_COLUMNS = ("label", "class", "category", "section", "topic")
ID_COLUMNS = ("id", "doc_id", "article_id", "guid")
TITLE_COLUMNS = ("title", "headline")

FORMATS = INPUT_FORMATS
#: What starts each label of a fastText line (`__label__sports __label__economy text ...`).
FASTTEXT_LABEL = "__label__"

#: The `problem` of a file that holds binary data (an image renamed .txt): passed on without text.
BINARY_FILE = "binary file"
#: The `problem` of a label folder with no articles, passed on so the training card can name it.
EMPTY_LABEL_FOLDER = "empty label folder"
#: The `problem` of a link in a corpus folder to a file or folder outside it (a system file must not
#: end up in a model or a report): passed on without text, so it is counted and gets a record.
OUTSIDE_CORPUS = "outside corpus"

#: The most a zip or gzip archive may unpack to, and the most one article file, line or CSV field
#: may hold (a bomb or a file that is not an article stops with a message instead of filling memory).
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
    #: Every label of a record that gives a list of them (a JSON list, a cell holding the label
    #: separator, several fastText labels), each once, in order; `label` is the first. Empty for one label.
    labels: tuple[str, ...] = ()


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_UTF8_REPLACEMENT = "\ufffd".encode()
#: Bytes are in another encoding (Windows-1256) when valid non-ASCII UTF-8 characters are at most
#: this share of the sequences that are not UTF-8 (chance pairs: 0.6% in Windows-1256 news text);
#: with more, they are UTF-8 with damage or with lines in another encoding, named by line.
_CHANCE_UTF8_SHARE = 0.1


def _checked_encoding(encoding: str) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise QismError(f"unknown encoding {encoding!r}") from None
    return encoding


def _guess_encoding(data: bytes) -> str:
    """A BOM's encoding, else UTF-8 unless almost nothing non-ASCII in it is UTF-8, else Windows-1256.

    Bad bytes in UTF-8 text, even a whole line in another encoding, are to name (or replace), not a
    sign of another encoding; decoding such a file as Windows-1256 would turn its UTF-8 into nonsense.
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
    return "cp1256" if non_ascii <= _CHANCE_UTF8_SHARE * bad else "utf-8"


def _undecodable(name: str, encoding: str, offset: int) -> str:
    return (
        f"{name}: not valid {encoding} at byte {offset:,}; "
        "name the encoding with --encoding, or use --errors replace to put U+FFFD in place of bad bytes"
    )


def _is_utf8(line: bytes) -> bool:
    """Whether a line read as Windows-1256 is really UTF-8 (no line of Windows-1256 news text is)."""
    if line.isascii():
        return False
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mixed_encodings(name: str) -> str:
    return (
        f"{name}: UTF-8 in a file read as windows-1256 (the encoding of its start); a file must be in one "
        "encoding: convert it to UTF-8 (iconv -f cp1256 -t utf-8 on its Windows-1256 part), or name one with --encoding"
    )


def decode(data: bytes, name: str, encoding: str | None = None, errors: str = "strict") -> str:
    """Bytes to text in the named encoding, else the guessed one (see `_guess_encoding`).

    `errors="replace"` puts U+FFFD in place of undecodable bytes; otherwise they stop reading with
    a message naming `name`, the line and the byte's offset. A guessed Windows-1256 text with a
    UTF-8 line is refused, naming the line.
    """
    if encoding:
        encoding = _checked_encoding(encoding)
    else:
        encoding = _guess_encoding(data)
        if encoding == "cp1256":
            mixed = next((number for number, line in enumerate(data.split(b"\n"), 1) if _is_utf8(line)), None)
            if mixed:
                raise QismError(_mixed_encodings(f"{name}: line {mixed}"))
    try:
        return data.decode(encoding, errors)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise QismError(_undecodable(f"{name}: line {line}", encoding, err.start)) from None


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
    texts["labels"] = tuple(map(replace_lone_surrogates, doc.labels))
    return Document(
        **{name: replace_lone_surrogates(value) if isinstance(value, str) else value for name, value in texts.items()}
    )


def label_list(values: list, where: str, separator: str) -> tuple[str, ...]:
    """The labels a record lists, each once and in order (numbers as text, empty names left out).

    A name holding the label separator is refused: written to a CSV cell, it would read back as two.
    """
    labels = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):  # numbered classes
            value = str(value)
        if not isinstance(value, str):
            raise QismError(f"{where}: the label {value!r} is not text; a label list holds names or numbers")
        if separator in value:
            raise QismError(
                f"{where}: the label {value!r} holds the label separator {separator!r}; rename the label, "
                "or choose another separator with --label-separator"
            )
        if value.strip():
            labels.append(value)
    return tuple(dict.fromkeys(labels))


def labeled(doc: Document, labels: tuple[str, ...]) -> Document:
    """`doc` with the labels of a list: `label` is the first, or None when the list is empty."""
    return dataclasses.replace(doc, label=labels[0] if labels else None, labels=labels)


def _cell_labels(cell: str, where: str, options: ReadOptions) -> tuple[str | None, tuple[str, ...]]:
    """A CSV cell's label, or its labels when it holds the separator (`security|arab affairs`)."""
    separator = options.label_separator
    if separator not in cell:
        return cell, ()
    labels = label_list([piece.strip() for piece in cell.split(separator)], where, separator)
    return (labels[0] if labels else None), labels


def label_key(label: str) -> str:
    """What makes two label spellings one label: the same words, whatever their case and spacing."""
    return " ".join(label.split()).casefold()


_FASTTEXT_SNIFF_BYTES = 1 << 12


def looks_like_fasttext(path: Path) -> bool:
    """Whether a regular file's first line that is not blank starts with a fastText label (a FIFO or
    device is not looked into: what is read to look is lost to the reading)."""
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        head = handle.read(_FASTTEXT_SNIFF_BYTES)
    for bom, _ in _BOMS:
        head = head.removeprefix(bom)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return head.lstrip().startswith(FASTTEXT_LABEL.encode())


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "folder"
    name = path.name.lower()
    if not name.endswith((".zip", ".csv", ".tsv", ".jsonl", ".jsonl.gz", ".ndjson", ".json")) and looks_like_fasttext(
        path
    ):
        return "fasttext"
    for suffix, fmt in (
        (".zip", "zip"),
        (".csv", "csv"),
        (".tsv", "tsv"),
        (".jsonl", "jsonl"),
        (".jsonl.gz", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".txt", "txt"),
    ):
        if name.endswith(suffix):
            return fmt
    raise QismError(
        f"{path}: unknown format; expected a folder, .zip, .csv, .tsv, .jsonl, .jsonl.gz, .txt or a fastText "
        "file (lines starting with __label__), or name it with --input-format"
    )


def read_source(
    path: str | os.PathLike, options: ReadOptions = ReadOptions(), fmt: str | None = None
) -> Iterator[Document]:
    """Yield the documents of one source (`-` is standard input, one article or one per line)."""
    if str(path) == "-":
        if options.names_table_columns:
            raise _not_a_table("standard input")
        reader = functools.partial(_read_stdin, lines=fmt == "lines")
    else:
        path = Path(path)
        if not path.exists():
            raise QismError(f"{path}: no such file or folder")
        fmt = fmt or options.input_format or detect_format(path)
        if fmt not in _READERS:
            raise QismError(f"--input-format must be one of {', '.join(FORMATS)}; got {fmt!r}")
        if options.names_table_columns and fmt not in ("csv", "tsv", "jsonl"):
            raise _not_a_table(f"{fmt} input ({path})")
        reader = _READERS[fmt]
    try:
        if options.outlet:
            for doc in reader(path, options):
                yield dataclasses.replace(doc, outlet=options.outlet) if doc.outlet == path.name else doc
        else:
            yield from reader(path, options)
    except UnicodeDecodeError as err:
        raise QismError(f"{path}: undecodable bytes ({err.reason}); name the encoding with --encoding") from None
    except MemoryError:
        raise QismError(
            f"{path}: out of memory while reading it; split it into smaller files, or run with fewer --jobs"
        ) from None
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise QismError(
                f"{path}: folders nested too deep to read ({err.strerror}: a path in it is longer than "
                "the system allows); move the articles up into <label>/"
            ) from None
        raise QismError(f"{path}: {err.strerror or err}") from None
    except (EOFError, zlib.error) as err:
        raise QismError(f"{path}: damaged compressed data ({err})") from None


def _not_a_table(what: str) -> QismError:
    return QismError(f"--id-column and --keep-columns name columns of a csv, tsv or jsonl --input, not of {what}")


def read_sources(
    paths: Iterable[str | os.PathLike], options: ReadOptions = ReadOptions(), fmt: str | None = None
) -> Iterator[Document]:
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


def _too_big(name: str, size: int | None = None) -> str:
    return (
        f"{name}: {'' if size is None else f'{size:,} bytes, '}more than the {MAX_FILE_BYTES:,} qism reads "
        "as one article; split it into articles"
    )


def _bounded_bytes(handle, name: str) -> bytes:
    """All of a stream, refused past one article's limit (a pipe or FIFO has no size to check first)."""
    data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise QismError(_too_big(name))
    return data


def _article_bytes(file: Path) -> bytes:
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise QismError(_too_big(str(file), size))
    with open(file, "rb") as handle:
        return _bounded_bytes(handle, str(file))


def _within(real: str, top: str) -> bool:
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


@dataclass
class FolderTree:
    """What a corpus folder holds: its .txt files, the folders that hold neither those nor folders,
    and the links (to files or folders) that lead out of it, with whether each is a folder."""

    files: list[Path]
    empty_folders: list[Path]
    outside: dict[Path, bool]

    @property
    def entries(self) -> list[Path]:
        """Files and links out, in the order they are read."""
        return sorted([*self.files, *self.outside])


def walk_folder(root: Path) -> FolderTree:
    """Walk a corpus folder without recursion (a tree of any depth ends in a result or one OSError).

    Links to folders are followed once per real folder, so a link loop ends and a folder linked
    twice is read once; links whose target lies outside `root` are not followed; an unreadable
    folder stops reading rather than being passed over.
    """
    top = os.path.realpath(root)
    seen = {top}
    tree = FolderTree([], [], {})
    stack = [(str(root), top)]
    while stack:
        folder, real_folder = stack.pop()
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        subfolders, texts, holds_any = [], [], False
        for entry in entries:
            is_dir = entry.is_dir()
            if not is_dir and not (entry.name.lower().endswith(".txt") and entry.is_file()):
                continue
            holds_any = True
            # only a link can lead elsewhere: the real path of anything else follows from its folder's
            real = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real_folder, entry.name)
            if not _within(real, top):
                tree.outside[Path(entry.path)] = is_dir
            elif not is_dir:
                texts.append(Path(entry.path))
            elif real not in seen:
                seen.add(real)
                subfolders.append((entry.path, real))
        tree.files += texts
        if not holds_any and folder != str(root):
            tree.empty_folders.append(Path(folder))
        stack.extend(reversed(subfolders))
    tree.files.sort()
    tree.empty_folders.sort()
    return tree


def _outside(path: Path, root: Path, is_dir: bool) -> Document:
    relative = replace_lone_surrogates(path.relative_to(root).as_posix())
    parts = PurePosixPath(relative).parts
    label = parts[-1] if is_dir else parts[-2] if len(parts) >= 2 else None
    return Document(
        text="", label=label, id=f"{relative}/" if is_dir else relative, outlet=root.name, problem=OUTSIDE_CORPUS
    )


def _read_folder(root: Path, options: ReadOptions) -> Iterator[Document]:
    tree = walk_folder(root)
    if not tree.files:
        raise QismError(f"{root}: no .txt articles found (expected <label>/<article>.txt)")
    for file in tree.entries:
        if file in tree.outside:
            yield _outside(file, root, tree.outside[file])
        else:
            yield _article(_article_bytes(file), str(file), file.relative_to(root).as_posix(), options, root.name)
    if options.require_labels:
        for folder in tree.empty_folders:
            relative = replace_lone_surrogates(folder.relative_to(root).as_posix())
            yield Document(
                text="",
                label=PurePosixPath(relative).name,
                id=f"{relative}/",
                outlet=root.name,
                problem=EMPTY_LABEL_FOLDER,
            )


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
        raise QismError(
            f"{path}: entries that point outside the archive ({', '.join(map(repr, unsafe[:3]))}); "
            "qism does not read archives with absolute paths or '..' in entry names"
        )
    total = sum(info.file_size for info in entries)
    if total > MAX_ARCHIVE_BYTES:
        raise QismError(
            f"{path}: its articles unpack to {total:,} bytes, more than the {MAX_ARCHIVE_BYTES:,} "
            "qism reads from one archive (a zip bomb?); unpack it yourself and give the folder"
        )
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


def _find_column(
    header: list[str],
    wanted: str | None,
    defaults: tuple[str, ...],
    what: str,
    path: Path,
    required: bool,
    option: str | None = None,
) -> int | None:
    """Where the column `wanted` (else the first of `defaults`) is; one the user named must be there.
    `what` is what it holds, and `option` (--<what>-column unless named) what names it."""
    lowered = [name.strip().lower() for name in header]
    candidates = (wanted,) if wanted else defaults
    for name in candidates:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    if required or wanted:
        option = option or f"--{what}-column"
        missing = (
            f"column {wanted!r} ({option})"
            if wanted
            else f"{what} column (looked for {', '.join(defaults)}; name it with {option})"
        )
        raise QismError(f"{path}: no {missing}; the columns are: {', '.join(header)}")
    return None


#: Bytes read at a time from a streamed file; the first block also decides its encoding.
_BLOCK_BYTES = 1 << 16
_LINE_END_RE = re.compile("\r\n|\r|\n")


def _text_lines(path: Path, options: ReadOptions) -> Iterator[str]:
    """The lines of a (possibly gzipped) text file: see `_stream_lines`. A gzip file may unpack to
    at most `MAX_ARCHIVE_BYTES`."""
    packed = path.name.lower().endswith(".gz")
    with (gzip.open if packed else open)(path, "rb") as handle:
        yield from _stream_lines(handle, str(path), options, MAX_ARCHIVE_BYTES if packed else None)


def _stream_lines(handle, name: str, options: ReadOptions, max_bytes: int | None = None) -> Iterator[str]:
    """The lines of a byte stream with their line ends (`\n`, `\r\n` or `\r`), decoded as they stream
    in the named encoding or the one guessed from the first block.

    The stream is read once, from its start to its end, so a pipe, a FIFO or standard input loses
    nothing. Binary data is refused; so are an undecodable byte (named by line and offset), a UTF-8
    line in a file guessed to be Windows-1256, a line over `MAX_FILE_BYTES` characters and a stream
    over `max_bytes`, each naming the line.
    """
    block = handle.read(_BLOCK_BYTES)
    if looks_binary(block):
        raise QismError(f"{name}: binary data, not text; check that this is the file you meant")
    encoding = _checked_encoding(options.encoding) if options.encoding else _guess_encoding(block)
    check_utf8 = not options.encoding and encoding == "cp1256"
    decoder = codecs.getincrementaldecoder(encoding)(options.errors)
    offset, number = 0, 1  # bytes before `block`; the line being read
    pending: list[str] = []  # the start of that line, from earlier blocks
    pending_chars = 0
    carried = ""  # a final \r, which a \n at the start of the next block may complete
    while True:
        final = not block
        state = decoder.getstate()
        try:
            text = carried + decoder.decode(block, final)
        except UnicodeDecodeError as err:
            before = max(0, err.start - len(state[0]))  # err.start counts the bytes the decoder held
            probe = codecs.getincrementaldecoder(encoding)("replace")
            probe.setstate(state)
            line = number + len(_LINE_END_RE.findall(carried + probe.decode(block[:before])))
            raise QismError(
                _undecodable(f"{name}: line {line}", encoding, offset + err.start - len(state[0]))
            ) from None
        carried = "\r" if text.endswith("\r") and not final else ""
        text = text[:-1] if carried else text
        end = max(text.rfind("\n"), text.rfind("\r")) + 1
        if end:
            complete = "".join([*pending, text[:end]])
            pending, pending_chars = [text[end:]], len(text) - end
            for line in io.StringIO(complete, newline=""):
                if len(line) > MAX_FILE_BYTES:
                    raise QismError(_too_long(name, number))
                if check_utf8 and _is_utf8(line.encode(encoding)):
                    raise QismError(_mixed_encodings(f"{name}: line {number}"))
                yield line
                number += 1
        else:
            pending.append(text)
            pending_chars += len(text)
        if pending_chars > MAX_FILE_BYTES:
            raise QismError(_too_long(name, number))
        if final:
            last = "".join(pending)
            if last:
                if check_utf8 and _is_utf8(last.encode(encoding)):
                    raise QismError(_mixed_encodings(f"{name}: line {number}"))
                yield last
            return
        offset += len(block)
        if max_bytes is not None and offset > max_bytes:
            raise QismError(
                f"{name}: unpacks to more than {max_bytes:,} bytes, more than qism reads from one "
                "archive (a gzip bomb?); unpack it yourself and give the file"
            )
        block = handle.read(_BLOCK_BYTES)


def _too_long(name: str, number: int) -> str:
    return (
        f"{name}: line {number}: more than the {MAX_FILE_BYTES:,} characters qism reads as one article; "
        "split it into articles"
    )


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
                    f"{path}: line {start}: a field of more than the {MAX_FILE_BYTES:,} characters "
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


def _read_table(path: Path, options: ReadOptions) -> Iterator[Document]:
    csv.field_size_limit(MAX_FILE_BYTES)
    delimiter = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    rows = _table_rows(csv.reader(_text_lines(path, options), delimiter=delimiter, strict=True), path)
    _, header = next(rows, (None, None))
    if not header:
        raise QismError(f"{path}: empty file, expected a header row")
    text_at = _find_column(header, options.text_column, TEXT_COLUMNS, "text", path, True)
    label_at = _find_column(header, options.label_column, LABEL_COLUMNS, "label", path, options.require_labels)
    id_at = _find_column(header, options.id_column, ID_COLUMNS, "id", path, False)
    title_at = _find_column(header, None, TITLE_COLUMNS, "title", path, False)
    kept_at = [
        (name, _find_column(header, name, (), "kept", path, True, "--keep-columns")) for name in options.keep_columns
    ]
    for where, row in rows:
        if not row:
            continue
        if len(row) != len(header):
            hint = "a quote may be unbalanced" if where.startswith("lines") else "quote fields that hold the delimiter"
            raise QismError(f"{path}: {where}: {len(row)} fields, the header has {len(header)}; {hint}")
        text = row[text_at]
        if title_at is not None and row[title_at]:
            text = f"{row[title_at]}\n{text}"
        label, labels = (None, ()) if label_at is None else _cell_labels(row[label_at], f"{path}: {where}", options)
        yield Document(
            text=text,
            label=label,
            id=row[id_at] if id_at is not None else None,
            outlet=path.name,
            fields=tuple((name, row[at]) for name, at in kept_at),
            labels=labels,
        )


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


def _field_value(value) -> str:
    """A JSON value as the text of an output field: strings as they are, other values as JSON."""
    return value if isinstance(value, str) else "" if value is None else json.dumps(value, ensure_ascii=False)


def _check_keys(record: dict, options: ReadOptions, where: str) -> None:
    """The first record must have the keys the user named (a later one may lack them: sparse data)."""
    for key, option in [(options.id_column, "--id-column")] + [(key, "--keep-columns") for key in options.keep_columns]:
        if key is not None and key not in record:
            raise QismError(
                f"{where}: no key {key!r} ({option}) in the first record; its keys are: {', '.join(record)}"
            )


def _read_jsonl(path: Path, options: ReadOptions) -> Iterator[Document]:
    lines = ((f"{path}: line {number}", line) for number, line in enumerate(_text_lines(path, options), 1))
    return jsonl_documents(lines, path.name, options)


def jsonl_documents(lines: Iterable[tuple[str, str]], name: str, options: ReadOptions) -> Iterator[Document]:
    """The documents of JSON Lines, given as (where, line) pairs (where: for messages); `name` is the
    outlet of records that do not name their `source`."""
    text_key = options.text_column or "text"
    label_key = options.label_column or "label"
    id_key = options.id_column or "id"
    first = True
    for where, line in lines:
        if not line.strip():
            continue
        record = _json_record(line, where)
        if first:
            _check_keys(record, options, where)
            first = False
        if not isinstance(record.get(text_key), str):
            raise QismError(f"{where}: no {text_key!r} text in the record; name the key with --text-column")
        label = record.get(label_key, record.get("labels") if options.label_column is None else None)
        if isinstance(label, int) and not isinstance(label, bool):  # numbered classes
            label = str(label)
        labels = label_list(label, where, options.label_separator) if isinstance(label, list) else ()
        if options.require_labels and not isinstance(label, (str, list)):
            raise QismError(f"{where}: no {label_key!r} in the record; name the key with --label-column")
        text = record[text_key]
        if isinstance(record.get("title"), str) and record["title"]:
            text = f"{record['title']}\n{text}"
        document = Document(
            text=text,
            label=label if isinstance(label, str) else labels[0] if labels else None,
            id=_field_value(record[id_key]) if record.get(id_key) is not None else None,
            outlet=str(record["source"]) if record.get("source") else name,
            fields=tuple((key, _field_value(record.get(key))) for key in options.keep_columns),
            labels=labels,
        )
        yield _without_lone_surrogates(document) if "\\u" in line else document


# --- plain text -------------------------------------------------------------------------------


def _read_text_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    if options.require_labels:
        raise QismError(f"{path}: a single .txt file has no label; give a folder of <label>/<article>.txt")
    yield _article(_article_bytes(path), str(path), path.name, options, path.name)


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


def _read_fasttext(path: Path, options: ReadOptions) -> Iterator[Document]:
    for number, line in enumerate(_text_lines(path, options), 1):
        if line.strip():
            document = fasttext_document(line, f"{path}: line {number}", options)
            yield dataclasses.replace(document, id=str(number), outlet=path.name)


def _read_lines_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    for number, line in enumerate(_text_lines(path, options), 1):
        yield Document(text=line.rstrip("\r\n"), id=str(number), outlet=path.name)


def _read_stdin(path: str, options: ReadOptions, lines: bool) -> Iterator[Document]:
    """Standard input, read once like a file: one article per line, or one article."""
    if sys.stdin is None:
        raise QismError("standard input is closed; give the articles as arguments or with --input")
    if lines:
        for number, line in enumerate(_stream_lines(sys.stdin.buffer, "<stdin>", options), 1):
            yield Document(text=line.rstrip("\r\n"), id=str(number), outlet="<stdin>")
    else:
        data = _bounded_bytes(sys.stdin.buffer, "<stdin>")
        yield Document(text=decode(data, "<stdin>", options.encoding, options.errors), id="1", outlet="<stdin>")


def _names_a_path(text: str) -> bool:
    """Whether an article argument is really the name of an existing file or folder (no article is
    one word that is also a path)."""
    if not text or len(text) > 1024 or "\0" in text or any(char.isspace() for char in text):
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
            note(
                f"{where} is labeled as one article; if each of its {doc.text.strip().count(chr(10)) + 1:,} "
                "lines is an article, add --lines"
            )
        yield doc


def _read_as_one_article(source: str, fmt: str | None) -> bool:
    """Whether a source is read as one article: standard input or a .txt file, without --lines."""
    if source == "-":
        return fmt != "lines"
    return fmt == "txt" or (fmt is None and Path(source).is_file() and source.lower().endswith(".txt"))


def read_inputs(
    texts: Iterable[str] = (),
    input_path: str | None = None,
    fmt: str | None = None,
    lines: bool = False,
    options: ReadOptions = ReadOptions(require_labels=False),
    note: Callable[[str], None] = lambda message: None,
) -> Iterator[Document]:
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
    option = next(
        (text for text in texts if len(text) > 1 and text.startswith("-") and not any(c.isspace() for c in text)), None
    )
    if (
        option is not None
    ):  # an article starting with '-' goes through, but a lone word like '--verbose' is a mistyped option
        raise QismError(
            f"{option!r} is taken for an article, but looks like an option: an option goes before '--' "
            "and must be one the command has (see --help)"
        )
    return (Document(text=replace_lone_surrogates(text)) for text in texts)


_READERS = {
    "folder": _read_folder,
    "zip": _read_zip,
    "csv": _read_table,
    "tsv": _read_table,
    "jsonl": _read_jsonl,
    "txt": _read_text_file,
    "lines": _read_lines_file,
    "fasttext": _read_fasttext,
}

"""Read labeled (or unlabeled) articles from the shapes corpora come in, as a stream of documents.

One reader per format, each registered with the suffixes that name it (`registry`, after spaCy's
reader registry): folders with one sub-folder per label (`folders`), zip archives of the same layout,
CSV and TSV with a header, JSON Lines (also gzipped), fastText files, plain lines and standard input
(`records`), and Parquet (`parquet`). Every format finds its text, label, id, title and outlet, and
the columns a user names, by one policy (`columns`). Readers yield documents one at a time, so a file
of any size streams through.

Corpora from unknown places are read defensively (`decoding`): the encoding is guessed (a BOM, else
UTF-8 unless bytes that are not UTF-8 are common, then Windows-1256), a bad byte is named by its
offset, binary files renamed `.txt` are passed on as documents without text (see `Document.problem`),
zip entries that point outside the archive are refused, archives that unpack to more than
`limits.MAX_ARCHIVE_BYTES` are refused before they are read, and folder links are followed once each,
so a link loop ends; links that lead out of a corpus folder are not followed but passed on as
documents without text. A file is opened and read once, so a pipe or FIFO loses nothing, no
article, line or CSV field may hold more than `limits.MAX_FILE_BYTES`, and a device is not read.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..config import INPUT_FORMATS, ReadOptions
from ..errors import QismError
from . import limits
from .columns import ID_COLUMNS, LABEL_COLUMNS, OUTLET_COLUMNS, TEXT_COLUMNS, TITLE_COLUMNS
from .decoding import decode, looks_binary, stream_lines
from .documents import (
    BINARY_FILE,
    EMPTY_LABEL_FOLDER,
    OUTSIDE_CORPUS,
    Document,
    label_key,
    label_list,
    replace_lone_surrogates,
)
from .folders import FolderTree, walk_folder
from .parquet import read_parquet
from .records import (
    FASTTEXT_LABEL,
    fasttext_document,
    jsonl_documents,
    looks_like_fasttext,
    read_jsonl_range,
    read_stdin,
)
from .registry import READERS, data_suffixes, detect_format, is_data_file, not_a_table, reader_for
from .xlsx import read_xlsx

FORMATS = INPUT_FORMATS
__all__ = [
    "BINARY_FILE",
    "EMPTY_LABEL_FOLDER",
    "FASTTEXT_LABEL",
    "FORMATS",
    "ID_COLUMNS",
    "LABEL_COLUMNS",
    "OUTLET_COLUMNS",
    "OUTSIDE_CORPUS",
    "READERS",
    "TEXT_COLUMNS",
    "TITLE_COLUMNS",
    "Document",
    "FolderTree",
    "data_suffixes",
    "decode",
    "detect_format",
    "fasttext_document",
    "is_data_file",
    "jsonl_documents",
    "label_key",
    "label_list",
    "limits",
    "looks_binary",
    "looks_like_fasttext",
    "looks_like_one_per_line",
    "read_inputs",
    "read_jsonl_range",
    "read_parquet",
    "read_xlsx",
    "read_source",
    "read_sources",
    "replace_lone_surrogates",
    "stream_lines",
    "walk_folder",
]


def read_source(
    path: str | os.PathLike, options: ReadOptions = ReadOptions(), fmt: str | None = None
) -> Iterator[Document]:
    """Yield the documents of one source (`-` is standard input, one article or one per line)."""
    if str(path) == "-":
        if options.names_table_columns:
            raise not_a_table("standard input")
        read = functools.partial(read_stdin, lines=fmt == "lines")
    else:
        path = Path(path)
        if not path.exists():
            raise QismError(f"{path}: no such file or folder")
        _refuse_a_device(path)
        each = reader_for(fmt or options.input_format or detect_format(path))
        if options.names_table_columns and not each.columns:
            raise not_a_table(f"{each.name} input ({path})")
        read = each.read
    try:
        if options.outlet:
            for doc in read(path, options):
                yield dataclasses.replace(doc, outlet=options.outlet) if doc.outlet == path.name else doc
        else:
            yield from read(path, options)
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


def _refuse_a_device(path: Path) -> None:
    """A character or block device (`/dev/zero`, a disk) is no corpus: it has no end, or no text."""
    mode = path.stat().st_mode
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise QismError(
            f"{path}: a device, not a file; qism reads files, folders, pipes and FIFOs ('-' is standard input)"
        )


def read_sources(
    paths: Iterable[str | os.PathLike], options: ReadOptions = ReadOptions(), fmt: str | None = None
) -> Iterator[Document]:
    for path in paths:
        yield from read_source(path, options, fmt)


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
        raise not_a_table("articles given as arguments")
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

"""One registry of readers, after spaCy's: each format registers the function that reads it, the file
name endings that name it, and a look at a file's start that knows it where its name does not.
`detect_format` and every caller (a folder's data files, the cluster engine's inputs) ask it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import ReadOptions
from ..errors import QismError

#: What the cluster engine's outputs are named (`a.jsonl.labels.jsonl` and its manifest): never an input.
OUTPUT_MARK = ".labels."


@dataclass(frozen=True)
class Reader:
    """How one format is read: `read(path, options)` yields its documents; `suffixes` name it; `columns`
    says whether its records have named columns (so --id-column and --keep-columns apply); `sniff`
    knows a regular file of it by its start; `data` says a folder may hold it beside its articles."""

    name: str
    read: Callable[[Path, ReadOptions], Iterator]
    suffixes: tuple[str, ...] = ()
    columns: bool = False
    sniff: Callable[[Path], bool] | None = None
    data: bool = False


READERS: dict[str, Reader] = {}


def reader(name: str, suffixes: tuple[str, ...] = (), *, columns: bool = False, sniff=None, data: bool = False):
    """Register the decorated function as the reader of format `name`."""

    def register(function: Callable) -> Callable:
        READERS[name] = Reader(name, function, suffixes, columns, sniff, data)
        return function

    return register


def reader_for(fmt: str) -> Reader:
    if fmt not in READERS:
        raise QismError(f"--input-format must be one of {', '.join(READERS)}; got {fmt!r}")
    return READERS[fmt]


def _named(name: str) -> Reader | None:
    """The reader whose longest suffix ends `name`."""
    name = name.lower()
    endings = [(len(suffix), each) for each in READERS.values() for suffix in each.suffixes if name.endswith(suffix)]
    return max(endings, key=lambda ending: ending[0])[1] if endings else None


def detect_format(path: Path) -> str:
    """The format of a source: a folder, a file named by its ending, else one a reader knows by its
    start (a fastText file called `cooking.train`, or a `.txt` of `__label__` lines)."""
    if path.is_dir():
        return "folder"
    named = _named(path.name)
    sniffed = next(
        (
            each.name
            for each in READERS.values()
            if each.sniff and (named is None or named.name == "txt") and each.sniff(path)
        ),
        None,
    )
    if sniffed or named:
        return sniffed or named.name
    endings = ", ".join(suffix for each in READERS.values() for suffix in each.suffixes)
    raise QismError(
        f"{path}: unknown format; expected a folder, {endings}, or a fastText file (lines starting with "
        f"__label__), or name it with --input-format ({', '.join(READERS)})"
    )


def is_data_file(name: str) -> bool:
    """Whether a file in a folder of inputs is a data file qism reads (not a hidden file, not an
    output or manifest of the cluster engine)."""
    named = _named(name)
    qisms = name.startswith((".", "_qism")) or OUTPUT_MARK in name.lower()  # hidden, or a run's record
    return named is not None and named.data and not qisms


def data_suffixes() -> tuple[str, ...]:
    return tuple(suffix for each in READERS.values() if each.data for suffix in each.suffixes)


def not_a_table(what: str) -> QismError:
    names = ", ".join(each.name for each in READERS.values() if each.columns)
    return QismError(f"--id-column and --keep-columns name columns of a {names} --input, not of {what}")

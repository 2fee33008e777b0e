"""Folders of `<label>/<article>.txt` and zip archives of the same layout; a single `.txt` article.

A folder may also hold data files (JSON Lines, CSV, TSV, Parquet) beside its articles: each is read
with its own reader, so no record in it is passed over."""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..config import ReadOptions
from ..errors import QismError
from . import limits
from .decoding import bounded_bytes, decode, looks_binary, too_big
from .documents import BINARY_FILE, EMPTY_LABEL_FOLDER, OUTSIDE_CORPUS, Document, replace_lone_surrogates
from .registry import READERS, data_suffixes, detect_format, is_data_file, reader


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


def _article_bytes(file: Path) -> bytes:
    size = file.stat().st_size
    if size > limits.MAX_FILE_BYTES:
        raise QismError(too_big(str(file), size))
    with open(file, "rb") as handle:
        return bounded_bytes(handle, str(file))


def _within(real: str, top: str) -> bool:
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


@dataclass
class FolderTree:
    """What a corpus folder holds: its .txt files, the folders that hold neither those nor folders,
    the links (to files or folders) that lead out of it, with whether each is a folder, and its data files."""

    files: list[Path]
    empty_folders: list[Path]
    outside: dict[Path, bool]
    #: Data files beside the articles (JSON Lines, CSV, TSV, Parquet), each read with its reader.
    data: list[Path] = field(default_factory=list)

    @property
    def entries(self) -> list[Path]:
        """Files and links out, in the order they are read."""
        return sorted([*self.files, *self.outside, *self.data])


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
            is_article = not is_dir and entry.name.lower().endswith(".txt") and entry.is_file()
            is_data = not (is_dir or is_article) and entry.is_file() and is_data_file(entry.name)
            if not (is_dir or is_article or is_data):
                continue
            holds_any = True
            # only a link can lead elsewhere: the real path of anything else follows from its folder's
            real = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real_folder, entry.name)
            if not _within(real, top):
                tree.outside[Path(entry.path)] = is_dir
            elif is_data:
                tree.data.append(Path(entry.path))
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


@reader("folder")
def _read_folder(root: Path, options: ReadOptions) -> Iterator[Document]:
    tree = walk_folder(root)
    if not tree.files and not tree.data:
        raise QismError(
            f"{root}: no .txt articles or data files found (expected <label>/<article>.txt, or files of "
            f"{', '.join(data_suffixes())})"
        )
    data = set(tree.data)
    for file in tree.entries:
        if file in tree.outside:
            yield _outside(file, root, tree.outside[file])
        elif file in data:
            yield from READERS[detect_format(file)].read(file, options)
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
    if total > limits.MAX_ARCHIVE_BYTES:
        raise QismError(
            f"{path}: its articles unpack to {total:,} bytes, more than the {limits.MAX_ARCHIVE_BYTES:,} "
            "qism reads from one archive (a zip bomb?); unpack it yourself and give the folder"
        )
    for info in entries:
        if info.file_size > limits.MAX_FILE_BYTES:
            raise QismError(too_big(f"{path}:{info.filename}", info.file_size))


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: int) -> bytes:
    """An entry's bytes, never more than `budget` or one article's limit, whatever its header says."""
    limit = min(budget, limits.MAX_FILE_BYTES)
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except _ZIP_READ_ERRORS as err:
        raise QismError(f"{name}: cannot read the entry ({err}); the archive is damaged or encrypted") from None
    if len(data) > limit:
        raise QismError(f"{name}: unpacks to more than its header says or than qism reads (a zip bomb?)")
    return data


@reader("zip", (".zip",))
def _read_zip(path: Path, options: ReadOptions) -> Iterator[Document]:
    with _open_zip(path) as archive:
        entries = sorted(
            (info for info in archive.infolist() if not info.is_dir() and info.filename.lower().endswith(".txt")),
            key=lambda info: info.filename,
        )
        if not entries:
            raise QismError(f"{path}: no .txt articles in the archive (expected <label>/<article>.txt)")
        _check_archive(path, archive, entries)
        budget = limits.MAX_ARCHIVE_BYTES
        for info in entries:
            name = f"{path}:{info.filename}"
            data = _read_entry(archive, info, name, budget)
            budget -= len(data)
            yield _article(data, name, info.filename, options, path.name)


@reader("txt", (".txt",))
def _read_text_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    if options.require_labels:
        raise QismError(f"{path}: a single .txt file has no label; give a folder of <label>/<article>.txt")
    yield _article(_article_bytes(path), str(path), path.name, options, path.name)

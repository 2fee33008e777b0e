"""Atomic files: what qism writes appears whole or not at all, under the name asked for.

A regular file (or one not made yet) is written to a private temporary name beside it, flushed to
disk and renamed over it, so an interrupted run (Ctrl-C, a full disk, a kill) leaves the earlier file
as it was. The new file gets the permissions the file it replaces had, or those of any new file
under the umask. A name that is a link is followed: the file it names is replaced, and the link
stays. Anything else (a device such as /dev/null, a FIFO) is written to directly, never replaced.
Models, outputs and reports all go through `atomic_file` (folders: `staged_folder`).
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import QismError

try:
    import fcntl
except ImportError:  # Windows: there a staging folder's age alone says that no save is writing it
    fcntl = None

#: Errors of a write that found no room: the one line names the file, never a traceback.
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _mode_for(target: Path, is_dir: bool) -> int:
    """The mode `target` has now (a file being replaced keeps it), else a new file's under the umask."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return (0o777 if is_dir else 0o666) & ~current_umask()


def write_target(path: str | os.PathLike) -> Path:
    """What writing `path` writes: a device, FIFO or pipe where it is (also through a link, as
    /dev/stdout is one); else the file a link names (made there if it does not exist yet), or `path`
    itself. A folder, or a name in a folder that does not exist, is refused."""
    path = Path(path)
    try:
        kind = path.stat().st_mode
    except FileNotFoundError:
        kind = None
    if kind is not None and stat.S_ISDIR(kind):
        raise QismError(f"{path}: is a folder; name a file to write")
    if kind is not None and not stat.S_ISREG(kind):
        return path
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise QismError(f"{path}: no folder {target.parent} to write it in")
    return target


def replaced_atomically(target: Path) -> bool:
    """Whether writing `target` (see `write_target`) replaces it by a rename: a regular file or
    nothing yet. A device or a FIFO is written to where it is."""
    try:
        return stat.S_ISREG(target.stat().st_mode)
    except FileNotFoundError:
        return True


@contextmanager
def atomic_file(
    path: str | os.PathLike, mode: str = "w", newline: str | None = None, keep_on_interrupt: bool = False
) -> Iterator[IO]:
    """A file to write that becomes `path` only when the block completes (`mode` "w" or "wb").

    With `keep_on_interrupt`, Ctrl-C (KeyboardInterrupt) leaves what was written flushed to disk
    under the temporary name (the handle's `name`) for the caller to continue; any other failure
    removes it. A full disk is one line naming `path`.
    """
    target = write_target(path)
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": newline}
    try:
        if replaced_atomically(target):
            with _replacing(target, mode, text, keep_on_interrupt) as handle:
                yield handle
        else:
            with open(target, mode, **text) as handle:
                yield handle
    except OSError as err:
        if err.errno in _NO_ROOM:
            raise QismError(f"{path}: {os.strerror(err.errno).lower()}; nothing was written") from None
        raise


@contextmanager
def _replacing(target: Path, mode: str, text: dict, keep_on_interrupt: bool) -> Iterator[IO]:
    handle = tempfile.NamedTemporaryFile(
        mode, **text, dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
    )
    kept = False
    try:
        with handle:
            try:
                yield handle
            except KeyboardInterrupt:
                if keep_on_interrupt:
                    _flush(handle)
                    kept = True
                raise
            _flush(handle)
        os.chmod(handle.name, _mode_for(target, is_dir=False))
        os.replace(handle.name, target)
    except BaseException:
        if not kept:
            Path(handle.name).unlink(missing_ok=True)
        raise


def _flush(handle: IO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """`path` holds `data` whole, or is as it was."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)


#: A staging folder that no running save holds and that nothing touched for this long was left by
#: a killed save (the age also covers the instant between creating a folder and locking it).
STALE_SECONDS = 300


@contextmanager
def _locked(folder: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive advisory lock on a folder (`flock`; the system drops it when the process
    dies) and say whether it was got: without `wait`, not when another process holds it."""
    if fcntl is None:
        yield True
        return
    handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(handle)


def _only_files_named(folder: Path, names: Collection[str]) -> bool:
    with os.scandir(folder) as entries:
        return all(entry.name in names and entry.is_file(follow_symlinks=False) for entry in entries)


def _newest_change(folder: Path) -> float:
    return max([folder.lstat().st_mtime] + [path.lstat().st_mtime for path in folder.rglob("*")])


def _left_by_a_killed_save(folder: Path, target: Path, contents: Collection[str]) -> bool:
    """Whether `folder` is a staging (or retired) folder of `target` that a killed save left: named as
    qism names them, holding nothing but `contents` (a retired one: the old `target` holding them),
    untouched for STALE_SECONDS and held by no running save."""
    if not re.fullmatch(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.(staging|old)", folder.name):
        return False
    if folder.is_symlink() or not folder.is_dir():
        return False
    if folder.name.endswith(".old"):
        inside = os.listdir(folder)
        if inside and not (
            inside == [target.name]
            and not (folder / target.name).is_symlink()
            and (folder / target.name).is_dir()
            and _only_files_named(folder / target.name, contents)
        ):
            return False
    elif not _only_files_named(folder, contents):
        return False
    return time.time() - _newest_change(folder) > STALE_SECONDS


def remove_stale_staging(target: Path, contents: Collection[str]) -> list[Path]:
    """Remove what killed saves of `target` left beside it (see `_left_by_a_killed_save`), never a
    folder a running save is writing; the folders removed."""
    removed = []
    for folder in target.parent.glob(f".{glob.escape(target.name)}.*"):
        try:
            if not _left_by_a_killed_save(folder, target, contents):
                continue
            with _locked(folder, wait=False) as got:
                if got:
                    shutil.rmtree(folder)
                    removed.append(folder)
        except OSError:  # gone meanwhile, or not ours to read: leave it
            continue
    return removed


@contextmanager
def staged_folder(target: Path, contents: Collection[str]) -> Iterator[Path]:
    """A new private folder beside `target` to build its replacement in. When the block completes,
    its files are flushed to disk, given the modes the files they replace had, and the folder
    replaces `target` (see `replace_folder`); when it fails, the folder is removed. The folder is
    locked while it is written, so a save that runs meanwhile never takes it for a killed save's
    leftovers; those (of a `target` holding only `contents`) are removed first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent):
        remove_stale_staging(target, contents)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    try:
        with _locked(staging):
            yield staging
            for path in staging.iterdir():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
                os.chmod(path, _mode_for(target / path.name, is_dir=False))
            replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_folder(staging: Path, target: Path) -> None:
    """Move a finished staging folder to `target`, replacing the folder there in two renames, and
    give it the mode the old folder had. One replacement at a time in a folder, so saves that run
    at once all succeed and the last one stays."""
    os.chmod(staging, _mode_for(target, is_dir=True))
    with _locked(target.parent):
        if not target.exists():
            os.replace(staging, target)
            return
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, retired / target.name)
        try:
            os.replace(staging, target)
        except BaseException:
            os.replace(retired / target.name, target)
            raise
        finally:
            shutil.rmtree(retired, ignore_errors=True)  # a folder qism made: the old model, or nothing

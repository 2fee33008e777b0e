"""Atomic files: what qism writes appears whole or not at all, under the name asked for.

A regular file (or one not made yet) is written to a private temporary name beside it, flushed to
disk and renamed over it, so an interrupted run (Ctrl-C, a full disk, a kill) leaves the earlier file
as it was. The new file gets the permissions the file it replaces had, or those of any new file
under the umask. A name that is a link is followed: the file it names is replaced, and the link
stays. Anything else (a device such as /dev/null, a FIFO) is written to directly, never replaced.
Models, outputs and reports all go through `atomic_file` (folders: `staging_folder`).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import QismError

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
def atomic_file(path: str | os.PathLike, mode: str = "w", newline: str | None = None,
                keep_on_interrupt: bool = False) -> Iterator[IO]:
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
    handle = tempfile.NamedTemporaryFile(mode, **text, dir=target.parent, prefix=f".{target.name}.", suffix=".part",
                                         delete=False)
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


def staging_folder(target: Path) -> Path:
    """A new private folder beside `target` to build its replacement in (see `replace_folder`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))


def replace_folder(staging: Path, target: Path) -> None:
    """Move a finished staging folder to `target`, replacing the folder there in two renames, and
    give it the mode the old folder had."""
    os.chmod(staging, _mode_for(target, is_dir=True))
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

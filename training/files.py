"""Atomic files: what qism writes appears whole or not at all, under the name asked for.

Everything is written to a private temporary name beside its target, flushed to disk and renamed
over it, so an interrupted run (Ctrl-C, a full disk, a kill) leaves the earlier file as it was. The
new file gets the permissions the file it replaces had, or those of any new file under the umask.
Models, outputs and reports all go through `atomic_file` (folders: `staging_folder`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


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


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", newline: str | None = None) -> Iterator[IO]:
    """A file to write that becomes `path` only when the block completes (`mode` "w" or "wb")."""
    path = Path(path)
    binary = "b" in mode
    handle = tempfile.NamedTemporaryFile(mode, encoding=None if binary else "utf-8", newline=None if binary else newline,
                                         dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, _mode_for(path, is_dir=False))
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


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

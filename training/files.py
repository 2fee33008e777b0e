"""File permissions for atomic writes: temporary files and folders are private (0600/0700), so what
they become must be given the permissions any new file would get."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def make_like_new(path: str | os.PathLike) -> None:
    """Give a file or folder created private the mode a plain new one would have under the umask."""
    mode = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, mode & ~current_umask())


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", **open_args):
    """A file that becomes `path` only when the block completes: written to a temporary name in the
    same folder, flushed to disk, given a new file's mode and renamed; a failure leaves no trace."""
    path = Path(path)
    handle = tempfile.NamedTemporaryFile(mode, dir=path.parent or ".", prefix=f".{path.name}.", suffix=".part",
                                         delete=False, **open_args)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        make_like_new(handle.name)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise

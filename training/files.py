"""File permissions for atomic writes: temporary files and folders are private (0600/0700), so what
they become must be given the permissions any new file would get."""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def make_like_new(path: str | os.PathLike) -> None:
    """Give a file or folder created private the mode a plain new one would have under the umask."""
    mode = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, mode & ~current_umask())

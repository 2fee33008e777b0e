"""Progress of a long labeling run as one line: documents done, rate, and time left when the total is known."""

from __future__ import annotations

import gzip
import os
import stat
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from .corpus import detect_format, walk_folder
from .errors import QismError

#: Runs shorter than this show no progress: a quick command stays quiet.
SHOW_AFTER_SECONDS = 2.0


def _count_lines(path: Path, non_blank: bool) -> int:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        return sum(1 for line in handle if line.strip() or not non_blank)


def count_documents(path: str | os.PathLike, fmt: str | None = None) -> int | None:
    """How many documents a source holds when a quick pass can tell (None for tables, where quoted
    newlines make that a full parse, and for anything but a regular file or a folder: a pipe, a FIFO
    or standard input can be read only once, by the reader)."""
    if str(path) == "-":
        return None
    path = Path(path)
    try:
        fmt = fmt or detect_format(path)
        if fmt == "folder":
            tree = walk_folder(path)
            return None if tree.data else len(tree.files) + len(tree.outside)  # a data file's records: unknown
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        if fmt == "zip":
            with zipfile.ZipFile(path) as archive:
                return sum(
                    1 for info in archive.infolist() if not info.is_dir() and info.filename.lower().endswith(".txt")
                )
        if fmt in ("jsonl", "lines", "fasttext"):
            return _count_lines(path, non_blank=fmt != "lines")
        if fmt == "txt":
            return 1
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error, QismError):
        return None  # the reader reports the problem properly
    return None


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressMeter:
    """Counts labeled documents and words the progress line; `update` says nothing for the first
    `SHOW_AFTER_SECONDS`, so only long runs show progress."""

    def __init__(self, total: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.done = 0
        self.clock = clock
        self.started = clock()
        self.shown = False

    def _rate(self) -> float:
        return self.done / max(self.clock() - self.started, 1e-9)

    def _line(self) -> str:
        rate = self._rate()
        line = f"{self.done:,}" + (f"/{self.total:,}" if self.total else "") + f" documents, {rate:,.0f} docs/s"
        if self.total and rate > 0 and self.done < self.total:
            line += f", ETA {_duration((self.total - self.done) / rate)}"
        return line

    def update(self, n: int) -> str | None:
        """Count `n` more documents; the progress line once the run has lasted long enough, else None."""
        self.done += n
        if self.clock() - self.started < SHOW_AFTER_SECONDS:
            return None
        self.shown = True
        return self._line()

    def summary(self) -> str | None:
        """The closing line, for a run that showed progress (None otherwise)."""
        if not self.shown:
            return None
        return (
            f"labeled {self.done:,} documents in {_duration(self.clock() - self.started)} ({self._rate():,.0f} docs/s)"
        )

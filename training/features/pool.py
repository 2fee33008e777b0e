"""The worker pool: a function applied to chunks of a list of texts on several processes, in order.

On Linux, workers are forked: they inherit the function and the texts, so a task is two numbers and a
worker starts in milliseconds without importing anything. Elsewhere joblib's processes are used, which
must be sent both and import the package first.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs

#: Documents per parallel task at most: large enough to hide the cost of sending work to a process.
CHUNK_SIZE = 2000
#: Fewer texts than this are featurized in the calling process: starting workers would cost more.
MIN_PARALLEL_TEXTS = 500
FORK_WORKERS = sys.platform == "linux"
#: What forked workers inherit: (work, texts), set only while one pool runs.
_INHERITED: tuple[Callable, Sequence[str]] | None = None
_INHERITED_LOCK = threading.Lock()


def _work_on_range(bounds: tuple[int, int]):
    work, texts = _INHERITED
    return work(texts[bounds[0] : bounds[1]])


def map_ranges(work: Callable, texts: Sequence[str], bounds: list[tuple[int, int]], n_jobs: int) -> list:
    """`work(texts[start:end])` for each range, in order, on `n_jobs` processes."""
    if FORK_WORKERS and not multiprocessing.current_process().daemon and _INHERITED_LOCK.acquire(blocking=False):
        global _INHERITED
        try:
            _INHERITED = (work, texts)
            with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                return list(pool.map(_work_on_range, bounds))
        finally:
            _INHERITED = None
            _INHERITED_LOCK.release()
    return Parallel(n_jobs=n_jobs)(delayed(work)(texts[start:end]) for start, end in bounds)


def map_chunks(work: Callable, texts: Sequence[str], n_jobs: int | None) -> list:
    """`work` on each chunk of texts, on `n_jobs` processes when there are enough texts: at most
    CHUNK_SIZE each, and at least four chunks per process, so no process waits on a last big one."""
    n_jobs = effective_n_jobs(n_jobs)
    if n_jobs == 1 or len(texts) < MIN_PARALLEL_TEXTS:
        return [work(texts[i : i + CHUNK_SIZE]) for i in range(0, len(texts), CHUNK_SIZE)]
    size = min(CHUNK_SIZE, -(-len(texts) // (4 * n_jobs)))
    return map_ranges(work, texts, [(i, i + size) for i in range(0, len(texts), size)], n_jobs)


def stack_chunks(work: Callable, texts: Sequence[str], n_jobs: int | None, n_columns: int, dtype) -> sp.csr_matrix:
    """The sparse rows `work` makes of each chunk of texts, stacked in order."""
    parts = map_chunks(work, list(texts), n_jobs)
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, n_columns), dtype=dtype)

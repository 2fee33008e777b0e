"""The worker pool: a function applied to chunks of a list of texts on several processes, in order.

On Linux, workers are forked: they inherit the function and the texts, so a task is two numbers and a
worker starts in milliseconds without importing anything. Elsewhere joblib's processes are used, which
must be sent both and import the package first.

Workers never outlive the run: a worker is killed by the kernel when its parent dies (even by
SIGKILL; where the kernel cannot, a watchdog thread checks the parent), leaves Ctrl-C to the
parent, and a forked one is killed at once when the parent stops the pool on an error or Ctrl-C. How many run is bounded
by the cores (`config.estimator_jobs`), whatever a caller or a model file asks for.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import scipy.sparse as sp
from joblib import Parallel, delayed, parallel_config

from ..config import estimator_jobs
from ..errors import QismError

#: Documents per parallel task at most: large enough to hide the cost of sending work to a process.
CHUNK_SIZE = 2000
#: Fewer texts than this are featurized in the calling process: starting workers would cost more.
MIN_PARALLEL_TEXTS = 500
FORK_WORKERS = sys.platform == "linux"
#: What forked workers inherit: (work, texts), set only while one pool runs.
_INHERITED: tuple[Callable, Sequence[str]] | None = None
_INHERITED_LOCK = threading.Lock()
#: prctl(2) option: the signal a process gets when the thread that forked it ends.
_PR_SET_PDEATHSIG = 1
#: Seconds between a watchdog's looks at its worker's parent.
_WATCHDOG_SECONDS = 0.5


def _work_on_range(bounds: tuple[int, int]):
    work, texts = _INHERITED
    return work(texts[bounds[0] : bounds[1]])


def _start_worker(parent: int) -> None:
    """In each worker: die with `parent`, and leave Ctrl-C (sent to the whole terminal process
    group) to the parent, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        dies_with_parent = ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError, TypeError):  # not Linux
        dies_with_parent = False
    if not dies_with_parent:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before the worker could ask to die with it
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCHDOG_SECONDS)
    os._exit(1)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a pool at once: `shutdown` alone lets each worker finish its chunk first."""
    for process in list(pool._processes.values()):  # no public way before Python 3.14's kill_workers()
        process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def map_ranges(work: Callable, texts: Sequence[str], bounds: list[tuple[int, int]], n_jobs: int) -> list:
    """`work(texts[start:end])` for each range, in order, on `n_jobs` processes."""
    if FORK_WORKERS and not multiprocessing.current_process().daemon and _INHERITED_LOCK.acquire(blocking=False):
        global _INHERITED
        try:
            _INHERITED = (work, texts)
            pool = ProcessPoolExecutor(
                n_jobs,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
            try:
                results = list(pool.map(_work_on_range, bounds))
            except BrokenProcessPool:
                _kill_workers(pool)
                raise QismError("a worker process was killed (out of memory?); run with fewer --jobs") from None
            except BaseException:
                _kill_workers(pool)
                raise
            pool.shutdown(wait=True)
            return results
        finally:
            _INHERITED = None
            _INHERITED_LOCK.release()
    with parallel_config(backend="loky", initializer=_start_worker, initargs=(os.getpid(),)):
        return Parallel(n_jobs=n_jobs)(delayed(work)(texts[start:end]) for start, end in bounds)


def map_chunks(work: Callable, texts: Sequence[str], n_jobs: int | None) -> list:
    """`work` on each chunk of texts, on `n_jobs` processes (at most the cores) when there are
    enough texts: at most CHUNK_SIZE each, and at least four chunks per process, so no process
    waits on a last big one."""
    n_jobs = estimator_jobs(n_jobs)
    if n_jobs == 1 or len(texts) < MIN_PARALLEL_TEXTS:
        return [work(texts[i : i + CHUNK_SIZE]) for i in range(0, len(texts), CHUNK_SIZE)]
    size = min(CHUNK_SIZE, -(-len(texts) // (4 * n_jobs)))
    return map_ranges(work, texts, [(i, i + size) for i in range(0, len(texts), size)], n_jobs)


def stack_chunks(work: Callable, texts: Sequence[str], n_jobs: int | None, n_columns: int, dtype) -> sp.csr_matrix:
    """The sparse rows `work` makes of each chunk of texts, stacked in order."""
    parts = map_chunks(work, list(texts), n_jobs)
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, n_columns), dtype=dtype)

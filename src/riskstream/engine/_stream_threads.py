"""Threads of the streaming engine's micro-batch: independent pieces of one step run on several cores at once.

numpy and scipy ufunc inner loops (the normal CDF, ``exp``, arithmetic), fancy-indexed copies and sparse
products release the GIL, so pieces of a step that write disjoint rows of their outputs — blocks of options to
value, blocks of rows to re-translate, blocks of leaves to update — run truly in parallel on threads. Each piece
computes every element exactly as the single-threaded path does, so the results are the same bits whatever the
number of threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["StepPool"]


class StepPool:
    """Runs lists of independent tasks on ``threads`` threads at once, the calling thread included.

    The helper threads (``threads − 1``) start on first use and stop at :meth:`close` (a later :meth:`run`
    starts them again). With ``threads == 1`` every task runs in the calling thread, in order.
    """

    def __init__(self, threads: int) -> None:
        self.threads = max(1, int(threads))
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, tasks: Sequence[Callable[[], object]]) -> None:
        """Run every task once and return when all are done; the first exception raised by a task is re-raised
        after the others finished. Tasks are taken in order by whichever thread is free (costliest first pays)."""
        if self.threads == 1 or len(tasks) < 2:
            for task in tasks:
                task()
            return
        it = iter(tasks)
        take = threading.Lock()

        def drain() -> None:
            while True:
                with take:
                    task = next(it, None)
                if task is None:
                    return
                task()

        helpers = min(self.threads, len(tasks)) - 1
        futures: list[Future[None]] = [self._pool().submit(drain) for _ in range(helpers)]
        error: BaseException | None = None
        try:
            drain()
        except BaseException as exc:  # the helpers still write into shared buffers: wait for them first
            error = exc
        for f in futures:
            failure = f.exception()
            if error is None and failure is not None:
                error = failure
        if error is not None:
            raise error

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="riskstream-step")
            return self._executor

    def close(self) -> None:
        """Stop the helper threads (waits for running tasks)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

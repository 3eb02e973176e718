"""Parallel grading: one forked worker process per job slot, each with its own warm sandbox.

Why processes and not threads: loading, comparing, scoring and rendering are Python work in the
trusted parent; with threads they share one interpreter lock and a second slot adds little. Forked
workers inherit the loaded assignment with its memoised expected values, so each starts warm, and
they send back text (JSON, HTML) made by our own code — never objects to unpickle from elsewhere.
Student code never runs in these workers: it runs in the sandbox each worker keeps below itself.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.util
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, TypeVar

Item = TypeVar("Item")
Out = TypeVar("Out")

_STATE: dict = {}  # in a worker: what the task needs, inherited through fork, plus its sandbox


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def worker_sandbox(state: dict) -> Any:
    """The worker's warm sandbox, started on first use and closed when the worker exits."""
    if state.get("sandbox") is None:
        from .api import open_sandbox

        sandbox = open_sandbox(state["assignment"], state["isolation"])
        state["sandbox"] = sandbox
        # workers leave through os._exit, which skips atexit; finalizers with a priority still run
        multiprocessing.util.Finalize(sandbox, sandbox.close, exitpriority=10)
    return state["sandbox"]


def _init_worker(state: dict, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the main process to handle
    # die with the grading process, even on kill -9 (its sandboxes then follow: see sandbox/)
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)
    _STATE.clear()
    _STATE.update(state)


def _run_task(task: Callable[[dict, Any], Any], item: Any) -> Any:
    return task(_STATE, item)


def map_in_workers(task: Callable[[dict, Item], Out], items: list[Item], state: dict, jobs: int,
                   fallback: Callable[[list[Item]], Iterator[Out]]) -> Iterator[Out]:
    """``task(state, item)`` for each item in ``jobs`` forked workers; outputs in input order.

    ``task`` must be a module-level function (it is sent by reference) and return plain data. Should a
    worker process die (never by student code, which runs in the sandbox below it), the remaining
    items go to ``fallback`` in this process, so the batch still completes.
    """
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"),
                               initializer=_init_worker, initargs=(state, os.getpid()))
    futures: list[Future] = []
    try:
        futures = [pool.submit(_run_task, task, item) for item in items]
        for done, future in enumerate(futures):
            try:
                output = future.result()
            except BrokenProcessPool:
                yield from fallback(items[done:])
                return
            yield output
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def map_here(task: Callable[[dict, Item], Out], items: list[Item], state: dict) -> Iterator[Out]:
    """The same as :func:`map_in_workers`, one item after another in this process."""
    own = dict(state)
    try:
        for item in items:
            yield task(own, item)
    finally:
        if own.get("sandbox") is not None:
            own["sandbox"].close()


def map_tasks(task: Callable[[dict, Item], Out], items: list[Item], state: dict, jobs: int) -> Iterator[Out]:
    """Workers when there is more than one job slot and more than one item, else this process."""
    if jobs > 1 and len(items) > 1 and can_fork():
        return map_in_workers(task, items, state, min(jobs, len(items)),
                              fallback=lambda rest: map_here(task, rest, state))
    return map_here(task, items, state)

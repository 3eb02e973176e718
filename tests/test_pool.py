"""Parallel grading gives the same results as serial grading, and survives a worker process dying."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import skip_or_fail

from grader.api import grade_many
from grader.assignment import load_assignment
from grader.pool import map_here, map_in_workers
from grader.sandbox import available_isolation

ROOT = Path(__file__).resolve().parents[1]
MAIN_PID = os.getpid()


def _square_or_die(state: dict, item: int) -> int:
    if item == state["fatal"] and os.getpid() != MAIN_PID:
        os._exit(1)  # the worker process dies as if killed
    return item * item


def test_a_dead_worker_process_does_not_lose_the_batch():
    items = list(range(8))
    state = {"fatal": 3}
    results = list(map_in_workers(_square_or_die, items, state, jobs=2,
                                  fallback=lambda rest: map_here(_square_or_die, rest, state)))
    assert results == [i * i for i in items]


def _timeless(document: dict) -> dict:
    return {k: v for k, v in document.items() if k not in ("duration", "graded_at")}


@pytest.mark.sandbox
def test_parallel_and_serial_grading_agree(tmp_path):
    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")
    for name in ("alice.ipynb", "bob.py", "carla.ipynb", "dmitri.ipynb", "fatima.ipynb"):
        shutil.copy(ROOT / "submissions" / name, tmp_path / name)
    paths = sorted(tmp_path.iterdir())
    assignment = load_assignment(ROOT / "reference" / "ex01")
    serial = [_timeless(r.to_dict()) for r in grade_many(paths, assignment, jobs=1, isolation="namespaces")]
    parallel = [_timeless(r.to_dict()) for r in grade_many(paths, assignment, jobs=2, isolation="namespaces")]
    assert serial == parallel
    assert [r["student"] for r in parallel] == ["alice", "bob", "carla", "dmitri", "fatima"]

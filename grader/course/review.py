"""The review app over a course's gradebook, with reports re-rendered as decisions arrive."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..assignment import Assignment
from ..errors import GraderError
from ..results import SubmissionResult
from ..score import apply_decisions
from ..store import Gradebook
from .outputs import gradebook_path, rerender


class _Debounced:
    """Runs ``action`` once, ``delay`` seconds after the last ``poke``: re-rendering all reports after
    every keypress of a reviewer would make the review app sluggish."""

    def __init__(self, action: Callable[[], object], delay: float = 1.0):
        import threading

        self.action, self.delay, self.lock, self.timer = action, delay, threading.Lock(), None
        self._threading = threading

    def poke(self, *_: object) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self._threading.Timer(self.delay, self.action)
            self.timer.daemon = True
            self.timer.start()

    def flush(self) -> None:
        with self.lock:
            pending, self.timer = self.timer, None
        if pending is not None and pending.is_alive():
            pending.cancel()
            self.action()


def start_review(assignment: Assignment, out_dir: Path, port: int = 8765, host: str = "127.0.0.1"):
    """Start the review app over the course's gradebook; reports are re-rendered as decisions arrive."""
    from ..review import serve_review

    path = gradebook_path(out_dir)
    if not path.is_file():
        raise GraderError(f"no gradebook at {path}: grade the course first (grader grade --out {out_dir})")

    def current_results() -> list[SubmissionResult]:
        with Gradebook(path) as gradebook:
            stored = gradebook.latest_results(assignment.id)
            decisions = gradebook.all_decisions(assignment.id)
        return [apply_decisions(r, assignment, decisions.get(r.student, {})) for r in stored]

    refresh = _Debounced(lambda: rerender(assignment, out_dir))
    try:
        server = serve_review(path, assignment, current_results, on_decision=refresh.poke, host=host, port=port)
    except OSError as error:
        raise GraderError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                          "choose another port with --port") from None
    original_shutdown = server.shutdown

    def shutdown() -> None:
        original_shutdown()
        refresh.flush()

    server.shutdown = shutdown
    return server

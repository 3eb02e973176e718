"""The review app over a course's gradebook, with reports re-rendered as decisions arrive."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from ..assignment import Assignment
from ..errors import GraderError
from ..results import SubmissionResult
from ..score import apply_decisions
from ..store import Gradebook
from .outputs import gradebook_path, rerender


class Rerenderer:
    """Runs ``action`` on one thread of its own, ``delay`` seconds after the last ``poke``.

    Re-rendering every report after every keypress would make the review app sluggish, and two
    renders at once would race on the same files: here a render never overlaps another (pokes that
    arrive during a render start exactly one more after it). ``flush`` waits for the pending render.
    The last failure is kept in ``error`` (the app says so on the next decision)."""

    def __init__(self, action: Callable[[], object], delay: float = 1.0):
        self.action, self.delay = action, delay
        self.error: str | None = None
        self._changed = threading.Condition()
        self._due: float | None = None  # monotonic time of the pending render, None when nothing is pending
        self._running = False
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="grader-rerender", daemon=True)
        self._thread.start()

    def poke(self, *_: object) -> None:
        import time

        with self._changed:
            self._due = time.monotonic() + self.delay
            self._changed.notify_all()

    def _loop(self) -> None:
        import time

        while True:
            with self._changed:
                while not self._stopped and (self._due is None or time.monotonic() < self._due):
                    self._changed.wait(None if self._due is None else max(0.0, self._due - time.monotonic()))
                if self._due is None:  # stopped with nothing pending
                    return
                self._due, self._running = None, True
            try:
                self.action()
                self.error = None
            except Exception as error:  # the decisions are saved; the reports are behind until the next render
                self.error = f"{type(error).__name__}: {error}"
            finally:
                with self._changed:
                    self._running = False
                    self._changed.notify_all()

    def flush(self) -> None:
        """Render now if a render is pending, wait until no render runs, and stop the thread."""
        with self._changed:
            if self._due is not None:
                self._due = 0.0
            self._stopped = True
            self._changed.notify_all()
        self._thread.join()

    def idle(self) -> bool:
        with self._changed:
            return self._due is None and not self._running


def start_review(assignment: Assignment, out_dir: Path, port: int = 8765, host: str = "127.0.0.1",
                 reviewer: str = ""):
    """Start the review app over the course's gradebook; reports are re-rendered as decisions arrive.

    Open the server's ``login_url``: it carries the secret every request needs."""
    from ..review import serve_review

    path = gradebook_path(out_dir)
    if not path.is_file():
        raise GraderError(f"no gradebook at {path}: grade the course first (grader grade --out {out_dir})")

    def current_results() -> list[SubmissionResult]:
        with Gradebook(path) as gradebook:
            stored = gradebook.latest_results(assignment.id)
            decisions = gradebook.all_decisions(assignment.id)
        return [apply_decisions(r, assignment, decisions.get(r.student, {})) for r in stored]

    refresh = Rerenderer(lambda: rerender(assignment, out_dir))

    def on_decision(student: str) -> None:
        refresh.poke()
        if refresh.error:
            raise GraderError(refresh.error)

    try:
        server = serve_review(path, assignment, current_results, on_decision=on_decision, host=host, port=port,
                              reviewer=reviewer, reports_dir=out_dir)
    except OSError as error:
        refresh.flush()
        raise GraderError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                          "choose another port with --port") from None
    original_shutdown = server.shutdown

    def shutdown() -> None:
        original_shutdown()
        refresh.flush()

    server.shutdown = shutdown  # type: ignore[method-assign]
    server.rerenderer = refresh  # type: ignore[attr-defined]
    return server

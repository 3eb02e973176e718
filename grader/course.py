"""Grading a whole course: inputs (folders, Moodle downloads) → gradebook → results.json, reports, exports.

This is what ``grader grade`` runs. Every submission goes through :func:`grader.api.grade_many`;
results are recorded in the gradebook as they arrive, manual decisions from earlier reviews are
applied, and everything a person reads is rendered from that.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .api import grade_many, required_isolation
from .assignment import Assignment
from .errors import SubmissionError
from .moodle import extract_moodle, is_moodle_archive, moodle_identities
from .report import write_exports, write_html_reports
from .results import SimilarPair, SubmissionResult, results_document
from .score import apply_decisions
from .similarity import similar_pairs
from .store import Gradebook
from .submission import find_submissions, load_submission, student_id, submission_hash

GRADEBOOK_FILE = "gradebook.sqlite"


@dataclass
class CourseRun:
    """What a course grading run produced."""

    assignment: str
    out_dir: Path
    results: list[SubmissionResult]
    reused: int = 0  # results taken from the gradebook (unchanged submissions)
    similar: list[SimilarPair] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def results_file(self) -> Path:
        return self.out_dir / "results.json"


def gradebook_path(out_dir: Path) -> Path:
    return out_dir / GRADEBOOK_FILE


def collect_sources(paths: list[Path], scratch: Path) -> tuple[list[tuple[Path, str]], dict[str, tuple[str, str]]]:
    """(path, student) pairs from files, folders and Moodle downloads, plus Moodle identities."""
    sources: list[tuple[Path, str]] = []
    identities: dict[str, tuple[str, str]] = {}
    for path in find_submissions(paths):
        if path.is_file() and path.suffix.lower() == ".zip" and is_moodle_archive(path):
            entries = extract_moodle(path, scratch / path.stem)
            sources += [(entry.path, entry.student) for entry in entries]
            identities.update(moodle_identities(entries))
        else:
            sources.append((path, student_id(path)))
    seen: set[str] = set()
    for _, student in sources:
        if student in seen:
            raise SubmissionError(f"two submissions share the student id '{student}'; rename one of them")
        seen.add(student)
    return sources, identities


def grade_course(paths: list[Path], assignment: Assignment, out_dir: Path, *, jobs: int = 2,
                 allow_reduced_isolation: bool = False, force: bool = False,
                 progress: Callable[[SubmissionResult], None] | None = None,
                 on_start: Callable[[int], None] | None = None) -> CourseRun:
    """Grade every submission under ``paths`` and write results, reports and exports to ``out_dir``."""
    isolation = required_isolation(allow_reduced_isolation)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="grader-moodle-"))
    try:
        sources, identities = collect_sources(paths, scratch)
        if on_start:
            on_start(len(sources))
        with Gradebook(gradebook_path(out_dir)) as gradebook:
            run_id = gradebook.start_run(assignment.id, assignment.version, "grade")
            reused = 0

            def cached(path: Path, student: str) -> SubmissionResult | None:
                nonlocal reused
                if force:
                    return None
                digest = submission_hash(path)
                hit = gradebook.cached(digest, assignment.version, "grade") if digest else None
                if hit is not None and hit.student == student:
                    reused += 1
                    return hit
                return None

            results = []
            for result in grade_many(sources, assignment, jobs=jobs, isolation=isolation, cached=cached,
                                     progress=progress):
                gradebook.record(run_id, result)
                results.append(result)
            decisions = gradebook.all_decisions(assignment.id)
            gradebook.finish_run(run_id)
        results = [apply_decisions(r, assignment, decisions.get(r.student, {})) for r in results]
        similar = find_similar(sources, assignment)
        run = CourseRun(assignment.id, out_dir, results, reused, similar)
        run.files = write_outputs(run, assignment, identities)
        return run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def find_similar(sources: list[tuple[Path, str]], assignment: Assignment) -> list[SimilarPair]:
    """Pairs of suspiciously similar submissions (code and written answers), template text ignored."""
    code, answers = {}, {}
    question_ids = tuple(q.id for q in assignment.questions)
    for path, student in sources:
        try:
            submission = load_submission(path, question_ids, student)
        except SubmissionError:
            continue
        code[student] = submission.code
        answers[student] = submission.answers
    template_code = ""
    if assignment.has_reference:  # what every student was given is not evidence of copying
        from .release import template_notebook

        template_code = "\n\n".join(c.source for c in template_notebook(assignment).cells if c.cell_type == "code")
    return similar_pairs(code, answers, template_code=template_code)


def write_outputs(run: CourseRun, assignment: Assignment, identities: dict | None = None) -> list[Path]:
    document = results_document(assignment.id, run.results)
    run.results_file.write_text(json.dumps(document, indent=1, allow_nan=False, default=str), encoding="utf-8")
    files = [run.results_file]
    files += write_html_reports(run.results, assignment, run.out_dir, similar=run.similar)
    files += write_exports(run.results, assignment, run.out_dir, identities=identities or None)
    return files


def rerender(assignment: Assignment, out_dir: Path) -> CourseRun:
    """Re-apply manual decisions from the gradebook and rewrite every report (after a review)."""
    with Gradebook(gradebook_path(out_dir)) as gradebook:
        stored = gradebook.latest_results(assignment.id)
        decisions = gradebook.all_decisions(assignment.id)
    results = [apply_decisions(r, assignment, decisions.get(r.student, {})) for r in stored]
    run = CourseRun(assignment.id, out_dir, results)
    run.files = write_outputs(run, assignment)
    return run


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
    from .errors import GraderError
    from .review import serve_review

    path = gradebook_path(out_dir)
    if not path.is_file():
        raise GraderError(f"no gradebook at {path}: grade the course first (grader grade --out {out_dir})")

    def current_results() -> list[SubmissionResult]:
        with Gradebook(path) as gradebook:
            stored = gradebook.latest_results(assignment.id)
            decisions = gradebook.all_decisions(assignment.id)
        return [apply_decisions(r, assignment, decisions.get(r.student, {})) for r in stored]

    refresh = _Debounced(lambda: rerender(assignment, out_dir))
    server = serve_review(path, assignment, current_results, on_decision=refresh.poke, host=host, port=port)
    original_shutdown = server.shutdown

    def shutdown() -> None:
        original_shutdown()
        refresh.flush()

    server.shutdown = shutdown
    return server

"""Grading a whole course: inputs (folders, Moodle downloads) → gradebook → results.json, reports, exports.

This is what ``grader grade`` runs. Unchanged submissions are taken from the gradebook; the others
are graded in forked workers (:func:`grader.api.in_input_order`), which also apply the decisions of
earlier reviews and render each student's page. Results are recorded and written as they arrive; the
overview and exports follow once all are in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, TextIO

from .api import in_input_order, required_isolation
from .assignment import Assignment
from .errors import GraderError, SubmissionError
from .moodle import extract_moodle, is_moodle_archive, moodle_identities
from .pool import worker_sandbox
from .report import render_index, render_submission, safe_filename, write_exports
from .results import SimilarPair, SubmissionResult, plain, results_document
from .score import apply_decisions
from .similarity import similar_pairs
from .store import Gradebook
from .submission import find_submissions, load_submission, student_id, submission_hash

GRADEBOOK_FILE = "gradebook.sqlite"
RESULTS_FILE = "results.json"
SIMILAR_FILE = "similar.json"
STAMP_FILE = ".outputs.json"


@dataclass(frozen=True)
class CourseSummary:
    submissions: int
    reused: int  # results taken from the gradebook (unchanged submissions)
    bonus_awarded: int
    bonus_pending: int
    unreadable: int
    similar: int  # flagged pairs

    @classmethod
    def of(cls, results: list[SubmissionResult], reused: int, similar: int) -> "CourseSummary":
        return cls(len(results), reused, sum(1 for r in results if r.bonus.awarded),
                   sum(1 for r in results if r.bonus.awarded is None), sum(1 for r in results if r.error), similar)


@dataclass
class CourseRun:
    """What a course grading run produced.

    ``results`` is empty when nothing changed since the last run: the outputs on disk are current
    and were not rewritten (``files`` is empty too).
    """

    assignment: str
    out_dir: Path
    summary: CourseSummary
    results: list[SubmissionResult] = field(default_factory=list)
    similar: list[SimilarPair] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def results_file(self) -> Path:
        return self.out_dir / RESULTS_FILE


def gradebook_path(out_dir: Path) -> Path:
    return out_dir / GRADEBOOK_FILE


@dataclass(frozen=True)
class Sources:
    """What a course run grades: (path, student) pairs, how to name each file, Moodle identities."""

    pairs: list[tuple[Path, str]]
    labels: dict[str, str]  # student -> the file as the instructor knows it (not a scratch copy)
    identities: dict[str, tuple[str, str]]


def collect_sources(paths: list[Path], scratch: Path) -> Sources:
    """Submissions from files, folders and Moodle downloads (extracted into ``scratch``)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:  # a mistyped path on the command line, not a student's broken file
        raise GraderError(f"no such file or folder: {', '.join(missing)}")
    pairs: list[tuple[Path, str]] = []
    labels: dict[str, str] = {}
    identities: dict[str, tuple[str, str]] = {}
    for path in find_submissions(paths):
        if path.is_file() and path.suffix.lower() == ".zip" and is_moodle_archive(path):
            entries = extract_moodle(path, scratch / f"{len(labels)}-{path.stem}")
            for entry in entries:
                pairs.append((entry.path, entry.student))
                labels[entry.student] = f"{path} → {entry.full_name}/{entry.path.name}"
            identities.update(moodle_identities(entries))
        else:
            student = student_id(path)
            pairs.append((path, student))
            labels[student] = str(path)
    seen: set[str] = set()
    for _, student in pairs:
        if student in seen:
            raise SubmissionError(f"two submissions share the student id '{student}'; rename one of them")
        seen.add(student)
    return Sources(pairs, labels, identities)


def grade_course(paths: list[Path], assignment: Assignment, out_dir: Path, *, jobs: int = 2,
                 allow_reduced_isolation: bool = False, force: bool = False,
                 progress: Callable[[SubmissionResult], None] | None = None,
                 on_start: Callable[[int], None] | None = None) -> CourseRun:
    """Grade every submission under ``paths`` and write results, reports and exports to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="grader-moodle-"))
    try:
        collected = collect_sources(paths, scratch)
        sources, identities = collected.pairs, collected.identities
        hashes = {student: submission_hash(path) for path, student in sources}
        with Gradebook(gradebook_path(out_dir)) as gradebook:
            decisions = gradebook.all_decisions(assignment.id)
            fingerprint = _inputs_fingerprint(assignment, collected, hashes, decisions)
            stamp = _read_stamp(out_dir)
            if not force and stamp.get("fingerprint") == fingerprint and _outputs_present(out_dir, sources):
                summary = replace(CourseSummary(**stamp["summary"]), reused=len(sources))
                return CourseRun(assignment.id, out_dir, summary)
            isolation = required_isolation(allow_reduced_isolation)
            similarity = _Similarity(sources, assignment)  # forked now, before any thread starts
            if on_start:
                on_start(len(sources))
            results, reused = _grade_and_write(gradebook, collected, hashes, assignment, out_dir, decisions,
                                               jobs=jobs, isolation=isolation, force=force, progress=progress)
        run = CourseRun(assignment.id, out_dir, CourseSummary.of(results, reused, 0), results)
        run.similar = similarity.result()
        run.files = _Outputs(out_dir, assignment).finish(run, identities)
        run.summary = CourseSummary.of(results, reused, len(run.similar))
        _write_stamp(out_dir, {"fingerprint": fingerprint, "summary": vars(run.summary)})
        return run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _grade_and_write(gradebook: Gradebook, collected: Sources, hashes: dict[str, str | None],
                     assignment: Assignment, out_dir: Path, decisions: dict, *, jobs: int, isolation: str,
                     force: bool, progress: Callable | None) -> tuple[list[SubmissionResult], int]:
    """Grade (or reuse), record and write each result in input order as it arrives."""
    run_id = gradebook.start_run(assignment.id, assignment.version, "grade")
    sources, labels = collected.pairs, collected.labels
    reused: dict[int, SubmissionResult] = {}
    recorded_before: set[int] = set()  # this student's own latest result: no need to record it again
    for i, (path, student) in enumerate(sources):
        digest = hashes.get(student)
        hit = None if force or not digest else gradebook.cached(digest, assignment.version, "grade")
        if hit is not None:  # identical bytes grade identically, whoever handed them in
            reused[i] = replace(hit, student=student, file=labels[student])
            if hit.student == student and hit.file == labels[student]:
                recorded_before.add(i)
    state = {"assignment": assignment, "mode": "grade", "isolation": isolation, "decisions": decisions,
             "labels": labels}
    outputs = _Outputs(out_dir, assignment)
    results = []
    for i, hit, texts in in_input_order(sources, reused, _grade_and_render, state, jobs):
        if hit is not None:
            raw, raw_text = hit, None
            final = apply_decisions(raw, assignment, decisions.get(raw.student, {}))
            final_text, page = _json(final), render_submission(final, assignment)
        else:
            raw_text, final_text, page = texts
            final = SubmissionResult.from_dict(json.loads(final_text))
            raw = final if raw_text == final_text else SubmissionResult.from_dict(json.loads(raw_text))
        if i not in recorded_before:
            gradebook.record(run_id, raw, document=raw_text)
        outputs.add(final, final_text, page)
        results.append(final)
        if progress:
            progress(final)
    gradebook.finish_run(run_id)
    outputs.close_results()
    return results, len(reused)


def _grade_and_render(state: dict, pair: tuple[Path, str]) -> tuple[str, str, str]:
    """One submission, in a worker: (result as recorded, result after manual decisions, report page)."""
    from .api import grade_one

    path, student = pair
    assignment = state["assignment"]
    raw = replace(grade_one(path, student, assignment, state["mode"], worker_sandbox(state)),
                  file=state["labels"].get(student, str(path)))
    own = state["decisions"].get(student)
    final = apply_decisions(raw, assignment, own) if own else raw
    raw_text = _json(raw)
    return raw_text, _json(final) if own else raw_text, render_submission(final, assignment)


def _json(result: SubmissionResult) -> str:
    return json.dumps(result.to_dict(), allow_nan=False, ensure_ascii=False)


class _Outputs:
    """Everything a person reads, written from final results: per student as they arrive (report
    page, results.json entry), the rest once all are in (overview, exports, similar pairs)."""

    def __init__(self, out_dir: Path, assignment: Assignment):
        self.out_dir, self.assignment = out_dir, assignment
        self.partial = out_dir / (RESULTS_FILE + ".partial")
        self.handle: TextIO | None = None
        self.count = 0

    def add(self, result: SubmissionResult, document: str, page: str) -> None:
        (self.out_dir / f"{safe_filename(result.student)}.html").write_text(page, encoding="utf-8")
        handle = self._open_results()
        handle.write((",\n" if self.count else "") + document)
        self.count += 1

    def _open_results(self) -> TextIO:
        if self.handle is None:  # the document up to its submissions list: '{..., "submissions": ['
            self.handle = self.partial.open("w", encoding="utf-8")
            self.handle.write(json.dumps(results_document(self.assignment.id, []))[:-2] + "\n")
        return self.handle

    def close_results(self) -> None:
        """Finish results.json: it appears complete or not at all (written aside, then renamed)."""
        handle = self._open_results()
        handle.write("\n]}\n")
        handle.close()
        self.partial.replace(self.out_dir / RESULTS_FILE)

    def finish(self, run: CourseRun, identities: dict | None) -> list[Path]:
        similar_file = self.out_dir / SIMILAR_FILE
        similar_file.write_text(json.dumps([plain(p) for p in run.similar], ensure_ascii=False), encoding="utf-8")
        index = self.out_dir / "index.html"
        index.write_text(render_index(run.results, self.assignment, run.similar), encoding="utf-8")
        pages = [self.out_dir / f"{safe_filename(r.student)}.html" for r in run.results]
        return [run.results_file, similar_file, index, *pages,
                *write_exports(run.results, self.assignment, self.out_dir, identities=identities or None)]


class _Similarity:
    """Copied-work detection in a forked process, running while the submissions are graded.

    It needs only the submission files, so it starts first; its answer comes back as JSON text.
    """

    def __init__(self, sources: list[tuple[Path, str]], assignment: Assignment):
        import multiprocessing

        self.sources, self.assignment, self.process = sources, assignment, None
        if "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            self.receive, send = context.Pipe(duplex=False)
            self.process = context.Process(target=self._run, args=(send,), daemon=True)
            self.process.start()
            send.close()

    def _run(self, send) -> None:
        send.send_bytes(json.dumps([plain(p) for p in find_similar(self.sources, self.assignment)]).encode())

    def result(self) -> list[SimilarPair]:
        if self.process is None:
            return find_similar(self.sources, self.assignment)
        try:
            pairs = _similar_from_json(self.receive.recv_bytes())
        except (EOFError, OSError, ValueError):  # the helper process died: compute it here instead
            pairs = find_similar(self.sources, self.assignment)
        self.process.join()
        return pairs


def _similar_from_json(data: bytes | str) -> list[SimilarPair]:
    return [SimilarPair(p["student_a"], p["student_b"], p["kind"], p["similarity"],
                        tuple(tuple(x) for x in p["passages"])) for p in json.loads(data)]


def _inputs_fingerprint(assignment: Assignment, collected: Sources, hashes: dict, decisions: dict) -> str:
    """What the outputs depend on: the submissions' bytes, the assignment and grader, the decisions."""
    key = json.dumps([assignment.version, [(s, collected.labels[s], hashes.get(s)) for _, s in collected.pairs],
                      {s: {q: repr(d) for q, d in sorted(by_q.items())} for s, by_q in sorted(decisions.items())},
                      sorted(collected.identities.items())], default=str)
    return hashlib.sha256(key.encode()).hexdigest()


def _read_stamp(out_dir: Path) -> dict:
    try:
        stamp = json.loads((out_dir / STAMP_FILE).read_text())
        return stamp if isinstance(stamp, dict) and isinstance(stamp.get("summary"), dict) else {}
    except (OSError, ValueError):
        return {}


def _write_stamp(out_dir: Path, stamp: dict) -> None:
    (out_dir / STAMP_FILE).write_text(json.dumps(stamp))


def _outputs_present(out_dir: Path, sources: list[tuple[Path, str]]) -> bool:
    names = [RESULTS_FILE, "index.html", "grades.csv"] + [f"{safe_filename(s)}.html" for _, s in sources]
    return all((out_dir / name).is_file() for name in names)


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


def rerender(assignment: Assignment, out_dir: Path) -> CourseRun:
    """Re-apply manual decisions from the gradebook and rewrite every output (after a review)."""
    with Gradebook(gradebook_path(out_dir)) as gradebook:
        stored = gradebook.latest_results(assignment.id)
        decisions = gradebook.all_decisions(assignment.id)
    results = [apply_decisions(r, assignment, decisions.get(r.student, {})) for r in stored]
    try:
        similar = _similar_from_json((out_dir / SIMILAR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        similar = []
    run = CourseRun(assignment.id, out_dir, CourseSummary.of(results, len(results), len(similar)), results, similar)
    outputs = _Outputs(out_dir, assignment)
    for result in results:
        outputs.add(result, _json(result), render_submission(result, assignment))
    outputs.close_results()
    run.files = outputs.finish(run, None)
    (out_dir / STAMP_FILE).unlink(missing_ok=True)  # the next grade renders everything again
    return run


class _Debounced:
    """Runs ``action`` once, ``delay`` seconds after the last ``poke``: re-rendering all reports after
    every keypress of a reviewer would make the review app sluggish."""

    def __init__(self, action: Callable[[], object], delay: float = 1.0):
        import threading

        self.action, self.delay, self.lock = action, delay, threading.Lock()
        self.timer: threading.Timer | None = None
        self._threading = threading

    def poke(self, *_: object) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            timer = self._threading.Timer(self.delay, self.action)
            timer.daemon = True
            timer.start()
            self.timer = timer

    def flush(self) -> None:
        with self.lock:
            pending, self.timer = self.timer, None
        if pending is not None and pending.is_alive():
            pending.cancel()
            self.action()


def start_review(assignment: Assignment, out_dir: Path, port: int = 8765, host: str = "127.0.0.1"):
    """Start the review app over the course's gradebook; reports are re-rendered as decisions arrive."""
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
    try:
        server = serve_review(path, assignment, current_results, on_decision=refresh.poke, host=host, port=port)
    except OSError as error:
        raise GraderError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                          "choose another port with --port") from None
    original_shutdown = server.shutdown

    def shutdown() -> None:
        original_shutdown()
        refresh.flush()

    server.shutdown = shutdown  # type: ignore[method-assign]
    return server

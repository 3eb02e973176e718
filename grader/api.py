"""The library's entry points: grade one submission, grade many in parallel, check a notebook.

Stages in order — load (submission) → execute (sandbox) → compare → score — each a module of its
own; this module only wires them and never prints. A whole course (gradebook, outputs) is
:mod:`grader.course`; the CLI is a thin layer over both.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .assignment import Assignment, PreparedCase, Question
from .diagnose import error_reason, explain_case, stop_line
from .errors import GraderError, SandboxError, SubmissionError
from .judge import Rerun, judge_submission
from .pool import map_tasks, worker_sandbox
from .results import (
    BonusDecision,
    BonusState,
    CellResult,
    CellStatus,
    Isolation,
    Mode,
    QuestionResult,
    Status,
    SubmissionResult,
)
from .sandbox import Call, CallOutcome, CellSource, Job, JobOutcome, Limits, Sandbox, available_isolation
from .score import count_words, finalise, score_code_question, score_written_question
from .submission import Submission, answer_variable, load_submission, student_id

Progress = Callable[[SubmissionResult], None]


def sandbox_limits(assignment: Assignment) -> Limits:
    known = {f.name for f in fields(Limits)}
    return Limits(**{k: v for k, v in assignment.limits.items() if k in known})


def open_sandbox(assignment: Assignment, isolation: str = "auto") -> Sandbox:
    return Sandbox(isolation=isolation, allowed_packages=sandbox_limits(assignment).allowed_packages)


def grade_submission(path: Path, assignment: Assignment, *, mode: str = "grade", sandbox: Sandbox | None = None,
                     isolation: str = "auto", student: str | None = None) -> SubmissionResult:
    """Grade one submission; every student failure becomes part of the result, never an exception."""
    started = time.monotonic()
    student = student or student_id(Path(path))
    try:
        submission = load_submission(Path(path), tuple(q.id for q in assignment.questions), student,
                                     sandbox_limits(assignment).allowed_packages,
                                     {q.id: q.prompt for q in assignment.questions if q.kind == "written"})
    except SubmissionError as error:
        return error_result(student, Path(path), assignment, mode, str(error), started)
    if sandbox is None:
        with open_sandbox(assignment, isolation) as own:
            return run_submission(submission, assignment, own, mode, started)
    return run_submission(submission, assignment, sandbox, mode, started)


def run_submission(submission: Submission, assignment: Assignment, sandbox: Sandbox, mode: str,
                   started: float | None = None) -> SubmissionResult:
    started = time.monotonic() if started is None else started
    prepared = assignment.prepared_cases(include_hidden=(mode == "grade"))
    limits = sandbox_limits(assignment)
    outcome = sandbox.run(build_job(submission, prepared, limits))

    def rerun(cases: tuple[PreparedCase, ...]) -> dict[str, CallOutcome]:
        """Failed composites once more, their calls to the student's own functions recorded."""
        return dict(sandbox.run(build_job(submission, cases, limits, record=True)).calls)

    return assemble(submission, assignment, prepared, outcome, mode, started,
                    rerun if assignment.has_reference else None)


def build_job(submission: Submission, prepared: tuple[PreparedCase, ...], limits: Limits, record: bool = False) -> Job:
    """The cells and calls for the sandbox; with ``record``, a composite's calls to the student's own
    building blocks are recorded (for carried-forward credit, see :mod:`grader.judge`)."""
    cells = tuple(CellSource(c.index, c.label, c.source) for c in submission.cells if c.source.strip())
    calls = tuple(Call(p.case.id, p.case.function, tuple(p.case.args), dict(p.case.kwargs),
                       p.building_blocks if record else ()) for p in prepared)
    return Job(cells=cells, calls=calls, limits=limits, run_as=submission.run_as)


def assemble(submission: Submission, assignment: Assignment, prepared: tuple[PreparedCase, ...],
             outcome: JobOutcome, mode: str, started: float, rerun: Rerun | None = None) -> SubmissionResult:
    questions: dict[str, QuestionResult] = {}
    judged = judge_submission(assignment, prepared, outcome.calls, outcome.names, rerun)
    cells = {c.index: c for c in outcome.cells}
    packages = sandbox_limits(assignment).allowed_packages
    for question in assignment.questions:
        if question.kind == "written":
            questions[question.id] = _written(question, submission, assignment)
            continue
        cases = [explain_case(case, outcome.calls[case.case_id], submission, cells, packages)
                 for case in judged[question.id]]
        questions[question.id] = score_code_question(question, cases)
    result = SubmissionResult(
        student=submission.student, file=str(submission.path), assignment=assignment.id,
        isolation=Isolation(outcome.isolation), error=None, questions=questions,
        bonus=BonusDecision(BonusState.PENDING, ""),
        cells=_cell_results(submission, outcome, packages), mode=Mode(mode), content_hash=submission.content_hash,
        assignment_version=assignment.version, graded_at=_now(), duration=round(time.monotonic() - started, 4),
        isolation_detail=outcome.isolation_detail,
    )
    return finalise(result, assignment)


def _written(question: Question, submission: Submission, assignment: Assignment) -> QuestionResult:
    """A written answer; one found outside its answer cell always waits for a person, with the reason."""
    answer, note = submission.answers.get(question.id), submission.answer_notes.get(question.id)
    result = score_written_question(question, answer, assignment.bonus)
    if not answer and submission.kind == "module":  # a module has no markdown cells: say what it needs
        return replace(result, feedback=f"No answer found for {question.id}. Set it as a string in your module: "
                                        f'{answer_variable(question.id)} = """…""".')
    if not answer or not note:
        return result
    words = count_words(answer)
    return replace(result, status=Status.PENDING, score=0.0, answer_note=note, feedback=(
        f"Answer found ({words} words), but not where it was expected; it awaits the instructor's review.\n{note}"))


def _cell_results(submission: Submission, outcome: JobOutcome, packages: tuple[str, ...] = ()
                  ) -> tuple[CellResult, ...]:
    by_index = {c.index: c for c in outcome.cells}
    results = []
    for cell in submission.cells:
        ran = by_index.get(cell.index)
        status = ran.status if ran else ("skipped" if cell.notes else "ok")
        error = ran.error if ran else None
        message = f"{error.type}: {error.message}".strip() if error else ""
        if error and submission.kind == "module":  # a module's cells are its statements: say which line
            line = stop_line(error, cell.label) or _first_code_line(cell.source)
            message = f"line {line}: {message}" if line else message
        reason = error_reason(message, submission, by_index, packages) if error else ""
        if reason:
            message = f"{message} ({reason})"
        results.append(CellResult(index=cell.index, status=CellStatus(status), message=message[:500],
                                  traceback=error.traceback if error else None,
                                  output=ran.output if ran else "", notes=cell.notes))
    return tuple(results)


def _first_code_line(source: str) -> int | None:
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            return number
    return None


def error_result(student: str, path: Path, assignment: Assignment, mode: str, message: str,
                 started: float) -> SubmissionResult:
    """A submission that could not be graded at all: every question missing, the reason on top."""
    result = SubmissionResult(
        student=student, file=str(path), assignment=assignment.id, isolation=Isolation.NONE, error=message,
        questions={q.id: QuestionResult(q.id, q.kind, q.title, status=Status.MISSING, score=0.0, max_score=q.points,
                                        bonus=q.bonus, feedback="Not graded: the submission could not be read.")
                   for q in assignment.questions},
        bonus=BonusDecision(BonusState.NOT_AWARDED, ""), mode=Mode(mode), assignment_version=assignment.version,
        graded_at=_now(),
        duration=round(time.monotonic() - started, 4),
    )
    return finalise(result, assignment)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- many submissions


def grade_one(path: Path, student: str, assignment: Assignment, mode: str, sandbox: Sandbox) -> SubmissionResult:
    """One submission of a batch: anything grader refuses about it costs that submission only."""
    try:
        return grade_submission(path, assignment, mode=mode, sandbox=sandbox, student=student)
    except SandboxError:
        raise  # the sandbox itself is broken: no submission can be graded, say so at once
    except GraderError as error:
        return error_result(student, path, assignment, mode, str(error), time.monotonic())


def grade_many(sources: Iterable[Path | tuple[Path, str]], assignment: Assignment, *, mode: str = "grade",
               jobs: int = 2, isolation: str = "auto",
               cached: Callable[[Path, str], SubmissionResult | None] | None = None,
               progress: Progress | None = None) -> Iterator[SubmissionResult]:
    """Grade submissions in parallel, one warm sandbox per job slot; yield the results in input order.

    A source is a path (the student id is its name) or a (path, student id) pair. ``cached(path,
    student)`` may return a stored result for an unchanged submission, which is then not run again.
    With more than one job, each slot is a forked worker process (see :mod:`grader.pool`).
    """
    pairs = [s if isinstance(s, tuple) else (Path(s), student_id(Path(s))) for s in sources]
    reused = {i: hit for i, (path, student) in enumerate(pairs) if cached and (hit := cached(path, student))}
    state = {"assignment": assignment, "mode": mode, "isolation": isolation}
    for _, hit, text in in_input_order(pairs, reused, _grade_task, state, jobs):
        result = hit if hit is not None else SubmissionResult.from_dict(json.loads(text))
        if progress:
            progress(result)
        yield result


def in_input_order(pairs: list[tuple[Path, str]], reused: dict[int, SubmissionResult], task: Callable,
                   state: dict, jobs: int) -> Iterator[tuple[int, SubmissionResult | None, Any]]:
    """(index, reused result or None, task output or None) for every pair, in input order.

    ``task(state, pair)`` runs for the pairs not reused, in forked workers when ``jobs`` > 1; the
    state must hold the assignment, the mode ("grade" or "check") and the isolation.
    """
    todo = [pair for i, pair in enumerate(pairs) if i not in reused]
    if todo:  # expected values once, before the workers fork, so every worker inherits them
        state["assignment"].prepared_cases(include_hidden=(state["mode"] == "grade"))
    fresh = map_tasks(task, todo, state, jobs)
    for i in range(len(pairs)):
        yield (i, reused[i], None) if i in reused else (i, None, next(fresh))


def _grade_task(state: dict, pair: tuple[Path, str]) -> str:
    """One submission in a worker (or here): its result as JSON text."""
    path, student = pair
    result = grade_one(path, student, state["assignment"], state["mode"], worker_sandbox(state))
    return json.dumps(result.to_dict(), allow_nan=False, ensure_ascii=False)


def required_isolation(allow_reduced: bool) -> str:
    """What ``grade`` demands: namespaces, unless the instructor explicitly accepts less."""
    if allow_reduced:
        return "auto"
    if available_isolation() != "namespaces":
        raise SandboxError(
            "grading needs namespace isolation (bubblewrap with user namespaces), which is not available "
            "here. Install it (Debian/Ubuntu: apt-get install bubblewrap) or, knowing that student code "
            "then runs with only resource limits, pass --allow-reduced-isolation")
    return "namespaces"


def check(path: Path, assignment: Assignment, *, isolation: str = "auto") -> SubmissionResult:
    """A student's self-check: public cases only, best isolation available."""
    return grade_submission(path, assignment, mode="check", isolation=isolation)


__all__ = ["check", "error_result", "grade_many", "grade_submission", "open_sandbox", "required_isolation",
           "run_submission"]

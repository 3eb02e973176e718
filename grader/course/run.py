"""Grading a whole course: inputs (folders, Moodle downloads) → gradebook → results.json, reports, exports.

This is what ``grader grade`` runs. Unchanged submissions are taken from the gradebook; the others
are graded in forked workers (:func:`grader.api.in_input_order`), which also apply the decisions of
earlier reviews and render each student's page. Results are recorded and written as they arrive; the
overview and exports follow once all are in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..api import contained_render, error_result, grade_one, in_input_order, required_isolation
from ..assignment import Assignment
from ..pool import worker_sandbox
from ..report import render_submission
from ..results import SubmissionResult
from ..score import apply_decisions
from ..store import Gradebook
from ..submission import submission_hash
from .outputs import (
    CourseRun,
    CourseSummary,
    Outputs,
    exclusive,
    gradebook_path,
    json_text,
    outputs_present,
    private,
    read_stamp,
    write_stamp,
)
from .similar import SimilarityJob
from .sources import Sources, collect_sources


def grade_course(paths: list[Path], assignment: Assignment, out_dir: Path, *, jobs: int = 2,
                 allow_reduced_isolation: bool = False, force: bool = False,
                 progress: Callable[[SubmissionResult], None] | None = None,
                 on_start: Callable[[int], None] | None = None, group_readable: bool = False) -> CourseRun:
    """Grade every submission under ``paths`` and write results, reports and exports to ``out_dir``.

    The outputs are readable by their owner only unless ``group_readable``; a second run on the
    same ``out_dir`` while this one writes is refused at once (:func:`exclusive`).
    """
    old = os.umask(0o077 if not group_readable else 0o027)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old)
    with exclusive(out_dir), private(out_dir, group_readable):
        return _grade_course(paths, assignment, out_dir, jobs=jobs, allow_reduced_isolation=allow_reduced_isolation,
                             force=force, progress=progress, on_start=on_start)


def _grade_course(paths: list[Path], assignment: Assignment, out_dir: Path, *, jobs: int,
                  allow_reduced_isolation: bool, force: bool, progress: Callable[[SubmissionResult], None] | None,
                  on_start: Callable[[int], None] | None) -> CourseRun:
    scratch = Path(tempfile.mkdtemp(prefix="grader-moodle-"))
    try:
        collected = collect_sources(paths, scratch, template_name=f"{assignment.id}.ipynb")
        sources, identities = collected.pairs, collected.identities
        hashes = {student: submission_hash(path) for path, student in sources}
        with Gradebook(gradebook_path(out_dir)) as gradebook:
            decisions = gradebook.all_decisions(assignment.id)
            fingerprint = _inputs_fingerprint(assignment, collected, hashes, decisions)
            stamp = read_stamp(out_dir)
            if not force and stamp.get("fingerprint") == fingerprint and outputs_present(out_dir, sources):
                summary = replace(CourseSummary(**stamp["summary"]), reused=len(sources))
                return CourseRun(assignment.id, out_dir, summary, warnings=collected.warnings)
            isolation = required_isolation(allow_reduced_isolation)
            similarity = SimilarityJob(sources, assignment)  # forked now, before any thread starts
            if on_start:
                on_start(len(sources))
            results, reused = _grade_and_write(gradebook, collected, hashes, assignment, out_dir, decisions,
                                               jobs=jobs, isolation=isolation, force=force, progress=progress)
        run = CourseRun(assignment.id, out_dir, CourseSummary.of(results, reused, 0), results,
                        warnings=collected.warnings)
        run.similar = similarity.result()
        run.files = Outputs(out_dir, assignment).finish(run, identities, collected.moodle)
        run.summary = CourseSummary.of(results, reused, len(run.similar))
        write_stamp(out_dir, {"fingerprint": fingerprint, "summary": vars(run.summary)})
        return run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _grade_and_write(gradebook: Gradebook, collected: Sources, hashes: dict[str, str | None],
                     assignment: Assignment, out_dir: Path, decisions: dict, *, jobs: int, isolation: str,
                     force: bool, progress: Callable | None) -> tuple[list[SubmissionResult], int]:
    """Grade (or reuse), record and write each result in input order as it arrives."""
    run_id = gradebook.start_run(assignment.id, assignment.version, "grade")
    sources, labels, participants = collected.pairs, collected.labels, collected.participants
    reused: dict[int, SubmissionResult] = {}
    recorded_before: set[int] = set()  # this student's own latest result: no need to record it again
    for i, (path, student) in enumerate(sources):
        if student in collected.problems:  # nothing of theirs could be unpacked: say why, grade nothing
            reused[i] = replace(error_result(student, path, assignment, "grade", collected.problems[student],
                                             time.monotonic()), file=labels[student],
                                participant_id=participants.get(student, ""))
            continue
        digest = hashes.get(student)
        hit = None if force or not digest else gradebook.cached(digest, assignment.version, "grade")
        if hit is not None:  # identical bytes grade identically, whoever handed them in
            reused[i] = replace(hit, student=student, file=labels[student],
                                participant_id=participants.get(student, ""))
            if (hit.student, hit.file, hit.participant_id) == (student, labels[student], reused[i].participant_id):
                recorded_before.add(i)
    state = {"assignment": assignment, "mode": "grade", "isolation": isolation, "decisions": decisions,
             "labels": labels, "participants": participants}
    outputs = Outputs(out_dir, assignment)
    results = []
    for i, hit, texts in in_input_order(sources, reused, _grade_and_render, state, jobs):
        if hit is not None:
            raw, raw_text = hit, None
            _, final_text, page = contained_render(
                hit, lambda r: _texts(r, decisions.get(r.student, {}), assignment), Path(hit.file), assignment, "grade")
            final = SubmissionResult.from_dict(json.loads(final_text))
        else:
            raw_text, final_text, page = texts
            final = SubmissionResult.from_dict(json.loads(final_text))
            raw = final if raw_text == final_text else SubmissionResult.from_dict(json.loads(raw_text))
        if i not in recorded_before:
            gradebook.record(run_id, raw, document=raw_text)
        gradebook.keep_handed_in(raw.content_hash, sources[i][0])  # for the review app's notebook view
        outputs.add(final, final_text, page)
        results.append(final)
        if progress:
            progress(final)
    gradebook.finish_run(run_id)
    outputs.close_results()
    return results, len(reused) - sum(1 for _, student in sources if student in collected.problems)


def _grade_and_render(state: dict, pair: tuple[Path, str]) -> tuple[str, str, str]:
    """One submission, in a worker: (result as recorded, result after manual decisions, report page)."""
    path, student = pair
    assignment, mode = state["assignment"], state["mode"]
    raw = replace(grade_one(path, student, assignment, mode, worker_sandbox(state)),
                  file=state["labels"].get(student, str(path)),
                  participant_id=state.get("participants", {}).get(student, ""))
    # storing and rendering are inside the containment boundary too: should either fail for this
    # result, the submission's error result is stored and rendered instead
    return contained_render(raw, lambda r: _texts(r, state["decisions"].get(student), assignment), path,
                            assignment, mode)


def _texts(raw: SubmissionResult, own: dict | None, assignment: Assignment) -> tuple[str, str, str]:
    """(result as recorded, result after manual decisions, report page) as text."""
    final = apply_decisions(raw, assignment, own) if own else raw
    raw_text = json_text(raw)
    return raw_text, json_text(final) if own else raw_text, render_submission(final, assignment)


def _inputs_fingerprint(assignment: Assignment, collected: Sources, hashes: dict, decisions: dict) -> str:
    """What the outputs depend on: the submissions' bytes, the assignment and grader, the decisions."""
    key = json.dumps([assignment.version, [(s, collected.labels[s], hashes.get(s)) for _, s in collected.pairs],
                      {s: {q: repr(d) for q, d in sorted(by_q.items())} for s, by_q in sorted(decisions.items())},
                      sorted(collected.identities.items()), sorted(collected.problems.items())], default=str)
    return hashlib.sha256(key.encode()).hexdigest()

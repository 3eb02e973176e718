"""What a course run leaves on disk: results.json, the pages, the overview and exports, and the stamp
that lets an unchanged course skip all of it; ``rerender`` rewrites them after a review."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..assignment import Assignment
from ..report import render_index, render_submission, safe_filename, write_exports
from ..results import SimilarPair, SubmissionResult, plain, results_document
from ..score import apply_decisions
from ..store import Gradebook
from .similar import similar_from_json

GRADEBOOK_FILE = "gradebook.sqlite"
RESULTS_FILE = "results.json"
SIMILAR_FILE = "similar.json"
MOODLE_FILE = "moodle.json"  # student -> {"name", "participant", "group"}, from the Moodle downloads graded
STAMP_FILE = ".outputs.json"
RERENDER_LOCK = ".rerender.lock"


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
    warnings: list[str] = field(default_factory=list)  # archive entries skipped that belong to no student

    @property
    def results_file(self) -> Path:
        return self.out_dir / RESULTS_FILE


def gradebook_path(out_dir: Path) -> Path:
    return out_dir / GRADEBOOK_FILE


def json_text(result: SubmissionResult) -> str:
    return json.dumps(result.to_dict(), allow_nan=False, ensure_ascii=False)


class Outputs:
    """Everything a person reads, written from final results: per student as they arrive (report
    page, results.json entry), the rest once all are in (overview, exports, similar pairs)."""

    def __init__(self, out_dir: Path, assignment: Assignment):
        self.out_dir, self.assignment = out_dir, assignment
        self.partial: Path | None = None  # results.json.<random>.partial: each writer its own
        self.handle: TextIO | None = None
        self.count = 0

    def add(self, result: SubmissionResult, document: str, page: str) -> None:
        (self.out_dir / f"{safe_filename(result.student)}.html").write_text(page, encoding="utf-8")
        self._open_results().write((",\n" if self.count else "") + document)
        self.count += 1

    def _open_results(self) -> TextIO:
        if self.handle is None:  # the document up to its submissions list: '{..., "submissions": ['
            descriptor, name = tempfile.mkstemp(prefix=RESULTS_FILE + ".", suffix=".partial", dir=self.out_dir)
            self.partial = Path(name)
            self.handle = os.fdopen(descriptor, "w", encoding="utf-8")
            self.handle.write(json.dumps(results_document(self.assignment.id, []))[:-2] + "\n")
        return self.handle

    def close_results(self) -> None:
        """Finish results.json: it appears complete or not at all (written aside, then renamed)."""
        handle = self._open_results()
        handle.write("\n]}\n")
        handle.close()
        assert self.partial is not None  # set when the file was opened
        self.partial.replace(self.out_dir / RESULTS_FILE)

    def finish(self, run: CourseRun, identities: dict | None, moodle: dict | None = None) -> list[Path]:
        """The overview, exports and similar pairs once all results are in. ``moodle`` (from the
        sources) is kept beside them, so that a later re-render writes the Moodle worksheet again."""
        moodle_file = self.out_dir / MOODLE_FILE
        if moodle is not None:
            if moodle:
                moodle_file.write_text(json.dumps(moodle, ensure_ascii=False, indent=1), encoding="utf-8")
            else:
                moodle_file.unlink(missing_ok=True)
        if identities is None:
            identities = moodle_identities_from(read_moodle(self.out_dir))
        similar_file = self.out_dir / SIMILAR_FILE
        similar_file.write_text(json.dumps([plain(p) for p in run.similar], ensure_ascii=False), encoding="utf-8")
        index = self.out_dir / "index.html"
        index.write_text(render_index(run.results, self.assignment, run.similar), encoding="utf-8")
        pages = [self.out_dir / f"{safe_filename(r.student)}.html" for r in run.results]
        return [run.results_file, similar_file, index, *pages,
                *write_exports(run.results, self.assignment, self.out_dir, identities=identities or None)]


def read_moodle(out_dir: Path) -> dict[str, dict]:
    """What the last ``grade`` learnt from Moodle downloads (empty when it graded none)."""
    try:
        data = json.loads((out_dir / MOODLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def moodle_identities_from(moodle: dict[str, dict]) -> dict[str, tuple[str, str]]:
    return {student: (f"Participant {info['participant']}", str(info.get("name", "")))
            for student, info in moodle.items() if info.get("participant")}


def read_stamp(out_dir: Path) -> dict:
    try:
        stamp = json.loads((out_dir / STAMP_FILE).read_text())
        return stamp if isinstance(stamp, dict) and isinstance(stamp.get("summary"), dict) else {}
    except (OSError, ValueError):
        return {}


def write_stamp(out_dir: Path, stamp: dict) -> None:
    (out_dir / STAMP_FILE).write_text(json.dumps(stamp))


def outputs_present(out_dir: Path, sources: list[tuple[Path, str]]) -> bool:
    names = [RESULTS_FILE, "index.html", "grades.csv"] + [f"{safe_filename(s)}.html" for _, s in sources]
    return all((out_dir / name).is_file() for name in names)


def rerender(assignment: Assignment, out_dir: Path) -> CourseRun:
    """Re-apply manual decisions from the gradebook and rewrite every output (after a review).

    One rerender of a folder at a time, also across processes (two review apps, ``import-scores``):
    the second waits for the first (a lock file in the folder), then renders the newest decisions."""
    with open(out_dir / RERENDER_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _rerender(assignment, out_dir)


def _rerender(assignment: Assignment, out_dir: Path) -> CourseRun:
    with Gradebook(gradebook_path(out_dir)) as gradebook:
        stored = gradebook.latest_results(assignment.id)
        decisions = gradebook.all_decisions(assignment.id)
    results = [apply_decisions(r, assignment, decisions.get(r.student, {})) for r in stored]
    try:
        similar = similar_from_json((out_dir / SIMILAR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        similar = []
    run = CourseRun(assignment.id, out_dir, CourseSummary.of(results, len(results), len(similar)), results, similar)
    outputs = Outputs(out_dir, assignment)
    for result in results:
        outputs.add(result, json_text(result), render_submission(result, assignment))
    outputs.close_results()
    run.files = outputs.finish(run, None)
    (out_dir / STAMP_FILE).unlink(missing_ok=True)  # the next grade renders everything again
    return run

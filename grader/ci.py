"""``grader ci``: the public checks on a student's repository, reported in the CI's own formats.

Under GitHub Actions the points are also reported the way GitHub Classroom reads them (its
``autograding-grading-reporter`` action): a notice titled "Autograding complete" with ``Points X/Y``,
and a notice titled "Autograding report" holding ``{"totalPoints": X, "maxPoints": Y}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .api import check
from .assignment import Assignment
from .report import junit_xml, render_submission, step_summary
from .results import Status, SubmissionResult

REQUIRE_CHOICES = ("bonus", "code", "all", "none")


@dataclass
class CiOutcome:
    result: SubmissionResult
    files: list[Path] = field(default_factory=list)


def run_ci(submission: Path, assignment: Assignment, out_dir: Path, summary_path: str | None = None) -> CiOutcome:
    """Check the submission; write report.html and junit.xml; append the step summary when asked."""
    result = check(submission, assignment)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = CiOutcome(result)
    report = out_dir / "report.html"
    report.write_text(render_submission(result, assignment), encoding="utf-8")
    junit = out_dir / "junit.xml"
    junit.write_text(junit_xml([result], assignment), encoding="utf-8")
    outcome.files += [report, junit]
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as summary:
            summary.write(step_summary([result], assignment))
        outcome.files.append(Path(summary_path))
    return outcome


def passes(result: SubmissionResult, require: str, assignment: Assignment) -> bool:
    """Whether CI is green under ``--require``.

    ``bonus`` (the default) follows the assignment's bonus rule: red when a question that counts for
    the bonus is missing or failing (beyond what an "at least N" rule allows), green when only optional
    questions fail; an answer awaiting review counts as there. ``code``: every code question passes.
    ``all``: every question passes or awaits review. ``none``: always green (report only).
    """
    if require == "none":
        return True
    if result.error:
        return False
    ok = {Status.PASSED, Status.PENDING}
    if require == "bonus":
        counted = [q for q in result.questions.values() if q.bonus]
        good = sum(q.status in ok for q in counted)
        rule = assignment.bonus
        needed = len(counted) if rule.rule == "all" else min(rule.minimum, len(counted))
        return good >= needed
    return all(q.status in ok for q in result.questions.values() if require == "all" or q.kind == "code")


def classroom_notices(result: SubmissionResult) -> list[str]:
    """The two workflow commands GitHub Classroom reads the points from (as its reporter writes them)."""
    total, maximum = _number(result.score), _number(result.max_score)
    report = json.dumps({"totalPoints": total, "maxPoints": maximum}, separators=(",", ":"))
    return [f"::notice title=Autograding complete::Points {total}/{maximum}",
            f"::notice title=Autograding report::{report}"]


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)

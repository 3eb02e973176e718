"""``grader ci``: the public checks on a student's repository, reported in the CI's own formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .api import check
from .assignment import Assignment
from .report import junit_xml, render_submission, step_summary
from .results import SubmissionResult


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

"""A semester in miniature: 100 students, two Moodle rounds, a spreadsheet of decisions, real sandbox."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import pytest
from conftest import skip_or_fail

from grader.assignment import load_assignment
from grader.course import grade_course, gradebook_path, rerender
from grader.sandbox import available_isolation
from grader.store import Gradebook, import_decisions_csv

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = 100

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def _make_course():
    spec = importlib.util.spec_from_file_location("ex01_make_course", ROOT / "reference" / "ex01" / "make_course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def semester(tmp_path_factory):
    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")
    folder = tmp_path_factory.mktemp("semester")
    paths = _make_course().write_course(STUDENTS, folder)
    assignment = load_assignment(ROOT / "reference" / "ex01")
    out = folder / "reports"
    first = grade_course([paths["run1"]], assignment, out, jobs=2)
    with Gradebook(gradebook_path(out)) as gradebook:
        imported = import_decisions_csv(gradebook, assignment, paths["scores"])
    reviewed = rerender(assignment, out)
    second = grade_course([paths["run2"]], assignment, out, jobs=2)
    return {"first": first, "second": second, "reviewed": reviewed, "imported": imported, "out": out,
            "assignment": assignment}


def test_first_round_grades_everyone_and_flags_the_planted_copies(semester):
    first = semester["first"]
    assert first.summary.submissions == STUDENTS and first.summary.unreadable == 0
    statuses = {r.questions["4.2b"].status.value for r in first.results}
    assert {"passed", "failed"} <= statuses  # a real class: most right, some with known mistakes
    answer_pairs = {(p.student_a, p.student_b) for p in first.similar if p.kind.startswith("answer")}
    assert len(answer_pairs) == 2  # exactly the two planted copies, nobody else
    assert all(r.file.endswith("ex01.ipynb") and "run1.zip" in r.file for r in first.results)


def test_decisions_from_the_spreadsheet_award_the_bonus_and_survive_the_second_round(semester):
    assert semester["imported"] == 60
    awarded = {r.student for r in semester["reviewed"].results if r.bonus.awarded}
    assert len(awarded) == 10
    second_awarded = {r.student for r in semester["second"].results if r.bonus.awarded}
    assert second_awarded == awarded
    document = json.loads((semester["out"] / "results.json").read_text())
    by_student = {s["student"]: s for s in document["submissions"]}
    assert all(by_student[s]["questions"]["2.1"]["manual"] for s in awarded)


def test_second_round_regrades_only_the_resubmissions(semester):
    second = semester["second"]
    assert second.summary.submissions == STUDENTS
    assert second.summary.reused == STUDENTS - STUDENTS // 5
    with Gradebook(gradebook_path(semester["out"])) as gradebook:
        runs = gradebook.runs(semester["assignment"].id)
    assert len(runs) == 2
    resubmitted = _resubmitted(semester)
    assert len(resubmitted) == STUDENTS // 5
    for result in second.results:
        if result.student in resubmitted:  # the fixed versions: every code question passes now
            assert all(q.status.value == "passed" for q in result.questions.values() if q.kind == "code")
            assert "run2.zip" in result.file


def _resubmitted(semester) -> set[str]:
    first = {r.student: r.content_hash for r in semester["first"].results}
    return {r.student for r in semester["second"].results if first[r.student] != r.content_hash}


def test_moodle_worksheet_lists_every_student_with_a_grade(semester):
    rows = list(csv.DictReader(io.StringIO((semester["out"] / "moodle_grading_worksheet.csv").read_text())))
    assert len(rows) == STUDENTS
    assert all(row["Identifier"].startswith("Participant ") and row["Grade"] for row in rows)

"""The semester overview: three sheets × 100 students, matched across sheets by name, with the course rule.

Exercise 1's gradebook is written from synthetic results (its grading is tested at length elsewhere);
ex02, a sheet made by `grader new`, is graded for real from a Moodle download in the sandbox, and its
written answers are decided from a spreadsheet; ex03 is not graded yet.
"""

from __future__ import annotations

import csv
import html
import io
import json
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import skip_or_fail

from grader.assignment import load_assignment
from grader.cli import ExitCode, main
from grader.course import rerender
from grader.course.moodle import student_id
from grader.errors import AssignmentError
from grader.results import BonusDecision, QuestionResult, Status, SubmissionResult
from grader.sandbox import available_isolation
from grader.score import finalise
from grader.semester import build_overview, load_course, name_key
from grader.store import Gradebook

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = 100
FIRST = ["Anna", "Ben", "Chiara", "Deniz", "Elif", "Finn", "Greta", "Hannes", "Ines", "Jonas", "Kemal", "Lea",
         "Mara", "Niklas", "Olga", "Paul", "Quirin", "Rosa", "Sven", "Tara", "Umut", "Vera", "Wen", "Jörg"]
LAST = ["Bauer", "Çelik", "Dietrich", "Engel", "Fischer", "García", "Hoffmann", "Ivanova", "Jung", "Krüger",
        "Lehmann", "Müller", "Nowak", "Okafor", "Groß"]
COURSE = '''title = "Multilingual NLP, summer 2024"
sheets = ["ex01", "ex02", "ex03"]
[bonus]
min_sheets = 2
'''

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def name(i: int) -> str:
    return f"{FIRST[i % 24]} {LAST[i // 24 + 5 * (i % 3)]}"


# The class, by rule (so the expected overview is known without reading grader's output):
def ex01_bonus(i: int) -> bool | None | str:
    if i % 10 == 5:
        return "absent"
    return {0: False, 1: None}.get(i % 4, True)


def ex02_code(i: int) -> str:
    return "stub" if i % 7 == 3 else "mistake" if i % 5 == 2 else "correct"


def ex02_bonus(i: int) -> bool | None | str:
    if i % 10 == 9:
        return "absent"
    return ex02_code(i) == "correct" and i % 6 != 0


def expected_status(i: int) -> str:
    won = [ex01_bonus(i) is True, ex02_bonus(i) is True].count(True)
    pending = ex01_bonus(i) is None
    if won >= 2:
        return "qualifies"
    if won == 1:
        return "one sheet short"
    return "open" if pending else "does not qualify"  # ex03, not graded yet, counts as still possible


@pytest.fixture(scope="module")
def semester(tmp_path_factory):
    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")
    folder = tmp_path_factory.mktemp("semester")
    import os
    import shutil

    shutil.copytree(ROOT / "reference" / "ex01", folder / "reference" / "ex01",
                    ignore=shutil.ignore_patterns("__pycache__"))
    previous = Path.cwd()
    os.chdir(folder)
    try:
        assert main(["new", "ex02", "--title", "2. Exercise: Normalised embeddings"]) == ExitCode.OK
        assert main(["new", "ex03", "--title", "3. Exercise: More embeddings"]) == ExitCode.OK
        (folder / "reference" / "course.toml").write_text(COURSE)
        _ex01_gradebook(folder)
        assert main(["release", "ex02", "--out", "release/ex02", "--no-wheel"]) == ExitCode.OK
        _ex02_download(folder)
        assert main(["grade", "ex02.zip", "--assignment", "ex02", "--jobs", "2"]) == ExitCode.OK
        _ex02_scores(folder)
        assert main(["import-scores", "scores.csv", "--out", "reports/ex02"]) == ExitCode.OK
        assert main(["semester"]) == ExitCode.OK
        yield folder
    finally:
        os.chdir(previous)


def _ex01_gradebook(folder: Path) -> None:
    assignment = load_assignment(folder / "reference" / "ex01")
    out = folder / "reports" / "ex01"
    out.mkdir(parents=True)
    with Gradebook(out / "gradebook.sqlite") as gradebook:
        run = gradebook.start_run("ex01", assignment.version, "grade")
        for i in range(STUDENTS):
            bonus = ex01_bonus(i)
            if bonus == "absent":
                continue
            questions = {}
            for question in assignment.questions:
                status = Status.PASSED
                if question.id == "3.1" and bonus is False:
                    status = Status.FAILED
                if question.id == "2.1" and bonus is None:
                    status = Status.PENDING
                score = question.points if status is Status.PASSED else 0.0
                questions[question.id] = QuestionResult(question.id, question.kind, question.title, status, score,
                                                        question.points, question.bonus, "")
            result = SubmissionResult(student=student_id(name(i), str(1000 + i)),
                                      file=f"ex01.zip → {name(i)}/ex01.ipynb", assignment="ex01",
                                      isolation="namespaces", error=None, questions=questions,
                                      bonus=BonusDecision(None, ""), assignment_version=assignment.version)
            gradebook.record(run, finalise(result, assignment))
        gradebook.finish_run(run)
    rerender(assignment, out)  # the sheet's pages and results.json, from its gradebook


def _ex02_download(folder: Path) -> None:
    """Moodle's "download all submissions" of ex02: other participant numbers than in ex01."""
    template = nbformat.read(folder / "release" / "ex02" / "ex02.ipynb", as_version=4)
    bodies = {"correct": "return X / np.linalg.norm(X, axis=-1, keepdims=True)",
              "mistake": "return X / np.linalg.norm(X, axis=0, keepdims=True)", "stub": "raise NotImplementedError"}
    with zipfile.ZipFile(folder / "ex02.zip", "w") as archive:
        for i in range(STUDENTS):
            if ex02_bonus(i) == "absent":
                continue
            notebook = nbformat.from_dict(json.loads(json.dumps(template)))
            for cell in notebook.cells:
                if cell.cell_type == "code":
                    cell.source = cell.source.replace("raise NotImplementedError", bodies[ex02_code(i)])
                elif "answer-1.1" in cell.metadata.get("tags", []):
                    cell.source = (f"### Answer 1.1\n\nUnit length turns the cosine into a dot product, said "
                                   f"student {i}, and removes the length effect of word frequency.")
            archive.writestr(f"{name(i)}_{2000 + 7 * i}_assignsubmission_file_/ex02.ipynb", nbformat.writes(notebook))


def _ex02_scores(folder: Path) -> None:
    with (folder / "scores.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "question", "accepted"])
        for i in range(STUDENTS):
            if ex02_bonus(i) != "absent":
                writer.writerow([student_id(name(i), str(2000 + 7 * i)), "1.1", "no" if i % 6 == 0 else "yes"])


def _csv_rows(folder: Path) -> dict[str, dict[str, str]]:
    text = (folder / "reports" / "semester.csv").read_text()
    return {row["student"]: row for row in csv.DictReader(io.StringIO(text))}


def test_every_student_is_one_row_matched_by_name_across_sheets(semester):
    rows = _csv_rows(semester)
    assert len(rows) == STUDENTS  # not 190: ex01 and ex02 number the same people differently
    for i in range(STUDENTS):
        row = rows[name(i)]
        ex01, ex02 = ex01_bonus(i), ex02_bonus(i)
        assert row["ex01 id"] == ("" if ex01 == "absent" else student_id(name(i), str(1000 + i)))
        assert row["ex02 id"] == ("" if ex02 == "absent" else student_id(name(i), str(2000 + 7 * i)))
        words = {True: "yes", False: "no", None: "pending", "absent": "not submitted"}
        assert (row["ex01 bonus"], row["ex02 bonus"], row["ex03 bonus"]) == (words[ex01], words[ex02], "not graded")


def test_the_course_rule_decides_and_explains(semester):
    rows = _csv_rows(semester)
    for i in range(STUDENTS):
        row = rows[name(i)]
        assert row["course bonus"] == expected_status(i), (i, row)
    statuses = [expected_status(i) for i in range(STUDENTS)]
    assert {"qualifies", "one sheet short", "open", "does not qualify"} <= set(statuses)
    one_short = next(rows[name(i)] for i in range(STUDENTS) if expected_status(i) == "one sheet short")
    assert "the course needs 2: one sheet short" in one_short["reason"] and "ex03 is not graded yet" in one_short["reason"]
    qualified = next(rows[name(i)] for i in range(STUDENTS) if expected_status(i) == "qualifies")
    assert qualified["reason"] == "bonus on 2 sheets (ex01, ex02); the course needs 2"


def test_the_overview_page_links_each_cell_to_the_sheet_report(semester):
    page = (semester / "reports" / "index.html").read_text()
    assert "Multilingual NLP, summer 2024" in page and "<script" not in page
    csp = html.unescape(page.split('http-equiv="Content-Security-Policy" content="')[1].split('"')[0])
    assert "script-src 'none'" in csp and "default-src 'none'" in csp
    assert page.count("not graded yet") >= STUDENTS  # ex03: every student's cell and the sheet's row
    links = [line.split('href="')[1].split('"')[0] for line in page.splitlines() if 'data-state="graded"' in line]
    submitted = sum(ex01_bonus(i) != "absent" for i in range(STUDENTS)) + sum(
        ex02_bonus(i) != "absent" for i in range(STUDENTS))
    assert len(links) == submitted
    assert all((semester / "reports" / link).is_file() for link in links)
    assert "Jörg" in page and "&lt;" not in page.split("<main>")[0]


def test_a_review_decision_changes_the_overview_on_the_next_run(semester):
    i = next(i for i in range(STUDENTS) if expected_status(i) == "qualifies")
    (semester / "late.csv").write_text(f"student,question,accepted\n{student_id(name(i), str(2000 + 7 * i))},1.1,no\n")
    previous = Path.cwd()
    import os

    os.chdir(semester)
    try:
        assert main(["import-scores", "late.csv", "--out", "reports/ex02"]) == ExitCode.OK
        assert main(["semester", "--out", "reports"]) == ExitCode.OK
    finally:
        os.chdir(previous)
    row = _csv_rows(semester)[name(i)]
    assert row["ex02 bonus"] == "no" and row["course bonus"] == "one sheet short"


def test_names_match_without_case_accents_or_spacing():
    assert name_key("Jörg  Groß") == name_key("jorg gross") == name_key("JÖRG GROSS")
    assert name_key("Anna-Lena Müller") == name_key("anna lena muller")
    assert name_key("Anna Müller") != name_key("Anna Miller")


def test_two_students_with_one_name_are_not_merged(tmp_path):
    reference = tmp_path / "reference"
    assert main(["new", "s1", "--reference", str(reference)]) == ExitCode.OK
    assert main(["new", "s2", "--reference", str(reference)]) == ExitCode.OK
    (reference / "course.toml").write_text('title = "T"\nsheets = ["s1", "s2"]\n[bonus]\nmin_sheets = 1\n')
    for sheet, people in (("s1", [("Max Maier", "1"), ("Max Maier", "2")]), ("s2", [("Max Maier", "9")])):
        assignment = load_assignment(reference / sheet)
        (tmp_path / "reports" / sheet).mkdir(parents=True)
        with Gradebook(tmp_path / "reports" / sheet / "gradebook.sqlite") as gradebook:
            run = gradebook.start_run(sheet, assignment.version, "grade")
            for full_name, number in people:
                result = SubmissionResult(student=student_id(full_name, number), file=f"x.zip → {full_name}/a.ipynb",
                                          assignment=sheet, isolation="namespaces", error=None, questions={},
                                          bonus=BonusDecision(True, "ok"))
                gradebook.record(run, result)
    overview = build_overview(load_course(reference / "course.toml"), tmp_path / "reports")
    assert len(overview.rows) == 3 and overview.notes and "shown separately" in overview.notes[0]


def test_course_definition_errors_name_the_field(tmp_path, capsys):
    reference = tmp_path / "reference"
    assert main(["new", "s1", "--reference", str(reference)]) == ExitCode.OK
    course = reference / "course.toml"
    course.write_text('title = "T"\nsheets = ["s1", "s9"]\n')
    assert main(["semester", "--course", str(course), "--out", str(tmp_path / "r")]) == ExitCode.GRADER_ERROR
    assert "no assignment 's9'" in capsys.readouterr().err
    course.write_text('title = "T"\nsheets = ["s1"]\n[bonus]\nmin_sheets = 3\n')
    assert main(["semester", "--course", str(course), "--out", str(tmp_path / "r")]) == ExitCode.GRADER_ERROR
    assert "field 'bonus.min_sheets': expected a whole number from 0 to 1" in capsys.readouterr().err
    assert main(["semester", "--course", str(tmp_path / "nope.toml")]) == ExitCode.GRADER_ERROR
    assert "no course definition" in capsys.readouterr().err


@pytest.mark.browser
def test_the_overview_in_the_browser_runs_nothing_and_links_to_the_reports(semester, chromium, artifacts):
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto((semester / "reports" / "index.html").as_uri())
        assert page.locator("#students tbody tr").count() == STUDENTS
        assert page.locator("#sheets tbody tr[data-sheet='ex03']").inner_text().count("not graded yet") == 1
        page.screenshot(path=str(artifacts / "semester-overview.png"), full_page=False)
        i = next(i for i in range(STUDENTS) if ex02_bonus(i) is True)
        row = page.locator("#students tbody tr", has=page.locator("th", has_text=name(i)))
        row.locator("td[data-state='graded'] a").nth(1).click()
        page.wait_for_load_state()
        assert page.url.endswith(".html") and "/ex02/" in page.url
        assert name(i) in page.content() or student_id(name(i), str(2000 + 7 * i)) in page.content()
    finally:
        page.close()
    assert problems == []


def test_the_repository_course_runs_before_anything_is_graded(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["semester", "--out", str(tmp_path)]) == ExitCode.OK
    assert "0 students, 0 of 1 sheets graded" in capsys.readouterr().out
    page = (tmp_path / "index.html").read_text()
    assert "Multilingual NLP, summer 2024" in page and "not graded yet" in page
    assert (tmp_path / "semester.csv").read_text().startswith("student,ex01 id,ex01 points,ex01 bonus,points,")


def test_a_sheet_graded_elsewhere_is_found_through_the_course_definition(tmp_path):
    reference = tmp_path / "reference"
    assert main(["new", "s1", "--reference", str(reference)]) == ExitCode.OK
    elsewhere = tmp_path / "grading" / "first-sheet"
    (reference / "course.toml").write_text(f'title = "T"\nsheets = ["s1"]\n[reports]\ns1 = "{elsewhere}"\n')
    assignment = load_assignment(reference / "s1")
    elsewhere.mkdir(parents=True)
    with Gradebook(elsewhere / "gradebook.sqlite") as gradebook:
        run = gradebook.start_run("s1", assignment.version, "grade")
        gradebook.record(run, SubmissionResult(student="max", file="max.ipynb", assignment="s1", isolation="namespaces",
                                               error=None, questions={}, bonus=BonusDecision(None, "")))
    overview = build_overview(load_course(reference / "course.toml"), tmp_path / "reports")
    assert [row.cells[0].link for row in overview.rows] == ["../grading/first-sheet/max.html"]
    (reference / "course.toml").write_text('title = "T"\nsheets = ["s1"]\nmin_sheet = 1\n')
    with pytest.raises(AssignmentError, match="field 'min_sheet': unknown key"):
        load_course(reference / "course.toml")

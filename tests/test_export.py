"""Exports parsed back: CSV with the csv module, JUnit XML with ElementTree (and an XSD when xmlschema is
installed), Gradescope JSON against a JSON schema of their results format, the step summary's size."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
import report_fixtures as fx

from grader.report import (
    grades_csv,
    gradescope_results,
    junit_xml,
    moodle_worksheet_csv,
    safe_filename,
    step_summary,
    write_exports,
)
from grader.results import Status


@pytest.fixture(scope="module")
def assignment():
    return fx.assignment()


@pytest.fixture(scope="module")
def results():
    return fx.all_fixtures()


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# --------------------------------------------------------------------------- grades.csv


def test_grades_csv_has_one_row_per_student_with_points_per_question(results, assignment):
    text = grades_csv(results, assignment)
    header = next(csv.reader(io.StringIO(text)))
    assert header == ["student", "file", *[q.id for q in assignment.questions], "total", "max", "bonus", "error"]
    parsed = rows(text)
    assert [r["student"] for r in parsed] == [r.student for r in results]
    ben = next(r for r in parsed if r["student"] == "ben.m")
    assert ben["4.2d"] == "0" and ben["4.2b"] == "1" and ben["total"] == "10" and ben["max"] == "12"
    assert ben["bonus"] == "yes" and ben["error"] == ""
    assert {r["student"]: r["bonus"] for r in parsed}["emil.r"] == "pending"
    assert {r["student"]: r["bonus"] for r in parsed}["dora.p"] == "no"
    finn = next(r for r in parsed if r["student"] == "finn.s")
    assert finn["2.1"] == "" and finn["error"].startswith("not a notebook")


def test_grades_csv_neutralises_formulas(assignment):
    result = replace(fx.unreadable(), student="=HYPERLINK(\"http://x\")", error="+cmd|' /C calc'!A0\nsecond line")
    parsed = rows(grades_csv([result], assignment))[0]
    assert parsed["student"].startswith("'=") and parsed["error"].startswith("'+")


def test_fractional_points(assignment):
    result = fx.perfect()
    questions = dict(result.questions)
    questions["4.2b"] = replace(questions["4.2b"], score=0.5, status=Status.FAILED)
    result = replace(result, questions=questions, score=11.5)
    parsed = rows(grades_csv([result], assignment))[0]
    assert parsed["4.2b"] == "0.5" and parsed["total"] == "11.5"


# --------------------------------------------------------------------------- Moodle


def test_moodle_worksheet_layout(results, assignment):
    identities = {"anna.k": ("Participant 1234", "Anna König"), "dora.p": ("Participant 77", "Dora P")}
    text = moodle_worksheet_csv(results, assignment, identities)
    first_line = text.splitlines()[0]
    assert first_line == ('"Identifier","Full name","Email address","Status","Grade","Maximum grade",'
                          '"Grade can be changed","Last modified (submission)","Last modified (grade)",'
                          '"Feedback comments"')
    parsed = rows(text)
    assert [r["Identifier"] for r in parsed] == ["Participant 1234", "Participant 77"]
    anna, dora = parsed
    assert anna["Full name"] == "Anna König" and anna["Grade"] == "12.00" and anna["Maximum grade"] == "12.00"
    assert anna["Grade can be changed"] == "Yes"
    assert anna["Last modified (grade)"] == "Friday, 14 June 2024, 10:05 AM"
    assert anna["Feedback comments"].startswith("Bonus awarded")
    assert "Not yet: 2.3 is unanswered" in dora["Feedback comments"] and "4.3c" in dora["Feedback comments"]


# --------------------------------------------------------------------------- Gradescope

DATA = Path(__file__).parent / "data"
GRADESCOPE_SCHEMA = json.loads((DATA / "gradescope-results.schema.json").read_text())


@pytest.mark.parametrize("build", [fx.perfect, fx.wrong_matrix, fx.errors_and_timeouts, fx.pending, fx.unreadable,
                                   fx.reduced_isolation], ids=lambda b: b.__name__)
def test_gradescope_results_match_their_format(build, assignment):
    jsonschema = pytest.importorskip("jsonschema")
    result = build()
    document = json.loads(json.dumps(gradescope_results(result, assignment)))  # plain JSON
    jsonschema.validate(document, GRADESCOPE_SCHEMA)
    assert "max_score" not in document  # not a key of Gradescope's specification
    assert document["score"] == result.score
    assert {t["number"].rstrip("h") for t in document["tests"]} == {q.id for q in assignment.questions}
    assert sum(t["score"] for t in document["tests"]) == pytest.approx(result.score, abs=0.01)
    assert sum(t["max_score"] for t in document["tests"]) == pytest.approx(sum(q.points for q in assignment.questions))
    again = gradescope_results(replace(result, duration=result.duration + 1), assignment)
    assert [t["name"] for t in again["tests"]] == [t["name"] for t in document["tests"]]  # stable names


def test_gradescope_statuses_and_output(assignment):
    document = gradescope_results(fx.wrong_matrix(), assignment)
    by_number = {t["number"]: t for t in document["tests"]}
    assert by_number["4.2d"]["status"] == "failed" and by_number["4.1a"]["status"] == "passed"
    assert "without the second residual" in by_number["4.2d"]["output"]
    assert by_number["4.2d"]["name"] == "4.2d encoder_layer"
    assert document["output"].startswith("Bonus awarded")
    pending = {t["number"]: t for t in gradescope_results(fx.pending(), assignment)["tests"]}
    assert "status" not in pending["2.1"]  # awaiting review is neither passed nor failed
    assert "could not be graded" in gradescope_results(fx.unreadable(), assignment)["output"]


# --------------------------------------------------------------------------- JUnit

JENKINS_JUNIT_XSD = DATA / "jenkins-xunit-junit-10.xsd"  # jenkinsci/xunit-plugin's junit-10.xsd, unchanged


def test_junit_xml_counts_and_outcomes(results, assignment):
    root = ET.fromstring(junit_xml(results, assignment).encode())
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [r.student for r in results]
    ben = suites["ben.m"]
    cases = ben.findall("testcase")
    assert len(cases) == len(assignment.questions) == int(ben.get("tests"))
    assert ben.get("failures") == "1" and ben.get("errors") == "0" and ben.get("skipped") == "0"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["4.2d encoder_layer"]  # no score in the name: stable
    assert failed[0].find("failure").get("message") == "0/2 points: Wrong output in 2 of 3 cases."
    carl = suites["carl.o"]
    assert carl.get("errors") == "2"
    assert {e.get("type") for e in carl.iter("error")} == {"error", "timeout"}
    assert suites["emil.r"].get("skipped") == "6"  # written answers awaiting review
    assert suites["dora.p"].get("skipped") == "0" and suites["dora.p"].get("failures") == "2"  # missing = failure
    assert {f.get("type") for f in suites["dora.p"].iter("failure")} == {"missing"}
    finn = suites["finn.s"]
    assert finn.find("testcase/error").get("type") == "submission"
    assert root.get("skipped") is None  # the Jenkins schema has no skipped attribute on <testsuites>
    for key in ("tests", "failures", "errors"):
        assert int(root.get(key)) == sum(int(s.get(key)) for s in suites.values())
    props = {p.get("name"): p.get("value") for p in ben.find("properties")}
    assert {k: v for k, v in props.items() if not k.startswith("points ")} == {
        "score": "10", "max_score": "12", "bonus": "yes", "isolation": "namespaces"}
    assert props["points 4.2d"] == "0/2" and props["points 4.1a"] == "1/1"
    assert ben.get("time") == f"{results[1].duration:.3f}" and "time" not in cases[0].attrib


def test_junit_xml_survives_control_characters(assignment):
    result = fx.errors_and_timeouts()
    questions = dict(result.questions)
    questions["4.2b"] = replace(questions["4.2b"], feedback="bad \x00\x1b[31m bytes ]]> <tag>")
    ET.fromstring(junit_xml([replace(result, questions=questions)], assignment).encode())


def test_junit_xml_validates_against_xsd(results, assignment):
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(JENKINS_JUNIT_XSD))
    schema.validate(junit_xml(results, assignment))
    schema.validate(junit_xml([], assignment))


# --------------------------------------------------------------------------- step summary


def test_step_summary_for_one_submission(assignment):
    text = step_summary([fx.wrong_matrix()], assignment)
    assert "Bonus awarded: all six required answers accepted" in text
    assert "| ❌ | 4.2d encoder_layer | 0 / 2 | Wrong output in 2 of 3 cases. |" in text


def test_step_summary_escapes_table_syntax(assignment):
    result = replace(fx.unreadable(), student="a|b <img src=x>", error="x | y\nz")
    text = step_summary([result], assignment)
    assert "a\\|b &lt;img src=x&gt;" in text and "<img" not in text


def test_step_summary_stays_under_a_mebibyte_for_2000_submissions(assignment):
    base = fx.cohort(10)
    results = [replace(base[i % 10], student=f"student-with-a-rather-long-name-{i:05d}" + "x" * 400)
               for i in range(2000)]
    text = step_summary(results, assignment)
    assert len(text.encode()) < 1_000_000
    assert text.count("\n| student-with") + ("more rows not shown" in text) >= 1
    small = step_summary(results, assignment, limit_bytes=5000)
    assert len(small.encode()) < 5000 and small.rstrip().endswith("The HTML report has everything._")


def test_step_summary_without_truncation_when_small(results, assignment):
    text = step_summary(results, assignment)
    assert "more rows not shown" not in text
    assert all(r.student in text for r in results)


# --------------------------------------------------------------------------- files


def test_write_exports(tmp_path, results, assignment):
    paths = write_exports(results, assignment, tmp_path, identities={"anna.k": ("Participant 1", "Anna K")})
    names = {p.relative_to(tmp_path).as_posix() for p in paths}
    assert {"grades.csv", "junit.xml", "moodle_grading_worksheet.csv"} <= names
    assert {f"gradescope/{safe_filename(r.student)}.json" for r in results} <= names
    for path in paths:
        assert path.is_file()
    assert rows((tmp_path / "grades.csv").read_text(encoding="utf-8"))[0]["student"] == "anna.k"
    json.loads((tmp_path / "gradescope" / "anna.k.json").read_text(encoding="utf-8"))
    without = write_exports(results, assignment, tmp_path / "plain")
    assert not any(p.name.startswith("moodle") for p in without)


def test_gradescope_hidden_cases_are_after_published_and_reveal_nothing(assignment):
    result = fx.hidden_values()
    questions = dict(result.questions)
    leaked = questions["4.2b"].cases[0]
    printed = replace(leaked, output=f"X = {fx.HIDDEN_INPUT_MARKER}", message=f"got {fx.HIDDEN_MARKER}")
    questions["4.2b"] = replace(questions["4.2b"], cases=(printed,))
    document = gradescope_results(replace(result, questions=questions), assignment)
    text = json.dumps(document)
    assert str(fx.HIDDEN_MARKER) not in text and str(fx.HIDDEN_INPUT_MARKER) not in text
    hidden = [t for t in document["tests"] if t["name"] == "4.2b self_attention (hidden cases)"]
    assert hidden and hidden[0]["visibility"] == "after_published"
    assert hidden[0]["output"] == "0 of 1 hidden test cases passed."
    assert document["stdout_visibility"] == "hidden"

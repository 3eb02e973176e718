"""Writing a sheet: `grader new` scaffolds an assignment that validates, `grader validate` names each planted
authoring mistake, and release/grade refuse a broken assignment before they start."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import skip_or_fail

from grader.cli import ExitCode, main
from grader.sandbox import available_isolation
from grader.validate import validate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def course(tmp_path, monkeypatch):
    """An empty course repository with one new assignment, ex02, as the working folder."""
    monkeypatch.chdir(tmp_path)
    assert main(["new", "ex02", "--title", "2. Exercise: Embeddings"]) == ExitCode.OK
    return tmp_path


@pytest.fixture(scope="module")
def namespaces():
    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_new_writes_a_commented_assignment_that_validates(course, capsys):
    folder = course / "reference" / "ex02"
    assert sorted(p.name for p in folder.iterdir()) == ["__init__.py", "assignment.toml", "cases.py", "solution.py",
                                                        "variants.py"]
    definition = (folder / "assignment.toml").read_text()
    assert 'kind = "written"' in definition and 'kind = "code"' in definition and "[[questions.mistakes]]" in definition
    assert definition.count("#") > 20  # comments say what each part is for
    capsys.readouterr()
    assert main(["validate", "--assignment", "ex02"]) == ExitCode.OK
    printed = capsys.readouterr().out
    assert "reference/ex02: ok" in printed
    assert "passes every public case in the sandbox" in printed
    assert "1 variant run on their cases, each can fire" in printed
    assert main(["new", "ex02"]) == ExitCode.GRADER_ERROR  # never overwrites a sheet
    assert "already exists" in capsys.readouterr().err
    assert main(["new", "../evil"]) == ExitCode.GRADER_ERROR
    assert "cannot be an assignment id" in capsys.readouterr().err


PLANTED = {
    "a case that raises": (
        "cases.py", "    return cases\n",
        '    cases.append(Case("2.1", "normalize_rows", (np.zeros((2, 3, 4)) * np.array([1.0, 2.0]),)))\n    return cases\n',
        r"cases\.py: hidden_cases\(\d+\) raised ValueError: operands could not be broadcast .* \(at reference/ex02/cases\.py:\d+\)"),
    "a case on which the reference raises": (
        "cases.py", "    return cases\n",
        '    cases.append(Case("2.1", "normalize_rows", ("words",), id="2.1/text"))\n    return cases\n',
        r"cases\.py, case '2\.1/text' for seed \d+ \(question 2\.1\): the reference normalize_rows raised ValueError: "
        r".*\(at reference/ex02/solution\.py:\d+\)"),
    "a variant with a wrong signature": (
        "variants.py", "def normalize_rows__columns(X):", "def normalize_rows__columns(matrix):",
        r"variants\.py:\d+ \(question 2\.1, mistake 'normalize_rows__columns'\): normalize_rows__columns\(matrix\) "
        r"does not have the signature of normalize_rows\(X\)"),
    "a variant that can never fire": (
        "variants.py", "axis=0, keepdims=True)", "axis=1, keepdims=True)",
        r"variants\.py:\d+ \(question 2\.1, mistake 'normalize_rows__columns'\): never differs from the reference "
        r"normalize_rows by more than the tolerance .* so its hint can never appear"),
    "a template function missing": (
        "solution.py", "def normalize_rows(X):", "normalize_rows = None\n\n\ndef _normalize(X):",
        r"solution\.py:\d+ \(normalize_rows\): the template does not define normalize_rows: its stub is written from "
        r"the reference's source, which defines '_normalize'"),
}


@pytest.mark.parametrize("mistake", sorted(PLANTED))
def test_validate_names_each_planted_mistake(course, capsys, mistake):
    file, old, new, expected = PLANTED[mistake]
    edit(course / "reference" / "ex02" / file, old, new)
    if mistake == "a template function missing":
        edit(course / "reference" / "ex02" / "solution.py", "    return X / np.linalg.norm(X, axis=-1, keepdims=True)\n",
             "    return X / np.linalg.norm(X, axis=-1, keepdims=True)\n\n\nnormalize_rows = _normalize\n")
    capsys.readouterr()
    assert main(["validate", "--assignment", "ex02", "--fast"]) == ExitCode.GRADER_ERROR
    printed = capsys.readouterr().out
    errors = [line for line in printed.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, printed
    assert re.search(expected, errors[0]), errors[0]
    assert "reference/ex02: 1 error" in printed


def test_a_variant_shadowed_by_an_earlier_one_is_named(course, capsys):
    folder = course / "reference" / "ex02"
    (folder / "variants.py").write_text((folder / "variants.py").read_text() + (
        "\n\ndef normalize_rows__columns_again(X):\n    return X / np.sqrt((X * X).sum(axis=0, keepdims=True))\n"))
    edit(folder / "assignment.toml", "# An accepted alternative", '[[questions.mistakes]]\nname = "again"\n'
         'function = "normalize_rows"\nimplementation = "variants:normalize_rows__columns_again"\nhint = "twice"\n\n'
         "# An accepted alternative")
    report = validate(folder, full=False)
    assert [p.message for p in report.errors] == [
        "wherever it differs from the reference, 'normalize_rows__columns' (tried before it) gives the same output, "
        "so its hint can never appear: add a case that tells them apart"]
    assert "mistake 'again'" in report.errors[0].where


def test_definition_errors_name_the_field(course, capsys):
    edit(course / "reference" / "ex02" / "assignment.toml", "points = 2", 'points = "two"')
    assert main(["validate", "--assignment", "ex02"]) == ExitCode.GRADER_ERROR
    assert "assignment.toml: field 'questions[1].points': expected a number" in capsys.readouterr().out


def test_release_and_grade_refuse_a_broken_assignment_before_starting(course, capsys):
    edit(course / "reference" / "ex02" / "variants.py", "def normalize_rows__columns(X):",
         "def normalize_rows__columns(X, axis):")
    (course / "submissions").mkdir()
    shutil.copy(ROOT / "submissions" / "alice.ipynb", course / "submissions" / "alice.ipynb")
    assert main(["grade", "submissions", "--assignment", "ex02", "--out", "out"]) == ExitCode.GRADER_ERROR
    error = capsys.readouterr().err
    assert "nothing was graded or written" in error and "normalize_rows__columns(X, axis)" in error
    assert "Traceback" not in error
    assert not (course / "out").exists()
    assert main(["release", "--assignment", "ex02", "--out", "bundle", "--no-wheel"]) == ExitCode.GRADER_ERROR
    assert "does not have the signature" in capsys.readouterr().err
    assert not (course / "bundle").exists()


def test_exercise_1_validates(monkeypatch, namespaces):
    monkeypatch.chdir(ROOT)
    report = validate(ROOT / "reference" / "ex01")
    assert report.ok, [str(p) for p in report.problems]
    assert any("47 variants run on their cases" in c or "variants run on their cases" in c for c in report.checked)
    assert any("in the sandbox" in c for c in report.checked)


def _fill(template: Path, target: Path, body: str, answer: str | None) -> None:
    notebook = nbformat.read(template, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = cell.source.replace("raise NotImplementedError", body)
        if answer and "answer-1.1" in cell.get("metadata", {}).get("tags", []):
            cell.source = f"### Answer 1.1\n\n{answer}"
    nbformat.write(notebook, target)


def test_new_validate_release_grade_on_a_fresh_assignment(course, capsys, namespaces):
    assert main(["validate"]) == ExitCode.OK
    assert main(["release", "ex02", "--out", "bundle", "--no-wheel"]) == ExitCode.OK
    template = course / "bundle" / "ex02.ipynb"
    bundle = json.loads((course / "bundle" / "assignment.json").read_text())
    assert bundle["id"] == "ex02" and {c["id"] for c in bundle["cases"]} == {"2.1/small", "2.1/square"}
    submissions = course / "submissions" / "ex02"
    submissions.mkdir(parents=True)
    answer = "Normalising makes the cosine similarity a plain dot product and removes length effects of frequency."
    _fill(template, submissions / "anna.ipynb", "return X / np.linalg.norm(X, axis=-1, keepdims=True)", answer)
    _fill(template, submissions / "ben.ipynb", "return X / np.linalg.norm(X, axis=0, keepdims=True)", None)
    shutil.copy(template, submissions / "cleo.ipynb")
    capsys.readouterr()
    assert main(["grade", "--jobs", "2"]) == ExitCode.OK  # the only clue: the notebooks' metadata says ex02
    out = capsys.readouterr()
    assert "graded 3 submissions" in out.out and "for ex02" in out.out and "warning" not in out.err
    document = json.loads((course / "reports" / "ex02" / "results.json").read_text())
    by_student = {s["student"]: s for s in document["submissions"]}
    assert by_student["anna"]["questions"]["2.1"]["status"] == "passed"
    assert by_student["anna"]["questions"]["1.1"]["status"] == "pending"
    assert "Your columns have length 1" in by_student["ben"]["questions"]["2.1"]["feedback"]
    assert by_student["cleo"]["questions"]["2.1"]["status"] == "missing"  # not attempted yet (issue 10)
    assert "NotImplementedError" in by_student["cleo"]["questions"]["2.1"]["feedback"]


def test_auto_accepted_written_answers_need_rubric_concepts(course):
    definition = course / "reference" / "ex02" / "assignment.toml"
    edit(definition, 'written = "review"', 'written = "auto"\nauto_min_concepts = 3')
    report = validate(course / "reference" / "ex02", full=False)
    assert len(report.errors) == 1 and "question 1.1" in report.errors[0].where
    assert "must name 3 rubric concept(s), but the question has 2" in report.errors[0].message

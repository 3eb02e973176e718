"""The commands, driven through ``grader.cli.main`` (and once as a real process), on real files."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import see_current_packages, skip_or_fail

from grader.cli import ExitCode, main
from grader.sandbox import available_isolation

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "submissions"


@pytest.fixture(autouse=True)
def in_repository(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def namespaces():
    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")


def course(tmp_path: Path, names=("alice.ipynb", "bob.py", "carla.ipynb", "dmitri.ipynb")) -> Path:
    folder = tmp_path / "course"
    folder.mkdir()
    for name in names:
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


def test_grade_writes_everything_and_regrades_incrementally(tmp_path, namespaces, capsys):
    folder, out = course(tmp_path), tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out), "--jobs", "2"]) == ExitCode.OK
    printed = capsys.readouterr().out
    assert "graded 4 submissions (0 unchanged, reused)" in printed
    for name in ("index.html", "alice.html", "dmitri.html", "results.json", "grades.csv", "junit.xml",
                 "gradebook.sqlite", "gradescope/bob.json"):
        assert (out / name).is_file(), name
    document = json.loads((out / "results.json").read_text())
    by_student = {s["student"]: s for s in document["submissions"]}
    assert by_student["alice"]["questions"]["4.2d"]["status"] == "passed"
    assert by_student["carla"]["questions"]["4.2b"]["status"] == "failed"
    assert by_student["dmitri"]["bonus"]["awarded"] is False
    assert main(["grade", str(folder), "--out", str(out)]) == ExitCode.OK
    assert "(4 unchanged, reused)" in capsys.readouterr().out
    (folder / "alice.ipynb").write_text((folder / "alice.ipynb").read_text().replace("X @ W", "X @ W + 0"))
    assert main(["grade", str(folder), "--out", str(out)]) == ExitCode.OK
    assert "(3 unchanged, reused)" in capsys.readouterr().out


def test_manual_scores_survive_regrades_and_decide_the_bonus(tmp_path, namespaces, capsys):
    folder, out = course(tmp_path, names=("alice.ipynb",)), tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out)]) == ExitCode.OK
    scores = tmp_path / "scores.csv"
    with scores.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "question", "accepted", "comment"])
        for question in ("2.1", "2.2", "2.3", "3.1", "3.2", "3.3"):
            writer.writerow(["alice", question, "yes", "good"])
    assert main(["import-scores", str(scores), "--out", str(out)]) == ExitCode.OK
    alice = _student(out, "alice")
    assert alice["bonus"]["awarded"] is True and alice["questions"]["2.1"]["manual"] is True
    assert "Bonus awarded" in (out / "alice.html").read_text()
    assert main(["grade", str(folder), "--out", str(out), "--force"]) == ExitCode.OK
    assert _student(out, "alice")["bonus"]["awarded"] is True


def _student(out: Path, student: str) -> dict:
    document = json.loads((out / "results.json").read_text())
    return next(s for s in document["submissions"] if s["student"] == student)


def test_moodle_download_is_graded_with_names_and_worksheet(tmp_path, namespaces, capsys):
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(EXAMPLES / "alice.ipynb", "Alice Example_1001_assignsubmission_file_/ex01.ipynb")
        z.write(EXAMPLES / "bob.py", "Bob Beispiel_1002_assignsubmission_file_/solution.py")
    out = tmp_path / "out"
    assert main(["grade", str(archive), "--out", str(out)]) == ExitCode.OK
    worksheet = (out / "moodle_grading_worksheet.csv").read_text()
    assert "Participant 1001" in worksheet and "Bob Beispiel" in worksheet


def test_unreadable_files_cost_only_themselves(tmp_path, namespaces, capsys):
    folder = course(tmp_path, names=("alice.ipynb",))
    (folder / "broken.ipynb").write_text('{"cells": [')
    (folder / "empty.py").write_text("")
    out = tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out)]) == ExitCode.OK
    assert "unreadable 2" in capsys.readouterr().out
    assert "not JSON" in _student(out, "broken")["error"]
    assert _student(out, "alice")["questions"]["4.1a"]["status"] == "passed"


def test_grade_refuses_reduced_isolation_unless_asked(tmp_path, monkeypatch, capsys):
    import grader.api

    monkeypatch.setattr(grader.api, "available_isolation", lambda: "process")
    folder, out = course(tmp_path, names=("bob.py",)), tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out)]) == ExitCode.GRADER_ERROR
    assert "--allow-reduced-isolation" in capsys.readouterr().err
    assert main(["grade", str(folder), "--out", str(out), "--allow-reduced-isolation"]) == ExitCode.OK


def test_check_exit_codes_and_html(tmp_path, capsys):
    assert main(["check", str(EXAMPLES / "alice.ipynb")]) == ExitCode.OK
    assert main(["check", str(EXAMPLES / "carla.ipynb"), "--html", str(tmp_path / "c.html")]) == ExitCode.CHECKS_FAILED
    printed = capsys.readouterr().out
    assert "self_attention: wrong result" in printed and "unscaled" in printed
    assert "Self-attention" in (tmp_path / "c.html").read_text()


def test_bad_assignment_is_a_clear_error(tmp_path, capsys, monkeypatch):
    reference = tmp_path / "reference" / "broken"
    shutil.copytree(ROOT / "reference" / "ex01", reference)
    toml = reference / "assignment.toml"
    toml.write_text(toml.read_text().replace('points = 1\n', 'points = "one"\n', 1))
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(EXAMPLES / "alice.ipynb")]) == ExitCode.GRADER_ERROR
    error = capsys.readouterr().err
    assert "assignment.toml" in error and "points" in error and "expected a number" in error


def test_usage_error_exit_code():
    with pytest.raises(SystemExit) as exit_info:
        main(["grade", "--jobs", "many"])
    assert exit_info.value.code == ExitCode.USAGE


@pytest.mark.slow
def test_released_bundle_runs_its_own_workflow_steps(tmp_path):
    """Release, fill in the notebook, then run the workflow's install and check steps as CI would."""
    bundle = tmp_path / "student-repo"
    subprocess.run([sys.executable, "-m", "grader", "release", "--out", str(bundle)], cwd=ROOT, check=True,
                   capture_output=True)
    shutil.copy(EXAMPLES / "alice.ipynb", bundle / "ex01.ipynb")
    workflow = yaml.safe_load((bundle / ".github" / "workflows" / "grader.yml").read_text())
    steps = {step.get("name", ""): step for step in workflow["jobs"]["run-autograding-tests"]["steps"]}
    assert "bubblewrap" in steps["Install the sandbox (bubblewrap)"]["run"]
    upload = steps["Upload the report"]  # the artifact, uploaded whatever the check said
    assert upload["if"] == "always()" and upload["with"]["path"] == "grader-report/"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    see_current_packages(venv)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "PIP_NO_INDEX": "1", "GITHUB_ACTIONS": "true"}
    install = steps["Install grader"]["run"]
    assert install.startswith("python -m pip install .grader/") and "||" not in install  # no fallback to the index
    install = install.replace("pip install .grader/", "pip install --no-deps --force-reinstall .grader/")
    subprocess.run(["bash", "-e", "-c", install], cwd=bundle, env=env, check=True, capture_output=True)
    done = subprocess.run(["bash", "-e", "-c", steps["Check the submission"]["run"]], cwd=bundle, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::notice title=Autograding complete::Points " in done.stdout  # what GitHub Classroom reads
    assert "::notice title=Autograding report::{\"totalPoints\":" in done.stdout
    upload_path = bundle / upload["with"]["path"]
    assert (upload_path / "report.html").is_file() and (upload_path / "junit.xml").is_file()
    assert str(venv) in subprocess.run(["bash", "-c", "command -v grader"], env=env, capture_output=True,
                                       text=True).stdout
    suites = ET.parse(bundle / "grader-report" / "junit.xml").getroot()
    assert suites.iter("testcase") and "ex01" in (tmp_path / "summary.md").read_text()
    broken = nbformat.read(bundle / "ex01.ipynb", as_version=4)
    for cell in broken.cells:
        if cell.cell_type == "code" and "def softmax" in cell.source:
            cell.source = "def softmax(x):\n    return x\n"
    nbformat.write(broken, bundle / "ex01.ipynb")
    optional = subprocess.run(["bash", "-e", "-c", steps["Check the submission"]["run"]], cwd=bundle, env=env,
                              capture_output=True, text=True)
    assert optional.returncode == 0, optional.stdout  # section 4 does not count for the bonus: still green
    for cell in broken.cells:  # a bonus answer missing: red
        if cell.cell_type == "markdown" and cell.source.startswith("### Answer 2.1"):
            cell.source = "### Answer 2.1\n"
    nbformat.write(broken, bundle / "ex01.ipynb")
    failed = subprocess.run(["bash", "-e", "-c", steps["Check the submission"]["run"]], cwd=bundle, env=env,
                            capture_output=True, text=True)
    assert failed.returncode == ExitCode.CHECKS_FAILED, failed.stdout
    assert (bundle / "grader-report" / "junit.xml").is_file()  # the artifact's content, red run or not


def test_review_decisions_reach_the_reports(tmp_path, namespaces, capsys):
    """grader review's glue: a decision is saved at once, and the reports follow a moment later."""
    import http.client
    import time

    from grader.assignment import load_assignment
    from grader.course import start_review

    folder, out = course(tmp_path, names=("alice.ipynb",)), tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out)]) == ExitCode.OK
    server = start_review(load_assignment(ROOT / "reference" / "ex01"), out, port=0).start()
    try:
        body = json.dumps({"question": "2.1", "students": ["alice"], "action": "reject"}).encode()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", "/api/decision", body=body, headers={
            "Host": f"127.0.0.1:{server.port}", "Content-Type": "application/json",
            "Authorization": f"token {server.app.token}"})
        assert connection.getresponse().status == 200
        # the report links to the notebook as handed in; the app renders it (grading kept the notebook)
        assert 'href="notebooks/alice.html"' in (out / "alice.html").read_text()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        connection.request("GET", "/reports/notebooks/alice.html", headers={
            "Host": f"127.0.0.1:{server.port}", "Authorization": f"token {server.app.token}"})
        response = connection.getresponse()
        assert response.status == 200 and "script-src 'none'" in response.getheader("Content-Security-Policy")
        assert "Answer 2.1" in response.read().decode()
        deadline = time.monotonic() + 10
        while "Reviewed: not accepted" not in (out / "alice.html").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.shutdown()
    assert "Reviewed: not accepted" in (out / "alice.html").read_text()
    alice = _student(out, "alice")
    assert alice["questions"]["2.1"]["status"] == "failed" and alice["bonus"]["awarded"] is False
    assert main(["grade", str(folder), "--out", str(out)]) == ExitCode.OK  # the decision survives a regrade
    assert _student(out, "alice")["questions"]["2.1"]["status"] == "failed"


def test_command_line_mistakes_are_clear_errors(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "typo"), "--out", str(tmp_path / "out")]) == ExitCode.GRADER_ERROR
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["release", "nope", "--out", str(tmp_path / "b")]) == ExitCode.GRADER_ERROR
    assert "no assignment 'nope'" in capsys.readouterr().err
    assert main(["review", "--out", str(tmp_path / "empty")]) == ExitCode.GRADER_ERROR
    assert "grade the course first" in capsys.readouterr().err


# --------------------------------------------------------------------------- several sheets side by side


@pytest.fixture
def two_sheets(tmp_path, monkeypatch):
    """A course repository with Exercise 1 and a new ex02 under reference/, and Exercise 1's examples."""
    shutil.copytree(ROOT / "reference" / "ex01", tmp_path / "reference" / "ex01",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(EXAMPLES, tmp_path / "submissions")
    monkeypatch.chdir(tmp_path)
    assert main(["new", "ex02"]) == ExitCode.OK
    return tmp_path


def test_two_sheets_bare_commands_infer_the_assignment_or_ask(two_sheets, namespaces, capsys):
    capsys.readouterr()
    # the examples' notebooks carry release's metadata: a bare `grade` knows they are ex01's
    assert main(["grade", "--jobs", "2"]) == ExitCode.OK
    assert "for ex01" in capsys.readouterr().out
    assert json.loads((two_sheets / "reports" / "ex01" / "results.json").read_text())["assignment"] == "ex01"
    # --assignment ex02 without paths must not grade ex01's examples silently
    assert main(["grade", "--assignment", "ex02"]) == ExitCode.GRADER_ERROR
    error = capsys.readouterr().err
    assert "are for ex01" in error and "not ex02" in error and "submissions/ex02/" in error
    assert not (two_sheets / "reports" / "ex02").exists()
    # named explicitly, they are graded, with a warning before and after
    assert main(["grade", "submissions", "--assignment", "ex02", "--jobs", "2"]) == ExitCode.OK
    error = capsys.readouterr().err
    assert "are for ex01" in error
    assert "6 of 6 submissions contain none of ex02's functions (normalize_rows) or answers" in error
    # the reports folder being written tells review and import-scores which sheet it is
    scores = two_sheets / "scores.csv"
    scores.write_text("student,question,accepted\nalice,2.1,yes\n")
    assert main(["import-scores", str(scores), "--out", "reports/ex01"]) == ExitCode.OK
    assert "imported 1 decisions" in capsys.readouterr().out
    assert main(["import-scores", str(scores)]) == ExitCode.GRADER_ERROR
    assert "several assignments under reference/ (ex01, ex02)" in capsys.readouterr().err
    # a student's notebook names its sheet: check needs no --assignment either
    assert main(["check", "submissions/alice.ipynb"]) == ExitCode.OK
    assert "alice — ex01" in capsys.readouterr().out


def test_two_sheets_mixed_submissions_ask_for_the_assignment(two_sheets, capsys):
    mixed = two_sheets / "mixed"
    mixed.mkdir()
    shutil.copy(EXAMPLES / "alice.ipynb", mixed / "alice.ipynb")
    notebook = nbformat.read(EXAMPLES / "carla.ipynb", as_version=4)
    notebook.metadata["grader"]["assignment"] = "ex02"
    nbformat.write(notebook, mixed / "carla.ipynb")
    assert main(["grade", "mixed"]) == ExitCode.GRADER_ERROR
    error = capsys.readouterr().err
    assert "different assignments" in error and "says ex01" in error and "says ex02" in error


def test_release_takes_assignment_and_keeps_students_work(two_sheets, capsys):
    assert main(["release", "--out", "bundle", "--no-wheel"]) == ExitCode.GRADER_ERROR
    assert "choose one with --assignment ID" in capsys.readouterr().err
    assert main(["release", "--assignment", "ex02", "--out", "bundle", "--no-wheel"]) == ExitCode.OK
    notebook = two_sheets / "bundle" / "ex02.ipynb"
    assert nbformat.read(notebook, as_version=4).metadata["grader"]["assignment"] == "ex02"
    assert main(["release", "ex02", "--out", "bundle", "--no-wheel"]) == ExitCode.OK  # untouched: replaced
    work = notebook.read_text().replace("raise NotImplementedError", "return X / np.linalg.norm(X, axis=-1)")
    notebook.write_text(work)
    capsys.readouterr()
    assert main(["release", "--assignment", "ex02", "--out", "bundle", "--no-wheel"]) == ExitCode.GRADER_ERROR
    assert "may hold a student's work" in capsys.readouterr().err and notebook.read_text() == work
    # a template of an older version of the sheet, never touched since release wrote it, is replaced
    toml = two_sheets / "reference" / "ex02" / "assignment.toml"
    toml.write_text(toml.read_text().replace("Why normalise?", "Why normalise vectors?"))
    assert main(["release", "--assignment", "ex02", "--out", "bundle", "--no-wheel", "--force"]) == ExitCode.OK
    assert "NotImplementedError" in notebook.read_text()
    toml.write_text(toml.read_text().replace("Why normalise vectors?", "Why normalise embeddings?"))
    assert main(["release", "--assignment", "ex02", "--out", "bundle", "--no-wheel"]) == ExitCode.OK
    assert "Why normalise embeddings?" in notebook.read_text()
    assert main(["release", "ex01", "--assignment", "ex02", "--out", "bundle"]) == ExitCode.GRADER_ERROR


def test_two_sheets_check_finds_the_bundle_next_to_a_notebook_without_metadata(two_sheets, capsys):
    assert main(["release", "--assignment", "ex02", "--out", "bundle", "--no-wheel"]) == ExitCode.OK
    notebook = nbformat.read(two_sheets / "bundle" / "ex02.ipynb", as_version=4)
    del notebook.metadata["grader"]  # a notebook the student started afresh: only the bundle beside it tells
    for cell in notebook.cells:
        cell.source = cell.source.replace("raise NotImplementedError",
                                          "return X / np.linalg.norm(X, axis=-1, keepdims=True)")
    nbformat.write(notebook, two_sheets / "bundle" / "mine.ipynb")
    capsys.readouterr()
    assert main(["check", "bundle/mine.ipynb"]) == ExitCode.CHECKS_FAILED  # the written answer is missing
    printed = capsys.readouterr().out
    assert "mine — ex02" in printed and "2.1  passed" in printed
    shutil.copy(EXAMPLES / "bob.py", two_sheets / "bob.py")  # a module: no metadata, no bundle
    assert main(["check", "bob.py"]) == ExitCode.GRADER_ERROR
    assert "choose one with --assignment ID" in capsys.readouterr().err


def test_two_sheets_the_reports_folder_being_written_names_its_sheet(two_sheets):
    from grader.errors import AssignmentError
    from grader.sheets import infer_assignment

    out = two_sheets / "reports" / "ex02"
    out.mkdir(parents=True)
    (out / "results.json").write_text('{"schema_version": 1, "assignment": "ex02", "submissions": [\n{"student": "x"}\n]}\n')
    shutil.copy(EXAMPLES / "bob.py", two_sheets / "bob.py")  # a module: nothing in it names a sheet
    assert infer_assignment(None, submissions=[two_sheets / "bob.py"], out=out).name == "ex02"
    with pytest.raises(AssignmentError, match="several assignments under reference/ .ex01, ex02. and nothing tells"):
        infer_assignment(None, submissions=[two_sheets / "bob.py"], out=two_sheets / "reports" / "new")
    with pytest.raises(AssignmentError, match="different assignments .*results.json says ex02.*says ex01"):
        infer_assignment(None, submissions=[EXAMPLES / "alice.ipynb"], out=out)
    assert infer_assignment("ex01", submissions=[EXAMPLES / "alice.ipynb"], out=out).name == "ex01"  # named wins

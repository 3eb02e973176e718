"""The Gradescope autograder, run the way Gradescope runs it, against a fake /autograder root.

Gradescope unpacks the zip into /autograder/source, runs setup.sh there once, copies run_autograder to
/autograder/, puts the submission into /autograder/submission/ and reads
/autograder/results/results.json. The test builds that layout under tmp_path, runs the zip's own
setup.sh (with the package index off: the dependencies come from this interpreter's site-packages) and
run_autograder, and validates results.json against Gradescope's specification.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import see_current_packages

from grader.assignment import load_assignment
from grader.ci import classroom_notices, passes
from grader.cli import ExitCode, main
from grader.release import source_checkout, wheel_name

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((Path(__file__).parent / "data" / "gradescope-results.schema.json").read_text())


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    if source_checkout() is None:
        pytest.skip("grader is installed, not a source checkout")
    out = tmp_path_factory.mktemp("gs") / "autograder.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        assert main(["gradescope", "--out", str(out)]) == ExitCode.OK
    return out


def test_the_zip_has_what_gradescope_needs_at_its_root(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = archive.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        setup = archive.read("setup.sh").decode()
    assert "setup.sh" in names and "run_autograder" in names
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert f"wheel/{wheel_name()}" in names
    assert "assignment/ex01/assignment.toml" in names and "assignment/ex01/cases.py" in names
    assert not any("__pycache__" in n for n in names)
    assert 'VENV="$ROOT/venv"' in setup and "pip install --no-deps --force-reinstall" in setup
    assert "--index-url" not in setup and "pip install grader" not in setup


def _fake_root(tmp_path: Path, autograder_zip: Path) -> Path:
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        (root / "source" / name).chmod(0o755)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")  # as Gradescope does
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def _leaky_notebook(target: Path) -> None:
    """alice's notebook, with every call of softmax printing its input (a student trying to see hidden cases)."""
    notebook = nbformat.read(ROOT / "submissions" / "alice.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and "def softmax(x):" in cell.source:
            cell.source = cell.source.replace("def softmax(x):\n", "def softmax(x):\n    print('LEAK', repr(x.tolist()))\n", 1)
    nbformat.write(notebook, target)


@pytest.mark.slow
def test_run_autograder_in_a_fake_autograder_root(tmp_path, autograder_zip):
    jsonschema = pytest.importorskip("jsonschema")
    root = _fake_root(tmp_path, autograder_zip)
    venv = root / "venv"  # the image's Python stays untouched: grader goes into /autograder/venv
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    see_current_packages(venv)
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    env.pop("PYTHONPATH", None)
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", env=env,
                           capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "autograder for ex01 installed" in setup.stdout
    assert (venv / "bin" / "grader").exists()
    _leaky_notebook(root / "submission" / "ex01.ipynb")
    (root / "submission" / "old-draft.ipynb").write_text((ROOT / "submissions" / "carla.ipynb").read_text())

    documents, outputs = [], []
    for _ in range(2):
        run = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                             timeout=900)
        assert run.returncode == 0, run.stdout + run.stderr
        outputs.append(run.stdout + run.stderr)
        documents.append(json.loads((root / "results" / "results.json").read_text()))
    document = documents[0]
    jsonschema.validate(document, SCHEMA)
    assert [t["name"] for t in documents[0]["tests"]] == [t["name"] for t in documents[1]["tests"]]  # stable
    assignment = load_assignment(ROOT / "reference" / "ex01")
    assert document["score"] == pytest.approx(sum(q.points for q in assignment.questions if q.kind == "code"))
    hidden = [t for t in document["tests"] if t["name"].endswith("(hidden cases)")]
    assert hidden and all(t["visibility"] == "after_published" for t in hidden)
    assert all(t["visibility"] == "visible" for t in document["tests"] if t not in hidden)
    assert "graded ex01.ipynb, the one named like the assignment's template" in document["output"]
    everything = json.dumps(document) + "".join(outputs)
    assert "LEAK" not in everything  # nothing the student's code printed, for hidden cases or any other
    isolation = document["extra_data"]["isolation"]
    assert f"isolation: {isolation}" in outputs[0]
    if isolation != "namespaces":
        assert "Ran with reduced isolation" in document["output"]

    # a container where bubblewrap cannot run: the strongest isolation left, and it says so
    no_bwrap = tmp_path / "bin-without-bwrap"
    no_bwrap.mkdir()
    for tool in ("bash", "env", "dirname"):
        (no_bwrap / tool).symlink_to(shutil.which(tool))
    degraded = subprocess.run([str(root / "run_autograder")], cwd=root, env={**env, "PATH": str(no_bwrap)},
                              capture_output=True, text=True, timeout=900)
    assert degraded.returncode == 0, degraded.stdout + degraded.stderr
    assert "isolation: process" in degraded.stdout and "resource limits only" in degraded.stdout
    reduced = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(reduced, SCHEMA)
    assert "Ran with reduced isolation: process" in reduced["output"] and reduced["score"] == document["score"]
    assert "LEAK" not in json.dumps(reduced) + degraded.stdout + degraded.stderr


@pytest.mark.slow
def test_an_unusable_submission_still_gives_a_valid_results_json(tmp_path, autograder_zip):
    jsonschema = pytest.importorskip("jsonschema")
    root = _fake_root(tmp_path, autograder_zip)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    see_current_packages(venv)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--force-reinstall", "-q",
                    str(root / "source" / "wheel" / wheel_name())], check=True, env={**os.environ, "PIP_NO_INDEX": "1"})
    (root / "submission" / "notes.txt").write_text("I forgot the notebook")
    run = subprocess.run([str(root / "run_autograder")], cwd=root, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["score"] == 0 and "upload ex01.ipynb" in document["output"]


# --------------------------------------------------------------------------- GitHub Classroom and --require


def test_classroom_notices_as_the_reporter_writes_them():
    import report_fixtures as fx

    result = fx.wrong_matrix()
    assert classroom_notices(result) == [
        f"::notice title=Autograding complete::Points {result.score:g}/{result.max_score:g}",
        f'::notice title=Autograding report::{{"totalPoints":{result.score:g},"maxPoints":{result.max_score:g}}}']


def test_require_bonus_follows_the_bonus_rule():
    import report_fixtures as fx

    from grader.assignment import BonusRule

    assignment = fx.assignment()
    perfect, optional_wrong = fx.perfect(), fx.wrong_matrix()
    bonus_questions = {q.id for q in assignment.questions if q.bonus}
    assert bonus_questions and any(not q.bonus for q in assignment.questions)
    assert passes(perfect, "bonus", assignment)
    assert all(optional_wrong.questions[q].status.value in ("passed", "pending") for q in bonus_questions)
    assert passes(optional_wrong, "bonus", assignment) and not passes(optional_wrong, "code", assignment)
    answers = dict(perfect.questions)
    first = sorted(bonus_questions)[0]
    from dataclasses import replace

    from grader.results import Status

    answers[first] = replace(answers[first], status=Status.MISSING, score=0.0)
    no_answer = replace(perfect, questions=answers)
    assert not passes(no_answer, "bonus", assignment)
    lenient = replace(assignment, bonus=BonusRule(rule="at_least", minimum=len(bonus_questions) - 1))
    assert passes(no_answer, "bonus", lenient)
    assert not passes(fx.unreadable(), "bonus", assignment) and passes(fx.unreadable(), "none", assignment)

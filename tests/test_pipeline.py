"""The whole pipeline on scenario folders: load → real sandbox → compare → score.

Each folder under tests/scenarios/ holds a submission (a static file, or a `twist.py` whose
`# %%`-separated cells are appended to the reference bodies) and `expected.json` with the outcome.
All scenarios are graded in ONE batch, two sandboxes in parallel, as `grader grade` would: the batch
must complete, every status must be right, and nothing outside the sandbox may change.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import skip_or_fail

from grader.api import check, grade_many, grade_submission
from grader.assignment import load_assignment
from grader.results import Status
from grader.sandbox import available_isolation
from grader.submission import answer_variable

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = Path(__file__).parent / "scenarios"
FAST_LIMITS = {"cell_timeout": 2.0, "call_timeout": 1.0, "total_timeout": 90.0, "memory_mb": 512}

pytestmark = pytest.mark.sandbox


def require_namespaces() -> None:
    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")


@pytest.fixture(scope="module")
def assignment():
    loaded = load_assignment(ROOT / "reference" / "ex01")
    return dataclasses.replace(loaded, limits={**loaded.limits, **FAST_LIMITS})


def solution_sources(assignment) -> dict[str, str]:
    return {name: inspect.getsource(getattr(assignment.reference, name)) for name in assignment.functions}


def written_answers(assignment) -> dict[str, str]:
    return {q.id: f"Answer to {q.id}: PEFT keeps the pretrained weights frozen and trains only a small number of "
                  "added parameters, such as adapters, prefixes or low-rank LoRA matrices, for each task."
            for q in assignment.questions if q.kind == "written"}


def twist_cells(text: str) -> list[str]:
    cells, current = [], []
    for line in text.splitlines():
        if line.strip() == "# %%":
            cells.append("\n".join(current))
            current = []
        else:
            current.append(line)
    cells.append("\n".join(current))
    return [c for c in cells if c.strip()]


def notebook(code_cells: list[str], answers: dict[str, str]) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell(source) for source in code_cells]
    for question_id, text in answers.items():
        cell = nbformat.v4.new_markdown_cell(f"### Answer {question_id}\n\n{text}")
        cell.metadata["tags"] = [f"answer-{question_id}"]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def build_scenario(folder: Path, assignment, out: Path, canary: Path) -> Path:
    spec = json.loads(folder.read_text() if folder.is_file() else (folder / "expected.json").read_text())
    static = sorted(folder.glob("submission.*"))
    if static:
        target = out / f"{folder.name}{static[0].suffix}"
        shutil.copy(static[0], target)
        return target
    if spec.get("format") == "template":
        from grader.release import template_notebook

        target = out / f"{folder.name}.ipynb"
        nbformat.write(template_notebook(assignment), target)
        return target
    twist = (folder / "twist.py").read_text() if (folder / "twist.py").exists() else ""
    twist = twist.replace("@ROOT@", str(ROOT)).replace("@CANARY@", str(canary))
    base = ["import numpy as np", *solution_sources(assignment).values()]
    answers = written_answers(assignment) if spec.get("answers") == "good" else {}
    if spec.get("format") == "py":
        target = out / f"{folder.name}.py"
        strings = "".join(f'{answer_variable(q)} = """{text}"""\n' for q, text in answers.items())
        target.write_text("\n\n".join([*base, *twist_cells(twist)]) + "\n\n" + strings)
        return target
    target = out / f"{folder.name}.ipynb"
    nbformat.write(notebook([*base, *twist_cells(twist)], answers), target)
    return target


def expected_of(name: str, canary: Path) -> dict:
    text = (SCENARIOS / name / "expected.json").read_text()
    return json.loads(text.replace("@ROOT@", str(ROOT)).replace("@CANARY@", str(canary)))


def check_expectations(result, expected: dict, assignment) -> list[str]:
    problems = []
    if "error" in expected:
        if not result.error or expected["error"] not in result.error:
            problems.append(f"error {result.error!r} lacks {expected['error']!r}")
        return problems
    if result.error:
        return [f"unexpected submission error {result.error}"]
    wanted = expected.get("questions", {})
    for question in assignment.questions:
        status = wanted.get(question.id, wanted.get("code") if question.kind == "code" else None)
        actual = result.questions[question.id]
        if status and actual.status.value not in ([status] if isinstance(status, str) else status):
            problems.append(f"{question.id}: {actual.status.value} ≠ {status}: {actual.feedback[:300]}")
    for question_id, words in expected.get("messages", {}).items():
        if words not in result.questions[question_id].feedback:
            problems.append(f"{question_id} feedback lacks {words!r}: {result.questions[question_id].feedback[:200]}")
    for question_id, words in expected.get("details", {}).items():
        details = " ".join(c.details for c in result.questions[question_id].cases)
        if words not in details:
            problems.append(f"{question_id} details lack {words!r}")
    twist_statuses = [c.status for c in result.cells][len(assignment.functions) + 1:]
    if "cells" in expected and twist_statuses != expected["cells"]:
        problems.append(f"cells {twist_statuses} ≠ {expected['cells']}: "
                        f"{[c.message[:80] for c in result.cells[len(assignment.functions) + 1:]]}")
    twist_cells_ = result.cells[len(assignment.functions) + 1:]
    for cell, words in zip(twist_cells_, expected.get("cell_messages", [])):
        if words.lower() not in cell.message.lower():
            problems.append(f"cell {cell.index} message {cell.message!r} lacks {words!r}")
    notes = " ".join(n for c in result.cells for n in c.notes)
    problems += [f"notes lack {n!r}" for n in expected.get("notes", []) if n not in notes]
    if "max_output" in expected:
        longest = max(len(c.output) for c in result.cells)
        if longest > expected["max_output"]:
            problems.append(f"captured output of {longest} characters is not capped")
    if "bonus" in expected and result.bonus.awarded is not expected["bonus"]:
        problems.append(f"bonus {result.bonus}")
    problems += [f"{path} exists" for path in expected.get("must_not_exist", []) if Path(path).exists()]
    return problems


def snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    state = {}
    for folder in folders:
        for path in folder.rglob("*") if folder.exists() else ():
            if "__pycache__" not in path.parts:
                stat = path.lstat()
                state[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return state


def test_all_scenarios_in_one_batch(assignment, tmp_path):
    require_namespaces()
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("instructor's file")
    out = tmp_path / "submissions"
    out.mkdir()
    names = sorted(p.name for p in SCENARIOS.iterdir() if (p / "expected.json").exists())
    paths = [build_scenario(SCENARIOS / name, assignment, out, canary) for name in names]
    watched = [ROOT / "reference", ROOT / "submissions", ROOT / "reports", ROOT / "grader", canary]
    before = snapshot(*watched)
    results = list(grade_many(paths, assignment, jobs=2, isolation="namespaces"))
    assert [r.student for r in results] == names  # the batch completed, in order
    failures = {}
    for name, result in zip(names, results):
        assert result.isolation in ("namespaces", "none")
        problems = check_expectations(result, expected_of(name, canary), assignment)
        if problems:
            failures[name] = problems
    assert not failures, json.dumps(failures, indent=1, ensure_ascii=False)
    after = snapshot(*watched)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:10]


def test_each_known_mistake_is_recognised_with_its_hint(assignment, tmp_path):
    """A submission carrying one known mistake gets that mistake's hint on the question that shows it."""
    require_namespaces()
    examples = _make_examples()
    mistakes = [(q, v) for q in assignment.questions for v in q.variants if v.kind == "mistake"]
    paths = []
    for question, variant in mistakes:
        function, source = examples.mistake_source(variant.implementation.__name__)
        cells = ["import numpy as np", *solution_sources(assignment).values(), source]
        target = tmp_path / f"{question.id}-{variant.name}.ipynb"
        nbformat.write(notebook(cells, {}), target)
        paths.append(target)
    results = list(grade_many(paths, assignment, jobs=2, isolation="namespaces"))
    missed = []
    for result, (question, variant) in zip(results, mistakes):
        cases = result.questions[question.id].cases
        if not any(c.matched == variant.name and c.hint == variant.message for c in cases):
            missed.append(f"{question.id} {variant.name}: {[(c.status.value, c.matched, c.message[:60]) for c in cases]}")
    assert not missed, "\n".join(missed)


def _make_examples():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ex01_make_examples", ROOT / "reference" / "ex01" / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sheet_hard_coded_results_fail_hidden_cases(assignment, tmp_path):
    """Hard-coding the sheet's printed numbers passes the public sheet case and fails the hidden ones."""
    require_namespaces()
    printed = assignment.prepared_cases(include_hidden=False)
    sheet = next(p for p in printed if p.case.function == "encoder_layer")
    table = repr(np.asarray(sheet.expected).tolist())
    cells = ["import numpy as np", *solution_sources(assignment).values(),
             f"def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):\n    return np.array({table})\n"]
    path = tmp_path / "hardcoded.ipynb"
    nbformat.write(notebook(cells, {}), path)
    result = grade_submission(path, assignment, mode="grade", isolation="namespaces")
    question = result.questions[sheet.case.question]
    encoder_cases = [c for c in question.cases if c.function == "encoder_layer"]
    assert any(not c.public and c.status is not Status.PASSED for c in encoder_cases)
    # passing only the published case earns nothing (issue 10 §6), and the instructor sees why
    assert question.score == 0 and "published cases" in (question.flag or "")
    assert check(path, assignment).questions[sheet.case.question].status is Status.PASSED


def test_reduced_isolation_still_grades_and_says_so(assignment, tmp_path):
    path = build_scenario(SCENARIOS / "correct_module", assignment, tmp_path, tmp_path)
    result = grade_submission(path, assignment, mode="check", isolation="process")
    assert result.isolation == "process"
    assert all(q.status is Status.PASSED for q in result.questions.values() if q.kind == "code")

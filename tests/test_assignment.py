"""Exercise 1's definition loads, broken definitions fail with the field named, cases are reproducible."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from grader.assignment import load_assignment
from grader.bundle import bundle_document, load_bundle
from grader.errors import AssignmentError

FOLDER = Path(__file__).resolve().parents[1] / "reference" / "ex01"
QUESTION_IDS = ["2.1", "2.2", "2.3", "3.1", "3.2", "3.3", "4.1a", "4.1b", "4.2a", "4.2b", "4.2c", "4.2d", "4.2e",
                "4.3a", "4.3b", "4.3c", "4.3d"]
API = ["project", "projection_loss", "softmax", "self_attention", "feed_forward", "encoder_layer", "decoder_layer",
       "prefix_self_attention", "bottleneck_adapter", "lora_projection", "transformer_layer"]


@pytest.fixture(scope="module")
def assignment():
    return load_assignment(FOLDER)


def test_loads_with_the_contract_questions(assignment):
    assert assignment.id == "ex01"
    assert assignment.seed == 20240614
    assert [q.id for q in assignment.questions] == QUESTION_IDS
    assert sorted(assignment.functions) == sorted(API)
    assert assignment.bonus.rule == "all" and assignment.bonus.written == "review"
    assert assignment.limits["call_timeout"] == 5 and assignment.limits["cell_timeout"] == 10
    for question in assignment.questions:
        written = question.kind == "written"
        assert question.bonus == (written and question.id[0] in "23")
        assert question.points == 1
        assert question.prompt.strip() and question.title
        if written:
            assert question.rubric and all(c.synonyms for c in question.rubric)
            assert question.min_words >= 25
        else:
            assert question.tolerance.rtol == 1e-5 and question.tolerance.atol == 1e-8
    assert "Glavaš" in assignment.intro and "LoRA" in assignment.intro
    assert [s.id for s in assignment.sections] == ["2", "3", "4"]


def test_cases_cover_every_code_function_publicly_and_hidden(assignment):
    public = assignment.prepared_cases(include_hidden=False)
    everything = assignment.prepared_cases(include_hidden=True)
    assert 60 <= len(everything) <= 90
    for question in assignment.questions:
        for function in question.functions:
            mine = [p for p in everything if p.case.question == question.id and p.case.function == function]
            assert any(p.case.public for p in mine), (question.id, function)
            assert any(not p.case.public for p in mine), (question.id, function)
    assert all(p.case.description for p in everything)
    sheet_ids = {p.case.id for p in public if "sheet" in p.case.id}
    assert {"4.1a/sheet", "4.1b/sheet", "4.2b/sheet", "4.2b/sheet-causal", "4.2c/sheet", "4.2d/sheet",
            "4.2e/sheet"} <= sheet_ids


def test_hidden_cases_are_reproducible_from_the_seed(assignment):
    make = assignment.cases_module.hidden_cases
    first, again, other = make(assignment.seed), make(assignment.seed), make(assignment.seed + 1)
    assert [c.id for c in first] == [c.id for c in again] == [c.id for c in other]
    for a, b in zip(first, again):
        for x, y in zip(_arrays(a), _arrays(b)):
            np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for a, b in zip(first, other) for x, y in zip(_arrays(a), _arrays(b)))


def _arrays(case):
    def walk(value):
        if isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, (tuple, list)):
            for item in value:
                yield from walk(item)
        elif isinstance(value, dict):
            for key in sorted(value):
                yield from walk(value[key])
    return list(walk((case.args, case.kwargs)))


def test_hidden_cases_have_the_contract_shapes(assignment):
    hidden = [p.case for p in assignment.prepared_cases(include_hidden=True) if not p.case.public]
    assert all(a.dtype == np.float64 for c in hidden for a in _arrays(c))
    attention = [c for c in hidden if c.function in ("self_attention", "encoder_layer", "decoder_layer")]
    assert any(c.args[1].shape[1] != c.args[0].shape[1] for c in attention)  # d != d_k
    assert {c.args[0].shape[0] for c in attention} >= {1, 8}
    assert any(np.abs(c.args[0]).min() > 900 for c in hidden if c.function == "softmax")
    loras = [c for c in hidden if c.function == "lora_projection"]
    assert all(c.args[2].shape[1] < c.args[1].shape[0] and c.args[4] != c.args[2].shape[1] for c in loras)
    assert {c.kwargs.get("causal", False) for c in attention} == {True, False}


def test_hard_coded_sheet_results_pass_public_and_fail_hidden(assignment):
    sheet = assignment.cases_module
    cases = [p for p in assignment.prepared_cases(include_hidden=True) if p.case.function == "encoder_layer"]
    for prepared in cases:
        passes = np.shape(prepared.expected) == sheet.SHEET_ENCODER_OUT.shape and np.allclose(
            sheet.SHEET_ENCODER_OUT, prepared.expected, atol=2e-3)
        assert passes == prepared.case.public


def _broken_copy(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    folder = tmp_path / "ex01"
    shutil.copytree(FOLDER, folder, ignore=shutil.ignore_patterns("__pycache__"))
    definition = folder / "assignment.toml"
    text = definition.read_text(encoding="utf-8")
    assert old in text
    definition.write_text(text.replace(old, new, count), encoding="utf-8")
    return folder


@pytest.mark.parametrize("old, new, field", [
    ('kind = "code"', 'kind = "coding"', "kind"),
    ("points = 1\n", "", "points"),
    ('functions = ["project"]', 'functions = ["projekt"]', "functions"),
    ("tolerance = { rtol = 1e-5, atol = 1e-8 }", 'tolerance = { rtol = -1.0, atol = 1e-8 }', "tolerance.rtol"),
    ('name = "project__transposed_weight"', 'name = "project__transposed_weight"\nimplementation = "variants:no_such"',
     "implementation"),
    ("call_timeout = 5\n", "call_timeout = 5\ncpu_speed = 3\n", "limits.cpu_speed"),
    ('rule = "all"', 'rule = "most"', "bonus.rule"),
    ('section = "2"', 'section = 2', "section"),
], ids=["wrong-kind", "missing-points", "unknown-function", "bad-tolerance", "unknown-implementation",
        "unknown-limit", "bad-bonus-rule", "section-not-text"])
def test_broken_definition_names_the_field(tmp_path, old, new, field):
    folder = _broken_copy(tmp_path, old, new)
    with pytest.raises(AssignmentError) as raised:
        load_assignment(folder)
    assert raised.value.field is not None and raised.value.field.endswith(field), raised.value.field
    assert field.split(".")[-1] in str(raised.value)
    load_assignment(FOLDER)  # the real one still loads afterwards


def test_copy_with_changed_solution_uses_the_copy(tmp_path):
    folder = _broken_copy(tmp_path, "id = ", "id = ")
    solution = folder / "solution.py"
    solution.write_text(solution.read_text().replace("return X @ W\n", "return 2 * (X @ W)\n", 1))
    changed = load_assignment(folder)
    original = load_assignment(FOLDER)
    X = np.eye(2)
    assert np.array_equal(changed.reference.project(X, X), 2 * X)
    assert np.array_equal(original.reference.project(X, X), X)


def test_bundle_round_trips_through_json(assignment, tmp_path):
    path = tmp_path / "assignment.json"
    path.write_text(json.dumps(bundle_document(assignment)), encoding="utf-8")
    bundle = load_bundle(path)
    assert not bundle.has_reference
    assert [q.id for q in bundle.questions] == QUESTION_IDS
    assert bundle.questions == tuple(
        q.__class__(**{**vars(q), "variants": tuple(v.__class__(v.name, v.kind, v.function, v.message, question=q.id)
                                                    for v in q.variants)})
        for q in assignment.questions)
    original = assignment.prepared_cases(include_hidden=False)
    loaded = bundle.prepared_cases(include_hidden=False)
    assert [p.case.id for p in loaded] == [p.case.id for p in original]
    for a, b in zip(original, loaded):
        np.testing.assert_array_equal(np.asarray(b.expected), np.asarray(a.expected))
        assert b.arg_names == a.arg_names
        assert [v.name for v, _ in b.variants] == [v.name for v, _ in a.variants]
        for (_, x), (_, y) in zip(a.variants, b.variants):
            np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
        for x, y in zip(_arrays(a.case), _arrays(b.case)):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(AssignmentError):
        bundle.prepared_cases(include_hidden=True)

"""Each mistake charged once, where it is made, and named right (issue 10 §3-§6), through the real sandbox.

The student code is tests/students/independent.py, written from the contract alone, with one mistake
planted at a time; submissions are real notebooks built with nbformat and graded by the real sandbox.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import io
import json
from pathlib import Path

import nbformat
import pytest
from conftest import skip_or_fail

from grader.api import grade_many
from grader.assignment import Grading, load_assignment
from grader.bundle import bundle_document
from grader.cli import main
from grader.results import Status
from grader.sandbox import available_isolation

ROOT = Path(__file__).resolve().parents[1]
STUDENT = (Path(__file__).parent / "students" / "independent.py").read_text(encoding="utf-8")
FAST_LIMITS = {"cell_timeout": 5.0, "call_timeout": 3.0, "total_timeout": 120.0, "memory_mb": 512}
CODE = ("4.1a", "4.1b", "4.2a", "4.2b", "4.2c", "4.2d", "4.2e", "4.3a", "4.3b", "4.3c")

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def assignment():
    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")
    loaded = load_assignment(ROOT / "reference" / "ex01")
    return dataclasses.replace(loaded, limits={**loaded.limits, **FAST_LIMITS})


def functions(source: str) -> dict[str, str]:
    """Each top-level function of a module as its own source text."""
    lines = source.splitlines()
    tree = ast.parse(source)
    return {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno]) for node in tree.body
            if isinstance(node, ast.FunctionDef)}


def notebook(path: Path, **replaced: str) -> Path:
    """The independent student's notebook, one function per cell, with some functions rewritten."""
    cells = [nbformat.v4.new_code_cell("import numpy as np")]
    for name, source in functions(STUDENT).items():
        cells.append(nbformat.v4.new_code_cell(replaced.get(name, source)))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def grade(assignment, paths: list[Path], mode: str = "grade"):
    return list(grade_many(paths, assignment, mode=mode, jobs=2, isolation="namespaces"))


SOFTMAX_EPSILON = '''
def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / (e.sum(axis=-1, keepdims=True) + 1e-3)   # "for safety"
'''
LORA_UNSCALED = '''
def lora_projection(X, W, A, B, alpha):
    return X @ W + X @ A @ B
'''
ENCODER_NO_RESIDUAL = '''
def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    Z = self_attention(H, W_q, W_k, W_v)
    return Z + feed_forward(Z, W_1, W_2)
'''
FF_NO_RELU = '''
def feed_forward(X, W_1, W_2):
    return X @ W_1 @ W_2
'''
ATTENTION_BY_DK = '''
def self_attention(H, W_q, W_k, W_v, causal=False):
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    A = Q @ K.T / K.shape[1]
    if causal:
        A = A + np.triu(np.full(A.shape, -np.inf), 1)
    return softmax(A) @ V
'''
MASK_1E9 = '''
def self_attention(H, W_q, W_k, W_v, causal=False):
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    A = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        A = np.where(np.triu(np.ones(A.shape), 0) == 1, -1e9, A)
    return softmax(A) @ V
'''
PREFIX_ONLY = '''
def prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    Q = H @ W_q
    return softmax(Q @ P_k.T / np.sqrt(P_k.shape[1])) @ P_v   # attends to the prefix alone
'''
RETURNS_WEIGHTS = '''
def self_attention(H, W_q, W_k, W_v, causal=False):
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    A = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        A = A + np.triu(np.full(A.shape, -np.inf), 1)
    weights = softmax(A)
    return weights @ V, weights
'''
UNSCALED_NO_CAUSAL_YET = '''
def self_attention(H, W_q, W_k, W_v, causal=False):
    if causal:
        raise ValueError("causal attention comes next week")
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    return softmax(Q @ K.T) @ V
'''


@pytest.fixture(scope="module")
def graded(assignment, tmp_path_factory):
    """All planted-mistake submissions graded in one batch, as `grader grade` would."""
    folder = tmp_path_factory.mktemp("students")
    plans = {
        "correct": {}, "softmax_epsilon": {"softmax": SOFTMAX_EPSILON},
        "lora_unscaled": {"lora_projection": LORA_UNSCALED},
        "encoder_no_residual": {"encoder_layer": ENCODER_NO_RESIDUAL},
        "ff_no_relu": {"feed_forward": FF_NO_RELU},
        "attention_by_dk": {"self_attention": ATTENTION_BY_DK}, "mask_1e9": {"self_attention": MASK_1E9},
        "prefix_only": {"prefix_self_attention": PREFIX_ONLY}, "returns_weights": {"self_attention": RETURNS_WEIGHTS},
    }
    paths = [notebook(folder / f"{name}.ipynb", **plan) for name, plan in plans.items()]
    return dict(zip(plans, grade(assignment, paths)))


def lost(result) -> dict[str, float]:
    return {q: round(result.questions[q].max_score - result.questions[q].score, 2) for q in CODE
            if result.questions[q].score < result.questions[q].max_score}


def test_the_independent_solution_earns_every_code_point(graded):
    assert lost(graded["correct"]) == {}


def test_an_unknown_softmax_mistake_costs_only_4_2a_with_the_carried_forward_note(graded):
    result = graded["softmax_epsilon"]
    assert lost(result) == {"4.2a": 1.0}
    attention = result.questions["4.2b"]
    assert all(c.carried_forward == ("softmax",) for c in attention.cases)
    assert "Correct given your `softmax`, which is graded in 4.2a" in attention.feedback
    encoder = result.questions["4.2d"]
    assert all(c.status is Status.PASSED and c.carried_forward for c in encoder.cases)
    assert "correct given your `self_attention`" in encoder.cases[0].message
    assert "`self_attention`, which is graded in 4.2b" in encoder.feedback
    assert all(c.status is Status.PASSED for q in ("4.3a", "4.3b", "4.3c") for c in result.questions[q].cases)


def test_a_lora_mistake_does_not_cost_4_3b(graded):
    result = graded["lora_unscaled"]
    assert set(lost(result)) == {"4.3c"}
    combined = [c for c in result.questions["4.3b"].cases if "all-three" in c.case_id or "LoRA" in c.description
                or c.case_id.endswith("-4")]
    assert combined and all(c.status is Status.PASSED for c in combined)
    lora_layer = [c for c in result.questions["4.3c"].cases if c.function == "transformer_layer"]
    assert lora_layer and all(c.carried_forward == ("lora_projection",) for c in lora_layer)
    own = [c for c in result.questions["4.3c"].cases if c.function == "lora_projection"]
    assert all(c.status is Status.FAILED and c.matched == "lora_projection__no_scaling" for c in own)


def test_a_composite_with_its_own_mistake_is_charged_with_its_hint(graded):
    result = graded["encoder_no_residual"]
    assert set(lost(result)) == {"4.2d"}
    cases = result.questions["4.2d"].cases
    assert all(c.matched == "encoder_layer__no_attention_residual" and not c.carried_forward for c in cases)


def test_carry_forward_can_be_switched_off(assignment, tmp_path):
    strict = dataclasses.replace(assignment, grading=Grading(carry_forward=False))
    result, = grade(strict, [notebook(tmp_path / "s.ipynb", softmax=SOFTMAX_EPSILON)])
    assert {"4.2a", "4.2b", "4.2d", "4.2e"} <= set(lost(result))
    assert not any(c.carried_forward for q in result.questions.values() for c in q.cases)


def test_no_relu_is_named_no_relu_never_relu_after_w2(graded):
    cases = graded["ff_no_relu"].questions["4.2c"].cases
    failed = [c for c in cases if c.status is Status.FAILED]
    assert failed and all(c.matched == "feed_forward__no_relu" for c in failed), [c.matched for c in failed]
    # the layers use the student's feed_forward: carried forward, not charged again
    assert set(lost(graded["ff_no_relu"])) == {"4.2c"}


def test_divided_by_dk_is_named_so_where_it_equals_sqrt_d(graded):
    cases = graded["attention_by_dk"].questions["4.2b"].cases
    small = next(c for c in cases if c.case_id == "4.2b/small")  # d = 4, d_k = 2: d_k equals √d here
    assert small.matched == "self_attention__divided_by_dk" and "√d, the width of H" not in small.hint
    assert all(c.matched == "self_attention__divided_by_dk" for c in cases if c.status is Status.FAILED)


def test_mask_without_diagonal_written_with_minus_1e9_is_recognised(graded):
    result = graded["mask_1e9"]
    causal = [c for c in result.questions["4.2b"].cases if c.status is Status.FAILED]
    assert causal and all(c.matched == "self_attention__mask_without_diagonal_1e9" for c in causal)
    assert set(lost(result)) == {"4.2b"}


def test_a_variant_matching_only_a_degenerate_case_names_nothing(graded):
    cases = graded["prefix_only"].questions["4.3a"].cases
    degenerate = next(c for c in cases if c.input_shapes.get("H") == [1, 3])  # n = 1, p = 1, causal
    assert all(c.matched != "prefix_self_attention__prefix_masked_causally" for c in cases)
    assert degenerate.hint is None


def test_returning_z_and_the_weights_is_named(graded):
    cases = graded["returns_weights"].questions["4.2b"].cases
    assert all(c.status is Status.FAILED and c.matched == "returned_tuple" for c in cases)
    assert "return only" in cases[0].hint and "value 1 is the expected result" in cases[0].hint


def test_check_shows_the_hint_even_when_another_case_raised(assignment, tmp_path):
    path = notebook(tmp_path / "s.ipynb", self_attention=UNSCALED_NO_CAUSAL_YET)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["check", str(path), "--assignment", str(ROOT / "reference" / "ex01")])
    text = out.getvalue()
    block = text[text.index(" 4.2b "):text.index(" 4.2c ")]
    assert "raised" in block and "ValueError" in block
    assert "Hint: Your attention scores look unscaled" in " ".join(block.split())


def test_a_lookup_table_of_the_published_cases_earns_nothing_and_is_flagged(assignment, tmp_path):
    document = bundle_document(assignment)  # what `grader release` gives students: public cases and values
    table = json.dumps([{"function": c["function"], "args": c["args"], "kwargs": c["kwargs"],
                         "expected": c["expected"]} for c in document["cases"]])
    cells = [f"import json\nimport numpy as np\nTABLE = json.loads({table!r})",
             '''
def _plain(value):
    if isinstance(value, dict) and "__ndarray__" in value:
        return np.array(value["__ndarray__"], dtype=float)
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(_plain(v) for v in value["__tuple__"])
    if isinstance(value, dict) and "__dict__" in value:
        return {k: _plain(v) for k, v in value["__dict__"].items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _same(a, b):
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    x, y = np.asarray(a), np.asarray(b)
    return x.shape == y.shape and np.allclose(x.astype(float), y.astype(float))


def _lookup(function, *args):
    for entry in TABLE:
        stored = _plain(entry["args"])
        same = len(stored) == len(args) and all(_same(a, b) for a, b in zip(args, stored))
        if entry["function"] == function and same:
            return _plain(entry["expected"])
    return np.zeros((1, 1))
''']
    for name in assignment.functions:
        cells.append(f"def {name}(*args, **kwargs):\n    return _lookup({name!r}, *args)\n")
    path = tmp_path / "lookup.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    checked, = grade(assignment, [path], mode="check")
    assert sum(checked.questions[q].score for q in CODE) > 5, "the table must really answer the published cases"
    result, = grade(assignment, [path])
    assert sum(result.questions[q].score for q in CODE) == 0
    assert all(result.questions[q].flag for q in CODE), [q for q in CODE if not result.questions[q].flag]

    from grader.report.html import render_index
    html = render_index([result], assignment)
    assert "passes only the published cases" in html


FLOAT32_STUDENT = (Path(__file__).parent / "students" / "float32_einsum.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("seed", [1, 7, 88, 2024, 31337, 4_000_000_000])
def test_a_float32_einsum_notebook_earns_every_point_under_other_seeds(assignment, tmp_path, seed):
    cells = [nbformat.v4.new_code_cell(source) for source in functions(FLOAT32_STUDENT).values()]
    cells.insert(0, nbformat.v4.new_code_cell("import numpy as np\nf32 = np.float32"))
    path = tmp_path / "float32.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    result, = grade(dataclasses.replace(assignment, seed=seed), [path])
    assert lost(result) == {}, [(c.case_id, c.message) for q in CODE for c in result.questions[q].cases
                                if c.status is not Status.PASSED]
    assert {c.precision for q in CODE for c in result.questions[q].cases} == {"float32"}


def test_carried_forward_credit_for_a_module_submission(assignment, tmp_path):
    """The same as for a notebook when the submission is a .py module."""
    sources = functions(STUDENT)
    sources["softmax"] = SOFTMAX_EPSILON.strip()
    path = tmp_path / "student.py"
    path.write_text("import numpy as np\n\n\n" + "\n\n\n".join(sources.values()) + "\n", encoding="utf-8")
    result, = grade(assignment, [path])
    assert lost(result) == {"4.2a": 1.0}
    assert all(c.carried_forward for c in result.questions["4.2d"].cases)


def test_the_recording_run_happens_only_when_a_replay_is_needed(assignment, tmp_path):
    """Grading speed: a second sandbox run (with the composites' calls recorded) only for a submission
    whose failed composite no known mistake explains while one of its building blocks fails too."""
    from grader.api import grade_submission, open_sandbox

    plans = {"correct": {}, "lora_unscaled": {"lora_projection": LORA_UNSCALED},
             "encoder_no_residual": {"encoder_layer": ENCODER_NO_RESIDUAL},
             "softmax_epsilon": {"softmax": SOFTMAX_EPSILON}}
    runs = {}
    with open_sandbox(assignment, "namespaces") as box:
        real_run = box.run
        for name, plan in plans.items():
            count = [0]

            def counted(job, count=count):
                count[0] += 1
                return real_run(job)

            box.run = counted  # the real sandbox runs; this only counts
            grade_submission(notebook(tmp_path / f"{name}.ipynb", **plan), assignment, sandbox=box)
            runs[name] = count[0]
    assert runs == {"correct": 1, "lora_unscaled": 1, "encoder_no_residual": 1, "softmax_epsilon": 2}

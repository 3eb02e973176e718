"""The ordered comparison: each check decides with a message a student can act on."""

from __future__ import annotations

import numpy as np
import pytest

from grader.assignment import Case, PreparedCase, Question, Tolerance, Variant
from grader.compare import compare_case, missing_message
from grader.results import Status
from grader.sandbox import CallOutcome, ErrorInfo, Unconvertible

X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
EXPECTED = X * 2
QUESTION = Question(
    id="q", kind="code", title="double", prompt="", points=1.0, bonus=False, functions=("double",),
    tolerance=Tolerance(rtol=1e-5, atol=1e-8),
    variants=(Variant("triple", "mistake", "double", "You multiplied by three."),
              Variant("plus-x", "alternative", "double", "Adding X to itself is fine too.")),
)


def prepared(public: bool = True, variants: tuple = ()) -> PreparedCase:
    case = Case("q", "double", (X,), {}, id="q/1", public=public)
    return PreparedCase(case, ("X",), EXPECTED, variants)


def ok(value) -> CallOutcome:
    return CallOutcome(id="q/1", status="ok", value=value)


def test_correct_array_float32_list_and_object_with_array_protocol():
    class Wrapped:
        def __array__(self, dtype=None, copy=None):
            return EXPECTED

    for value in (EXPECTED, EXPECTED.astype(np.float32), EXPECTED.tolist(), np.asarray(Wrapped())):
        result = compare_case(prepared(), ok(value), QUESTION)
        assert result.status is Status.PASSED, result.message


@pytest.mark.parametrize("outcome, status, words", [
    (CallOutcome("q/1", "missing"), Status.MISSING, "not defined"),
    (CallOutcome("q/1", "timeout"), Status.TIMEOUT, "did not finish"),
    (CallOutcome("q/1", "error", error=ErrorInfo("ValueError", "shapes (3,2) and (3,3) not aligned", "tb")),
     Status.ERROR, "raised ValueError: shapes"),
    (CallOutcome("q/1", "crashed", error=ErrorInfo("Crash", "killed by signal 9 (SIGKILL)", "")),
     Status.ERROR, "crashed"),
    (ok(None), Status.FAILED, "forget the `return`"),
    (ok(Unconvertible("dict", "{}")), Status.FAILED, "`dict`"),
    (ok("a string"), Status.FAILED, "string"),
    (ok(np.array([True, False])), Status.FAILED, "True/False"),
    (ok(np.ones((2, 3))), Status.FAILED, "shape (2, 3), expected (3, 2)"),
])
def test_each_check_explains_itself(outcome, status, words):
    result = compare_case(prepared(), outcome, QUESTION)
    assert result.status is status
    assert words in result.message


def test_wrong_values_show_where_and_how_much():
    received = EXPECTED.copy()
    received[1, 0] += 0.5
    result = compare_case(prepared(), ok(received), QUESTION)
    assert result.status is Status.FAILED
    assert "1 of 6 entries differ" in result.message and "[1, 0]" in result.message
    assert result.diff.first_index == (1, 0) and result.diff.mask[1][0] is True
    assert result.diff.expected[1][0] == 6.0 and result.diff.received[1][0] == 6.5
    assert "expected 6, got 6.5" in result.details


def test_inputs_are_shown_for_failing_public_cases_only():
    assert compare_case(prepared(), ok(EXPECTED), QUESTION).inputs is None
    assert compare_case(prepared(), ok(EXPECTED + 1), QUESTION).inputs == {"X": X.tolist()}


def test_hidden_case_never_carries_values():
    received = EXPECTED + 1
    result = compare_case(prepared(public=False), ok(received), QUESTION)
    assert result.inputs is None and result.diff.expected is None and result.diff.received is None
    assert result.input_shapes == {"X": [3, 2]}
    assert "hidden case" in result.details


def test_known_mistake_gives_hint_and_alternative_passes_with_note():
    variants = ((QUESTION.variants[0], X * 3), (QUESTION.variants[1], X + X + 0.0))
    mistaken = compare_case(prepared(variants=variants), ok(X * 3), QUESTION)
    assert mistaken.status is Status.FAILED and mistaken.matched == "triple"
    assert mistaken.hint == "You multiplied by three."
    alternative_output = X * 2 + 1  # an alternative convention that differs from the reference
    alt = (Variant("plus-one", "alternative", "double", "Off by one is the other convention."), alternative_output)
    accepted = compare_case(prepared(variants=(alt,)), ok(alternative_output), QUESTION)
    assert accepted.status is Status.PASSED and accepted.note.startswith("Off by one")


def test_nan_is_named_and_transposed_output_recognised():
    received = EXPECTED.copy()
    received[0, 1] = np.nan
    result = compare_case(prepared(), ok(received), QUESTION)
    assert result.status is Status.FAILED and "NaN or inf" in result.message and "[0, 1]" in result.message
    transposed = compare_case(prepared(), ok(EXPECTED.T), QUESTION)
    assert transposed.matched == "transposed" and "transpose" in transposed.message


def test_mutated_inputs_are_noted_not_failed():
    outcome = CallOutcome("q/1", "ok", value=EXPECTED, mutated_args=("0",))
    result = compare_case(prepared(), outcome, QUESTION)
    assert result.status is Status.PASSED and "changed its input `X`" in result.details


def test_missing_suggests_close_names():
    assert "did you mean `soft_max`" in missing_message("softmax", ("soft_max", "np"))
    assert "did you mean `Softmax`" in missing_message("softmax", ("Softmax",))
    assert "did you mean" not in missing_message("softmax", ("project",))


def test_scalar_expected_accepts_one_element_arrays():
    case = Case("q", "double", (X,), {}, id="q/1")
    scalar = PreparedCase(case, ("X",), 12.127, ())
    for value in (12.127, np.float32(12.127), np.array([12.127]), np.array([[12.127]])):
        assert compare_case(scalar, ok(value), QUESTION).status is Status.PASSED


# --------------------------------------------------------------------------- float32 over many seeds (issue 10 §3)

import copy  # noqa: E402
from pathlib import Path  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from grader.assignment import load_assignment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EX01 = load_assignment(ROOT / "reference" / "ex01")
FLOAT32_STUDENT: dict = {}
exec((ROOT / "tests" / "students" / "float32_einsum.py").read_text(), FLOAT32_STUDENT)


def _fresh(case):
    return copy.deepcopy(case.args), copy.deepcopy(case.kwargs)


def _plain_prepared(case) -> PreparedCase:
    """A case with its expected value and no variants: enough to judge pass or fail."""
    args, kwargs = _fresh(case)
    expected = np.asarray(getattr(EX01.reference, case.function)(*args, **kwargs), dtype=np.float64)
    return PreparedCase(case, (), expected, ())


def _cases(seed: int):
    cases = [c if not c.public else c for c in EX01.cases_module.public_cases()]
    return cases + [Case(c.question, c.function, c.args, c.kwargs, c.id or f"hidden-{i}", public=False)
                    for i, c in enumerate(EX01.cases_module.hidden_cases(seed))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_a_correct_float32_einsum_implementation_passes_under_every_seed(seed):
    for case in _cases(seed):
        prepared = _plain_prepared(case)
        args, kwargs = _fresh(case)
        value = FLOAT32_STUDENT[case.function](*args, **kwargs)
        assert np.asarray(value).dtype == np.float32
        result = compare_case(prepared, ok(value), EX01.question(case.question))
        assert result.status is Status.PASSED, (seed, case.id, result.message)
        assert result.precision == "float32"


def _as_float32(value):
    if isinstance(value, np.ndarray):
        return value.astype(np.float32)
    if isinstance(value, tuple):
        return tuple(_as_float32(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_float32(v) for k, v in value.items()}
    return value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_known_mistake_is_still_caught_at_float32_precision(seed):
    """The wider float32 tolerance must not let a mistake pass: computed in float32, each declared mistake
    still fails some case of its function wherever it differs from the reference in float64."""
    cases = _cases(seed)
    for question in EX01.questions:
        for variant in question.variants:
            if variant.kind != "mistake":
                continue
            showed = caught = False
            for case in (c for c in cases if c.function == variant.function):
                prepared = _plain_prepared(case)
                args, kwargs = _fresh(case)
                try:
                    with np.errstate(all="ignore"):
                        exact = np.asarray(variant.implementation(*args, **kwargs), dtype=np.float64)
                        value = variant.implementation(*_as_float32(args), **_as_float32(kwargs))
                except Exception:
                    continue
                if exact.shape == prepared.expected.shape and np.allclose(exact, prepared.expected, rtol=1e-5,
                                                                          atol=1e-8, equal_nan=True):
                    continue
                showed = True
                value = np.asarray(value).astype(np.float32)
                if compare_case(prepared, ok(value), question).status is not Status.PASSED:
                    caught = True
                    break
            assert caught or not showed, (seed, variant.name)


def test_a_float64_result_that_holds_only_float32_numbers_is_judged_at_float32():
    value = (EXPECTED / 3).astype(np.float32).astype(np.float64)
    assert compare_case(prepared(), ok(value), QUESTION).precision == "float32"
    assert compare_case(prepared(), ok(EXPECTED / 3), QUESTION).precision == "float64"


# --------------------------------------------------------------------------- hints across a submission's cases (§5)

from grader.judge import resolve_hints  # noqa: E402


def _judged(results_per_case):
    """(PreparedCase, CaseResult) pairs for the question `q` whose variants are `a` and `b`."""
    a = Variant("double__a", "mistake", "double", "Mistake A.", question="q")
    b = Variant("double__b", "mistake", "double", "Mistake B.", question="q")
    pairs = []
    for number, (out_a, out_b, received) in enumerate(results_per_case):
        case = Case("q", "double", (X,), {}, id=f"q/{number}")
        p = PreparedCase(case, ("X",), EXPECTED, ((a, out_a), (b, out_b)))
        pairs.append((p, compare_case(p, ok(received), QUESTION)))
    return resolve_hints(pairs, {"double__a": a, "double__b": b})


def test_the_mistake_explaining_most_cases_is_named_where_two_coincide():
    # A and B agree on case 0; only B explains case 1
    results = _judged([(X * 3, X * 3, X * 3), (X * 3, X * 4, X * 4)])
    assert [r.matched for _, r in results] == ["double__b", "double__b"]
    assert results[0][1].hint == "Mistake B." and "Mistake A." not in results[0][1].message


def test_a_tie_names_both():
    results = _judged([(X * 3, X * 3, X * 3)])
    assert "Mistake A." in results[0][1].hint and "Mistake B." in results[0][1].hint


def test_a_mistake_contradicted_by_the_other_cases_names_nothing():
    # case 0 (degenerate) matches A; on cases 1 and 2 A would show and the student did something else
    results = _judged([(X * 3, X * 5, X * 3), (X * 3, X * 5, X * 7), (X * 3, X * 5, X * 9)])
    first = results[0][1]
    assert first.status is Status.FAILED and first.hint is None and first.matched is None
    assert first.message.startswith("wrong result:")

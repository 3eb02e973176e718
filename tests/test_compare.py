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

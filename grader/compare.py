"""Comparison: one raw output from the sandbox against the trusted expectation → CaseResult.

The checks run in a fixed order and the first that decides gives the student one actionable line:
outcome (missing / raised / timed out / crashed) → nothing returned → not numeric → shape →
NaN/inf → allclose at the question's tolerance → accepted alternatives → known mistakes → a
description of the difference. Only the parent runs this; the sandbox never sees an expectation.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .assignment import FLOAT32_EPS, PreparedCase, Question, Tolerance, Variant, VariantKind, Wording
from .results import ArrayDiff, CaseResult, Status

SHOW_CELLS = 100  # matrices up to this many cells are shown in full in reports


@dataclass(frozen=True)
class Verdict:
    """What comparing one received value with the expectation decided."""

    status: Status
    message: str
    details: str = ""
    diff: ArrayDiff | None = None
    matched: str | None = None  # the alternative or known mistake named
    hint: str | None = None
    note: str | None = None
    candidates: tuple[str, ...] = ()  # every known mistake the value equals on this case


@dataclass(frozen=True)
class Precision:
    """The precision a student computed in, as judged from the returned value."""

    name: str  # "float64", "float32", "float16"
    eps: float


FLOAT64 = Precision("float64", float(np.finfo(np.float64).eps))


def compare_case(prepared: PreparedCase, outcome: Any, question: Question, names: tuple[str, ...] = (),
                 wording: Wording = Wording()) -> CaseResult:
    """Judge one call. ``outcome`` is a sandbox CallOutcome (status, value, error, output, mutated_args)."""
    case = prepared.case
    shapes = input_shapes(prepared)
    output = getattr(outcome, "output", "") or ""
    description = case.description if case.public else ""
    # the inputs help a student debug a public case that did not pass; every other result does without
    # them (they would repeat the same matrices in every student's result)
    inputs = describe_inputs(prepared) if case.public else None

    def result(verdict: Verdict, traceback: str | None = None, shown: dict[str, Any] | None = None,
               precision: Precision = FLOAT64) -> CaseResult:
        return CaseResult(case_id=case.id, function=case.function, public=case.public, status=verdict.status,
                          message=verdict.message, details=verdict.details, diff=verdict.diff,
                          matched=verdict.matched, hint=verdict.hint, note=verdict.note, inputs=shown,
                          input_shapes=shapes, traceback=traceback, output=output, description=description,
                          candidates=verdict.candidates, precision=precision.name)

    problem = _outcome_problem(outcome, case.function, names)
    if problem is not None:
        status, message, traceback = problem
        return result(Verdict(status, message), traceback, inputs if status is not Status.MISSING else None)
    tupled = _tuple_of_arrays(outcome.value, prepared)
    if tupled is not None:
        return result(tupled, shown=inputs)
    received, reason = as_numeric(outcome.value)
    if received is None:
        return result(Verdict(Status.FAILED, reason or "returned something that is not numeric data"), shown=inputs)
    precision = precision_of(outcome.value)
    verdict = judge_value(received, prepared, question.tolerance, precision, wording)
    mutated = tuple(getattr(outcome, "mutated_args", ()) or ())
    if mutated:
        names_changed = ", ".join(_argument_name(prepared, m) for m in mutated)
        verdict = replace(verdict, details=(verdict.details + "\n" if verdict.details else "") + (
            f"Note: your function changed its input {names_changed} in place. Grading gave every call a "
            "fresh copy, but code that calls your function may be surprised; prefer working on copies."))
    return result(verdict, shown=inputs if verdict.status is not Status.PASSED else None, precision=precision)


def precision_of(value: Any) -> Precision:
    """float32 (or float16) when the value has that dtype, or when every entry of a float64 result is a
    float32 number (a float32 computation converted back: float64 arithmetic almost never lands there)."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and dtype.kind == "f" and dtype.itemsize < 8:
        return Precision(str(dtype), max(float(np.finfo(dtype).eps), FLOAT32_EPS))
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return FLOAT64
    if not array.size:
        return FLOAT64
    with np.errstate(over="ignore", invalid="ignore"):
        if not (array.astype(np.float32) == array).all() or (array == np.floor(array)).all():
            return FLOAT64  # float64 arithmetic (nearly always), or whole numbers, which say nothing
    return Precision("float32", FLOAT32_EPS)


def _tuple_of_arrays(value: Any, prepared: PreparedCase) -> Verdict | None:
    """A tuple such as ``(Z, weights)`` where one array was expected: say so plainly."""
    expected = np.asarray(prepared.expected)
    if expected.ndim == 0:
        return None
    parts: list[Any] | None = None
    if isinstance(value, (tuple, list)) and 1 < len(value) <= 8:
        parts = list(value)
    elif isinstance(value, np.ndarray) and value.ndim == expected.ndim + 1 and 1 < value.shape[0] <= 8:
        parts = list(value)
    elif getattr(value, "type_name", None) in ("tuple", "list"):
        return Verdict(Status.FAILED, f"returned a `{value.type_name}` of several values; return one array",
                       hint="Return one numeric array: a tuple or list of several values cannot be checked.",
                       matched="returned_tuple", candidates=("returned_tuple",))
    if not parts:
        return None
    for index, part in enumerate(parts):
        try:
            array = np.asarray(part, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if array.shape == expected.shape and np.allclose(array, expected, rtol=1e-4, atol=1e-6):
            hint = (f"You return {len(parts)} values, and value {index + 1} is the expected result: return only "
                    "that array, not a tuple of it and other values.")
            return Verdict(Status.FAILED, f"returned {len(parts)} values where one array was expected", hint=hint,
                           matched="returned_tuple", candidates=("returned_tuple",))
    return None


def _outcome_problem(outcome: Any, function: str, names: tuple[str, ...]) -> tuple[Status, str, str | None] | None:
    status = outcome.status
    error = getattr(outcome, "error", None)
    trace = getattr(error, "traceback", None) if error else None
    if status == "ok":
        return None
    if status == "missing":
        return Status.MISSING, missing_message(function, names), None
    if status == "timeout":
        reason = _first_line(error.message) if error else ""
        return (Status.TIMEOUT, f"`{function}` did not finish within its time limit and was stopped: an endless "
                f"loop, or far too slow" + (f" ({reason})" if reason.startswith("not run again") else "") + ".", trace)
    if status == "error" and error is not None:
        return Status.ERROR, f"`{function}` raised {error.type}: {_first_line(error.message)}", trace
    if status == "crashed":
        reason = _first_line(error.message) if error else "the process died"
        return Status.ERROR, f"`{function}` crashed the process running it: {reason}", trace
    if status == "not_run":
        reason = _first_line(error.message) if error else "earlier calls used up the time for this submission"
        return Status.ERROR, f"`{function}` was not run: {reason}", None
    return Status.ERROR, f"`{function}` could not be run ({status})", trace


def missing_message(function: str, names: tuple[str, ...]) -> str:
    message = f"`{function}` is not defined in your submission"
    close = difflib.get_close_matches(function, [n for n in names if not n.startswith("_")], n=1, cutoff=0.6)
    if not close:
        close = [n for n in names if n.lower().replace("_", "") == function.lower().replace("_", "")]
    if close:
        return f"{message} — did you mean `{close[0]}`? Rename it to `{function}`."
    return f"{message}; define a function with exactly this name."


def as_numeric(value: Any) -> tuple[np.ndarray | None, str | None]:
    """The received value as a float64 array, or the reason it is not numeric data."""
    if value is None:
        return None, "returned None — did you forget the `return` statement?"
    type_name = getattr(value, "type_name", None)
    if type_name is not None:  # an Unconvertible from the sandbox
        return None, f"returned a `{type_name}`, which is not a number or an array of numbers"
    if isinstance(value, str):
        return None, "returned a string, not a number or an array of numbers"
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype.kind == "b"):
        return None, "returned True/False values, not numbers"
    try:
        array = np.asarray(value, dtype=np.float64)
    except OverflowError:
        return None, "returned a number too large to compare (beyond the range of a float)"
    except (TypeError, ValueError):
        return None, f"returned a `{type(value).__name__}`, which is not a number or an array of numbers"
    return array, None


def judge_value(received: np.ndarray, prepared: PreparedCase, tolerance: Tolerance,
                precision: Precision = FLOAT64, wording: Wording = Wording()) -> Verdict:
    """Shape → NaN/inf → allclose → alternatives → mistakes → difference, at the student's precision."""
    expected = np.asarray(prepared.expected, dtype=np.float64)
    tolerance = tolerance.at_precision(precision.eps, _largest(expected))
    public = prepared.case.public
    if expected.size == 1 and received.size == 1 and expected.shape != received.shape:
        received = received.reshape(expected.shape)  # a 1×1 array for a scalar is fine
    if received.shape != expected.shape:
        return _shape_result(received, expected, prepared, tolerance, wording)
    if _close(received, expected, tolerance):
        return Verdict(Status.PASSED, "correct")
    matched = _matching_variants(received, prepared, tolerance)
    alternatives = [v for v in matched if v.kind is VariantKind.ALTERNATIVE]
    if alternatives:
        return Verdict(Status.PASSED, f"accepted ({alternatives[0].name})", matched=alternatives[0].name,
                       note=alternatives[0].message)
    diff = array_diff(received, expected, tolerance, show_values=public)
    details = describe_difference(diff, public, wording)
    if matched:
        first = matched[0]
        return Verdict(Status.FAILED, f"wrong result — {first.message}", details, diff, first.name, first.message,
                       candidates=tuple(v.name for v in matched))
    if not np.all(np.isfinite(received)) and np.all(np.isfinite(expected)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(received))[0])
        return Verdict(Status.FAILED, f"the result contains NaN or inf (first at {_index(where)}); look for an "
                       "overflow, a division by zero or a log of zero", details, diff)
    message = (f"wrong result: {diff.mismatches} of {expected.size} entries differ, the largest by "
               f"{diff.max_abs_error:.4g}" + (f" (first at {_index(diff.first_index)})" if diff.first_index else ""))
    return Verdict(Status.FAILED, message, details, diff)


def _largest(array: np.ndarray) -> float:
    finite = np.abs(array[np.isfinite(array)])
    return float(finite.max()) if finite.size else 0.0


def _shape_result(received: np.ndarray, expected: np.ndarray, prepared: PreparedCase, tolerance: Tolerance,
                  wording: Wording) -> Verdict:
    matched = _matching_variants(received, prepared, tolerance)
    if matched:
        first = matched[0]
        message = f"shape {_shape(received.shape)}: {first.message}"
        if first.kind is VariantKind.ALTERNATIVE:
            return Verdict(Status.PASSED, message, matched=first.name, note=first.message)
        return Verdict(Status.FAILED, message, matched=first.name, hint=first.message,
                       candidates=tuple(v.name for v in matched if v.kind is VariantKind.MISTAKE))
    message = f"returned shape {_shape(received.shape)}, expected {_shape(expected.shape)}"
    if received.ndim == 2 and received.T.shape == expected.shape:
        if _close(received.T, expected, tolerance):
            return Verdict(Status.FAILED, f"{message} — it is the transpose of the expected result",
                           matched="transposed", hint=wording.transposed, candidates=("transposed",))
        message += " (transposed?)"
    return Verdict(Status.FAILED, message)


def _matching_variants(received: np.ndarray, prepared: PreparedCase, tolerance: Tolerance) -> list[Variant]:
    """Every alternative, then every mistake, whose output the received value equals (and which says
    something here: a variant that agrees with the reference on this case is left out)."""
    variants, stack = prepared.stacked(tolerance, received.shape)
    if not variants:
        return []
    with np.errstate(invalid="ignore", over="ignore"):
        near = np.abs(stack - received) <= tolerance.atol + tolerance.rtol * np.abs(stack)
        near |= np.isnan(stack) & np.isnan(received)
        near |= np.isinf(stack) & (stack == received)
    hits = near.reshape(len(variants), -1).all(axis=1)
    return [variant for variant, hit in zip(variants, hits) if hit]


def _close(a: np.ndarray, b: np.ndarray, tolerance: Tolerance, equal_nan: bool = False) -> bool:
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.allclose(a, b, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=equal_nan))


def array_diff(received: np.ndarray, expected: np.ndarray, tolerance: Tolerance, show_values: bool) -> ArrayDiff:
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        error = np.abs(received - expected)
        bad = ~np.isclose(received, expected, rtol=tolerance.rtol, atol=tolerance.atol)
        finite = np.isfinite(error)
        max_abs = float(error[finite].max()) if finite.any() else float("inf")
        relative = error / np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
        max_rel = float(relative[np.isfinite(relative)].max()) if np.isfinite(relative).any() else float("inf")
    if not finite.all():
        max_abs = float("inf")
    first = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() else None
    small = show_values and expected.size <= SHOW_CELLS
    return ArrayDiff(
        shape=tuple(expected.shape), max_abs_error=max_abs, max_rel_error=max_rel, mismatches=int(bad.sum()),
        first_index=first,
        expected=_listed(expected) if small else None,
        received=_listed(received) if small else None,
        mask=bad.tolist() if small else None,
    )


def _listed(array: np.ndarray) -> Any:
    """Nested lists with NaN/inf spelled out (JSON cannot hold them as numbers)."""
    return np.vectorize(lambda x: x if np.isfinite(x) else str(x), otypes=[object])(array).tolist() if array.ndim else (
        float(array) if np.isfinite(array) else str(float(array)))


def describe_difference(diff: ArrayDiff, public: bool, wording: Wording = Wording()) -> str:
    lines = [f"max abs error {diff.max_abs_error:.3g}, max rel error {diff.max_rel_error:.3g}; "
             f"{diff.mismatches} entries outside the tolerance"]
    if diff.first_index is not None and public and diff.expected is not None:
        expected = _at(diff.expected, diff.first_index)
        received = _at(diff.received, diff.first_index)
        lines.append(f"first difference at {_index(diff.first_index)}: expected {_fmt(expected)}, got {_fmt(received)}")
    elif not public:
        lines.append(wording.hidden_case)
    return "\n".join(lines)


def _at(nested: Any, index: tuple[int, ...]) -> Any:
    for i in index:
        nested = nested[i]
    return nested


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _index(index: tuple[int, ...] | None) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]" if index is not None else "[]"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _first_line(text: str) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:300]


def _argument_name(prepared: PreparedCase, key: str) -> str:
    if key.isdigit() and int(key) < len(prepared.arg_names):
        return f"`{prepared.arg_names[int(key)]}`"
    return f"`{key}`"


def input_shapes(prepared: PreparedCase) -> dict[str, Any]:
    named = dict(zip(prepared.arg_names, prepared.case.args))
    named.update(prepared.case.kwargs)
    return {name: _shape_of(value) for name, value in named.items()}


def _shape_of(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return list(value.shape)
    if isinstance(value, (tuple, list)):
        return [_shape_of(v) for v in value]
    if isinstance(value, dict):
        return {k: _shape_of(v) for k, v in value.items()}
    return type(value).__name__ if not isinstance(value, (bool, type(None))) else value


def describe_inputs(prepared: PreparedCase) -> dict[str, Any]:
    named = dict(zip(prepared.arg_names, prepared.case.args))
    named.update(prepared.case.kwargs)
    return {name: _as_lists(value) for name, value in named.items()}


def _as_lists(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _listed(value.astype(np.float64)) if value.dtype.kind in "fiu" else value.tolist()
    if isinstance(value, (tuple, list)):
        return [_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value

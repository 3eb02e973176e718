"""Judging a whole submission: each case compared, then each mistake charged once and named right.

:func:`grader.compare.compare_case` judges one call on its own. Some verdicts need the other cases of
the same submission, so this module runs after it, in the trusted parent:

1. Hints. A known mistake is named only where it explains the student's results: when several known
   mistakes give the same output on a case, the one that explains most of the student's cases is
   named (both, on a tie); a mistake contradicted more often than supported by the student's other
   cases of the same function (it matched only on a degenerate case, n = 1 say) names nothing.
2. Error carried forward (``[grading] carry_forward``, on by default). A composite that is correct
   given the student's own building blocks earns its points, with a note naming the building block
   and where it is graded. Two ways to know: the composite's result equals the propagated form of a
   known mistake that the student's building block shows in its own question; or, from the calls the
   student's composite made to the student's own functions (recorded in the sandbox), the reference
   composite replayed on those outputs (:func:`grader.carry.replay`) gives the student's result.
   The replay runs only for a composite case that failed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any, Callable, Mapping

import numpy as np

from . import carry
from .assignment import Assignment, PreparedCase, Variant
from .compare import compare_case, precision_of
from .errors import failure_reason
from .results import CaseResult, Status

Rerun = Callable[[tuple[PreparedCase, ...]], Mapping[str, Any]]


def judge_submission(assignment: Assignment, prepared: tuple[PreparedCase, ...], calls: Mapping[str, Any],
                     names: tuple[str, ...] = (), rerun: Rerun | None = None) -> dict[str, list[CaseResult]]:
    """The case results of every code question, hints resolved and carried-forward credit given.

    ``rerun(cases)`` runs those composite cases again in the sandbox with their calls to the student's
    own functions recorded; it is asked at most once, and only for failed composite cases that no known
    mistake explains while one of their building blocks fails cases of its own.
    """
    pairs = [(p, _compare(p, calls[p.case.id], assignment, names)) for p in prepared if p.case.id in calls]
    variants = {v.name: v for p in prepared for v, _ in p.variants}
    pairs = resolve_hints(pairs, variants)
    if assignment.grading.carry_forward:
        pairs = carry_forward(assignment, pairs, variants, calls, rerun)
    by_question: dict[str, list[CaseResult]] = {q.id: [] for q in assignment.questions}
    for p, result in pairs:
        by_question[p.case.question].append(result)
    return by_question


def _compare(prepared: PreparedCase, outcome: Any, assignment: Assignment, names: tuple[str, ...]) -> CaseResult:
    """One case; should judging this value fail, that case is an error and the others still count."""
    try:
        return compare_case(prepared, outcome, assignment.question(prepared.case.question), names, assignment.wording)
    except Exception as error:  # noqa: BLE001 - a finer boundary inside the submission's one
        case = prepared.case
        return CaseResult(case_id=case.id, function=case.function, public=case.public, status=Status.ERROR,
                          message=f"`{case.function}` returned a value the grader could not check: "
                                  f"{failure_reason(error)}")


# --------------------------------------------------------------------------- hints


def _family(name: str, variants: dict[str, Variant]) -> str:
    variant = variants.get(name)
    return variant.family if variant is not None else name


def resolve_hints(pairs: list[tuple[PreparedCase, CaseResult]], variants: dict[str, Variant]
                  ) -> list[tuple[PreparedCase, CaseResult]]:
    """Name on each case the known mistake(s) that explain the student's results best, or none."""
    support: Counter[str] = Counter()  # family -> the student's cases it explains, over all functions
    for_function: Counter[tuple[str, str]] = Counter()  # (function, family) -> cases of that function it explains
    against: Counter[tuple[str, str]] = Counter()  # (function, family) -> cases where it would show and does not
    for p, result in pairs:
        families = {_family(n, variants) for n in result.candidates}
        for family in families:
            support[family] += 1
            for_function[(p.case.function, family)] += 1
        if result.status in (Status.PASSED, Status.FAILED):
            for name in p.active:
                family = _family(name, variants)
                if family not in families:
                    against[(p.case.function, family)] += 1
    resolved = []
    for p, result in pairs:
        if result.candidates and result.status is Status.FAILED:
            result = _name_best(p, result, variants, support, for_function, against)
        resolved.append((p, result))
    return resolved


def _name_best(p: PreparedCase, result: CaseResult, variants: dict[str, Variant], support: Counter[str],
               for_function: Counter[tuple[str, str]], against: Counter[tuple[str, str]]) -> CaseResult:
    function = p.case.function
    nameable = [n for n in result.candidates
                if for_function[(function, _family(n, variants))] > against[(function, _family(n, variants))]]
    if not nameable:
        plain = result.message.split(" — ", 1)[0] if result.message.startswith("wrong result — ") else result.message
        if plain == "wrong result" and result.diff is not None:
            diff = result.diff
            plain = (f"wrong result: {diff.mismatches} of {int(np.prod(diff.shape))} entries differ, the largest "
                     f"by {diff.max_abs_error:.4g}")
        return replace(result, matched=None, hint=None, message=plain)
    # the most support wins; on a tie the function's own declared mistake before a propagated one
    def rank(name: str) -> tuple[int, int]:
        variant = variants.get(name)
        return support[_family(name, variants)], int(variant is None or variant.origin is None)

    best = max(rank(n) for n in nameable)
    chosen = [n for n in nameable if rank(n) == best]
    chosen = list(dict.fromkeys(chosen))
    messages = [variants[n].message if n in variants else (result.hint or "") for n in chosen]
    messages = list(dict.fromkeys(m for m in messages if m))
    if len(messages) <= 1:
        hint = messages[0] if messages else result.hint
    else:
        hint = "Your result fits more than one known mistake: " + " Or: ".join(messages)
    prefix, _, _ = result.message.partition(": ") if result.message.startswith("shape ") else ("wrong result", "", "")
    message = f"{prefix}: {hint}" if result.message.startswith("shape ") else f"wrong result — {hint}"
    return replace(result, matched=chosen[0], hint=hint, message=message)


# --------------------------------------------------------------------------- error carried forward


def carry_forward(assignment: Assignment, pairs: list[tuple[PreparedCase, CaseResult]],
                  variants: dict[str, Variant], calls: Mapping[str, Any], rerun: Rerun | None = None
                  ) -> list[tuple[PreparedCase, CaseResult]]:
    """Credit composite cases that are correct given the student's own (wrong) building blocks, and
    cases that repeat a known mistake the student is already charged for in the mistake's own question."""
    shown: dict[tuple[str, str], set[str]] = {}  # (question, function) -> mistake families named there
    failing: set[str] = set()  # functions with a case that did not pass
    for p, result in pairs:
        if result.status is not Status.PASSED:
            failing.add(p.case.function)
        if result.matched and result.status is Status.FAILED:
            shown.setdefault((p.case.question, p.case.function), set()).add(_family(result.matched, variants))
    out = [(p, _carried_by_mistake(assignment, p, result, variants, shown) or result
            if result.status is Status.FAILED else result) for p, result in pairs]
    wanted = tuple(p for p, result in out if result.status is Status.FAILED and failing & set(p.building_blocks)
                   and not _own_mistake(result, variants, p.case.function))
    if not wanted:
        return out
    recorded = dict(calls)
    if rerun is not None and not any(getattr(calls.get(p.case.id), "recorded", None) for p in wanted):
        recorded.update(rerun(wanted))
    ids = {p.case.id for p in wanted}
    return [(p, _carried_by_replay(assignment, p, result, recorded.get(p.case.id)) or result
             if p.case.id in ids else result) for p, result in out]


def _own_mistake(result: CaseResult, variants: dict[str, Variant], function: str) -> bool:
    """The result is explained by a mistake declared for this very function: nothing to replay."""
    variant = variants.get(result.matched or "")
    return variant is not None and variant.origin is None and variant.function == function


def _carried_by_mistake(assignment: Assignment, p: PreparedCase, result: CaseResult, variants: dict[str, Variant],
                        shown: dict[tuple[str, str], set[str]]) -> CaseResult | None:
    """The result is a known mistake whose home is another question (or another function: a building
    block), and the student's code shows that mistake there: it is charged there, once."""
    variant = variants.get(result.matched or "")
    if variant is None or variant.question is None:
        return None
    if variant.origin is not None and variant.origin_function is not None:
        if variant.origin in shown.get((variant.question, variant.origin_function), set()):
            return _credited(assignment, result, (variant.origin_function,))
        return None  # the student's building block does not show this mistake: it is this function's own
    if variant.question != p.case.question and variant.name in shown.get((variant.question, variant.function), set()):
        return _credited(assignment, result, (variant.function,), variant.question)
    return None


def _carried_by_replay(assignment: Assignment, p: PreparedCase, result: CaseResult, outcome: Any
                       ) -> CaseResult | None:
    recording = getattr(outcome, "recorded", None)
    if not recording or assignment.reference is None:
        return None
    recorded = recording.calls()
    try:
        received = np.asarray(outcome.value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    tolerance = assignment.question(p.case.question).tolerance.at_precision(
        precision_of(outcome.value).eps, _largest(received))

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        with np.errstate(invalid="ignore", over="ignore"):
            return bool(np.allclose(a, b, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True))

    replayed = carry.replay(assignment.reference, p.case.function, assignment.functions, p.case.args, p.case.kwargs,
                            recorded, close)
    if replayed is None or replayed.value.shape != received.shape or not close(received, replayed.value):
        return None
    wrong = tuple(dict.fromkeys(c.function for c in replayed.used if carry.differs(assignment.reference, c, close)))
    if not wrong:
        return None
    return _credited(assignment, result, wrong)


def _largest(array: np.ndarray) -> float:
    finite = np.abs(array[np.isfinite(array)])
    return float(finite.max()) if finite.size else 0.0


def _credited(assignment: Assignment, result: CaseResult, blocks: tuple[str, ...], home: str | None = None
              ) -> CaseResult:
    parts = []
    for block in blocks:
        where = (home,) if home else assignment.questions_of(block)
        parts.append(f"`{block}`, which is graded in {_join(list(where))}" if where else f"`{block}`")
    note = (f"Correct given your {' and your '.join(parts)}: the mistake there is charged only where it is made "
            "(error carried forward).")
    return replace(result, status=Status.PASSED, message=f"correct given your {', '.join(f'`{b}`' for b in blocks)}",
                   note=note, hint=None, matched=None, carried_forward=blocks, inputs=None)


def _join(ids: list[str]) -> str:
    return ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + " and " + ids[-1]


__all__ = ["judge_submission", "resolve_hints", "carry_forward"]

"""Scoring: pure functions from case results, answers and manual decisions to points and the bonus.

Nothing here runs code or touches files; the same inputs always give the same SubmissionResult, so
regrading, reviewing and re-rendering can recompute scores at any time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Iterable, Literal

from .assignment import Assignment, BonusRule, BonusRuleName, Concept, Question, WrittenMode
from .results import (
    SEVERITY,
    BonusDecision,
    BonusState,
    CaseResult,
    DecisionVerdict,
    ManualDecision,
    Mode,
    QuestionResult,
    Status,
    SubmissionResult,
)


def score_code_question(question: Question, cases: Iterable[CaseResult]) -> QuestionResult:
    """Points in proportion to the cases passed; the status is the most severe case status.

    A function that passes its published cases but fails every hidden one (answers looked up from the
    published expected values, or code that only works on the sheet's shapes) earns nothing for its
    public cases either, and the question is flagged for the instructor.
    """
    cases = tuple(cases)
    if not cases:
        return _question(question, Status.PENDING, 0.0, "No cases were run for this question.", cases)
    cases, flag = _public_only(cases)
    passed = sum(c.status is Status.PASSED for c in cases)
    score = round(question.points * passed / len(cases), 2)
    status = max((c.status for c in cases), key=lambda s: SEVERITY[s])
    return replace(_question(question, status, score, _code_feedback(cases, passed), cases), flag=flag)


PUBLIC_ONLY = ("passes only the published cases: `{function}` failed every hidden case, so its published "
               "cases earn nothing either")


def _public_only(cases: tuple[CaseResult, ...]) -> tuple[tuple[CaseResult, ...], str | None]:
    flagged = []
    for function in dict.fromkeys(c.function for c in cases):
        own = [c for c in cases if c.function == function]
        hidden = [c for c in own if not c.public]
        public_passed = [c for c in own if c.public and c.status is Status.PASSED]
        if hidden and public_passed and all(c.status in (Status.FAILED, Status.ERROR) for c in hidden):
            flagged.append(function)
    if not flagged:
        return cases, None
    message = ("this function passes the published cases but fails every hidden one, so these earn nothing; "
               "make it compute the result for any input")
    cases = tuple(replace(c, status=Status.FAILED, message=message, note=None)
                  if c.function in flagged and c.public and c.status is Status.PASSED else c for c in cases)
    return cases, "; ".join(PUBLIC_ONLY.format(function=f) for f in flagged)


def _code_feedback(cases: tuple[CaseResult, ...], passed: int) -> str:
    total = len(cases)
    carried = sorted({c.note for c in cases if c.carried_forward and c.note})
    if passed == total:
        notes = sorted({c.note for c in cases if c.note and not c.carried_forward})
        return "\n".join(["The check passed." if total == 1 else f"All {total} checks passed.", *notes, *carried])
    failing = [c for c in cases if c.status is not Status.PASSED]
    first = max(failing, key=lambda c: SEVERITY[c.status])
    if all(c.status is Status.MISSING for c in failing) and passed == 0:
        return first.message
    hints = sorted({c.hint for c in cases if c.hint})
    lines = [f"{passed} of {total} checks passed. {first.function}: {first.message}"]
    lines += [f"Hint: {h}" for h in hints if h not in first.message]
    lines += carried
    return "\n".join(lines)


def score_written_question(question: Question, answer: str | None, rule: BonusRule) -> QuestionResult:
    """A written answer: missing, or pending review with a provisional suggestion (or auto-accepted)."""
    if not answer:
        return _question(question, Status.MISSING, 0.0,
                         f"No answer found for {question.id}. Write it in the markdown cell headed "
                         f"'### Answer {question.id}'.", ())
    words = count_words(answer)
    hits = {number for _, _, number in find_concepts(answer, question.rubric)}
    found = tuple(concept.name for number, concept in enumerate(question.rubric) if number in hits)
    long_enough = words >= question.min_words
    opinion = suggest(question, answer, hits)
    suggestion = f"{opinion.verdict}: {opinion.reason}"
    accepted = rule.written == WrittenMode.AUTO and long_enough and len(found) >= rule.auto_min_concepts
    status = Status.PASSED if accepted else Status.PENDING
    score = question.points if accepted else 0.0
    if accepted:
        feedback = f"Answer accepted automatically ({words} words; mentions {', '.join(found)})."
    else:
        feedback = f"Answer found ({words} words); it awaits the instructor's review."
        if not long_enough:
            feedback += f" It is shorter than the {question.min_words} words expected."
    return replace(_question(question, status, score, feedback, ()), answer=answer,
                   suggestion=suggestion, concepts_found=found)


def count_words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def concepts_found(question: Question, text: str) -> tuple[str, ...]:
    """Rubric concepts whose name or a synonym appears in the text (case-insensitive, whole words)."""
    found = {number for _, _, number in find_concepts(text, question.rubric)}
    return tuple(concept.name for number, concept in enumerate(question.rubric) if number in found)


# --------------------------------------------------------------------------- rubric matching and suggestion
# (shared by the automatic feedback and the review app, so both read an answer the same way)


@dataclass(frozen=True)
class Suggestion:
    verdict: Literal["accept", "check", "reject"]  # provisional: the person decides
    points: float
    reason: str


def _concept_pattern(concept: Concept) -> re.Pattern:
    words = sorted({s.strip() for s in concept.synonyms if s.strip()}, key=len, reverse=True)
    alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?:s|es)?(?!\w)", re.IGNORECASE)


def find_concepts(text: str, rubric: tuple[Concept, ...]) -> list[tuple[int, int, int]]:
    """(start, end, concept index) of every rubric word in text: case-insensitive, whole words."""
    spans = []
    for number, concept in enumerate(rubric):
        spans += [(m.start(), m.end(), number) for m in _concept_pattern(concept).finditer(text)]
    spans.sort(key=lambda s: (s[0], -s[1]))
    kept, end = [], -1
    for span in spans:
        if span[0] >= end:
            kept.append(span)
            end = span[1]
    return kept


def suggest(question: Question, text: str, found: set[int]) -> Suggestion:
    """A first opinion from rubric hits and length against min_words."""
    words = count_words(text)
    total = len(question.rubric)
    needed = max(1, math.ceil(total / 2)) if total else 0
    if not words:
        return Suggestion("reject", 0.0, "no answer")
    if question.min_words and words < question.min_words / 2:
        return Suggestion("reject", 0.0, f"{words} words, far below the {question.min_words} expected")
    short = question.min_words and words < question.min_words
    if total == 0:
        return Suggestion("check" if short else "accept", 0.0 if short else question.points,
                          f"{words} words" + (f" (< {question.min_words})" if short else ""))
    points = round(question.points * min(1.0, len(found) / needed) * 2) / 2
    reason = f"{len(found)} of {total} concepts, {words} words" + (f" (< {question.min_words})" if short else "")
    if len(found) >= needed and not short:
        return Suggestion("accept", question.points, reason)
    return Suggestion("check" if found else "reject", points, reason)


def _question(question: Question, status: Status, score: float, feedback: str, cases: tuple) -> QuestionResult:
    return QuestionResult(question_id=question.id, kind=question.kind, title=question.title, status=status,
                          score=score, max_score=question.points, bonus=question.bonus, feedback=feedback,
                          cases=cases)


def apply_decision(question: Question, result: QuestionResult, decision: ManualDecision) -> QuestionResult:
    """A person's verdict overrides the automatic one for that question.

    The decision's meaning is :attr:`ManualDecision.verdict`, the same the review app shows: accepted
    (full points unless a score is given), rejected (zero unless a score is given), points only
    (passed with more than zero), or open — a comment alone, which keeps the automatic verdict.
    """
    verdict = decision.verdict
    if verdict is DecisionVerdict.OPEN:
        feedback = result.feedback + (f"\nComment: {decision.comment}" if decision.comment else "")
        return replace(result, feedback=feedback, comment=decision.comment)
    if decision.score is not None:
        score = max(0.0, min(float(decision.score), question.points))
    else:
        score = question.points if verdict is DecisionVerdict.ACCEPTED else 0.0
    if verdict is DecisionVerdict.POINTS:
        status = Status.PASSED if score > 0 else Status.FAILED
    else:
        status = Status.PASSED if verdict is DecisionVerdict.ACCEPTED else Status.FAILED
    word = "accepted" if status is Status.PASSED else "not accepted"
    feedback = f"Reviewed: {word} ({score:g} of {question.points:g} points)."
    if decision.comment:
        feedback += f"\nComment: {decision.comment}"
    return replace(result, status=status, score=round(score, 2), feedback=feedback, manual=True,
                   comment=decision.comment)


def decide_bonus(questions: dict[str, QuestionResult], rule: BonusRule, mode: Mode | str = Mode.GRADE) -> BonusDecision:
    """The bonus decision with its reason, in one sentence."""
    counted = [q for q in questions.values() if q.bonus]
    if not counted:
        return BonusDecision(BonusState.NOT_APPLICABLE, "This assignment has no bonus questions.")
    accepted = [q.question_id for q in counted if q.status is Status.PASSED]
    missing = [q.question_id for q in counted if q.status is Status.MISSING]
    pending = [q.question_id for q in counted if q.status is Status.PENDING]
    rejected = [q.question_id for q in counted if q.status not in (Status.PASSED, Status.MISSING, Status.PENDING)]
    needed = len(counted) if rule.rule == BonusRuleName.ALL else min(rule.minimum, len(counted))
    if len(accepted) >= needed:
        what = f"all {_count_word(len(counted))} required answers" if rule.rule == BonusRuleName.ALL else \
            f"{len(accepted)} of the {needed} required answers"
        return BonusDecision(BonusState.AWARDED, f"Bonus awarded: {what} accepted.")
    if len(accepted) + len(pending) < needed:
        problems = []
        if missing:
            problems.append(f"{_join(missing)} {'is' if len(missing) == 1 else 'are'} unanswered")
        if rejected:
            problems.append(f"{_join(rejected)} {'was' if len(rejected) == 1 else 'were'} not accepted")
        return BonusDecision(BonusState.NOT_AWARDED, f"Not yet: {'; '.join(problems)}.")
    if mode == Mode.CHECK:
        return BonusDecision(BonusState.PENDING, f"Bonus pending: the answers to {_join(pending)} are there; the "
                                                 "instructor reviews them when grading.")
    return BonusDecision(BonusState.PENDING, f"Bonus pending: {_join(pending)} await{'s' if len(pending) == 1 else ''} "
                                             "the instructor's review.")


def _count_word(n: int) -> str:
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    return words[n] if n < len(words) else str(n)


def _join(ids: list[str]) -> str:
    return ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + " and " + ids[-1]


def totals(questions: dict[str, QuestionResult]) -> tuple[float, float]:
    return (round(sum(q.score for q in questions.values()), 2),
            round(sum(q.max_score for q in questions.values()), 2))


def finalise(result: SubmissionResult, assignment: Assignment) -> SubmissionResult:
    """Recompute totals and the bonus from the question results."""
    score, max_score = totals(result.questions)
    bonus = decide_bonus(result.questions, assignment.bonus, result.mode)
    if result.error:
        bonus = BonusDecision(BonusState.NOT_AWARDED,
                              f"Not yet: the submission could not be graded ({result.error.splitlines()[0]}).")
    return replace(result, score=score, max_score=max_score, bonus=bonus)


def apply_decisions(result: SubmissionResult, assignment: Assignment,
                    decisions: dict[str, ManualDecision]) -> SubmissionResult:
    """The result with every manual decision applied, totals and bonus recomputed."""
    questions = dict(result.questions)
    for question_id, decision in decisions.items():
        if question_id in questions:
            questions[question_id] = apply_decision(assignment.question(question_id), questions[question_id], decision)
    return finalise(replace(result, questions=questions), assignment)

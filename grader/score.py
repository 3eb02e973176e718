"""Scoring: pure functions from case results, answers and manual decisions to points and the bonus.

Nothing here runs code or touches files; the same inputs always give the same SubmissionResult, so
regrading, reviewing and re-rendering can recompute scores at any time.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable

from .assignment import Assignment, BonusRule, Question
from .results import SEVERITY, BonusDecision, CaseResult, ManualDecision, QuestionResult, Status, SubmissionResult


def score_code_question(question: Question, cases: Iterable[CaseResult]) -> QuestionResult:
    """Points in proportion to the cases passed; the status is the most severe case status."""
    cases = tuple(cases)
    if not cases:
        return _question(question, Status.PENDING, 0.0, "No cases were run for this question.", cases)
    passed = sum(c.status is Status.PASSED for c in cases)
    score = round(question.points * passed / len(cases), 2)
    status = max((c.status for c in cases), key=lambda s: SEVERITY[s])
    return _question(question, status, score, _code_feedback(cases, passed), cases)


def _code_feedback(cases: tuple[CaseResult, ...], passed: int) -> str:
    total = len(cases)
    if passed == total:
        notes = sorted({c.note for c in cases if c.note})
        return "\n".join(["The check passed." if total == 1 else f"All {total} checks passed.", *notes])
    failing = [c for c in cases if c.status is not Status.PASSED]
    first = max(failing, key=lambda c: SEVERITY[c.status])
    if all(c.status is Status.MISSING for c in failing) and passed == 0:
        return first.message
    hints = sorted({c.hint for c in failing if c.hint})
    lines = [f"{passed} of {total} checks passed. {first.function}: {first.message}"]
    lines += [f"Hint: {h}" for h in hints if h not in first.message]
    return "\n".join(lines)


def score_written_question(question: Question, answer: str | None, rule: BonusRule) -> QuestionResult:
    """A written answer: missing, or pending review with a provisional suggestion (or auto-accepted)."""
    if not answer:
        return _question(question, Status.MISSING, 0.0,
                         f"No answer found for {question.id}. Write it in the markdown cell headed "
                         f"'### Answer {question.id}'.", ())
    words = count_words(answer)
    found = concepts_found(question, answer)
    long_enough = words >= question.min_words
    suggestion = _suggestion(question, words, found, long_enough)
    accepted = rule.written == "auto" and long_enough and len(found) >= rule.auto_min_concepts
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


def _suggestion(question: Question, words: int, found: tuple[str, ...], long_enough: bool) -> str:
    total = len(question.rubric)
    if not long_enough:
        return f"review closely: {words} words, fewer than the {question.min_words} expected"
    if total and not found:
        return "review closely: none of the rubric concepts appear"
    return f"likely accept: {words} words, {len(found)} of {total} rubric concepts" if total else f"{words} words"


def count_words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def concepts_found(question: Question, text: str) -> tuple[str, ...]:
    """Rubric concepts whose name or a synonym appears in the text (case-insensitive, whole words)."""
    lowered = text.lower()
    return tuple(
        concept.name for concept in question.rubric
        if any(_mentions(lowered, synonym.lower()) for synonym in concept.synonyms)
    )


def _mentions(text: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase).replace(r"\ ", r"[\s\-]+") + r"(?!\w)", text) is not None


def _question(question: Question, status: Status, score: float, feedback: str, cases: tuple) -> QuestionResult:
    return QuestionResult(question_id=question.id, kind=question.kind, title=question.title, status=status,
                          score=score, max_score=question.points, bonus=question.bonus, feedback=feedback,
                          cases=cases)


def apply_decision(question: Question, result: QuestionResult, decision: ManualDecision) -> QuestionResult:
    """A person's verdict overrides the automatic one for that question."""
    if decision.score is not None:
        score = max(0.0, min(float(decision.score), question.points))
    else:
        score = question.points if decision.accepted else 0.0 if decision.accepted is False else result.score
    if decision.accepted is None:
        status = Status.PASSED if score >= question.points else Status.FAILED if score == 0 else Status.PASSED
    else:
        status = Status.PASSED if decision.accepted else Status.FAILED
    verdict = "accepted" if status is Status.PASSED else "not accepted"
    feedback = f"Reviewed: {verdict} ({score:g} of {question.points:g} points)."
    if decision.comment:
        feedback += f"\nComment: {decision.comment}"
    return replace(result, status=status, score=round(score, 2), feedback=feedback, manual=True,
                   comment=decision.comment)


def decide_bonus(questions: dict[str, QuestionResult], rule: BonusRule, mode: str = "grade") -> BonusDecision:
    """The bonus decision with its reason, in one sentence."""
    counted = [q for q in questions.values() if q.bonus]
    if not counted:
        return BonusDecision(None, "This assignment has no bonus questions.")
    accepted = [q.question_id for q in counted if q.status is Status.PASSED]
    missing = [q.question_id for q in counted if q.status is Status.MISSING]
    pending = [q.question_id for q in counted if q.status is Status.PENDING]
    rejected = [q.question_id for q in counted if q.status not in (Status.PASSED, Status.MISSING, Status.PENDING)]
    needed = len(counted) if rule.rule == "all" else min(rule.minimum, len(counted))
    if len(accepted) >= needed:
        what = f"all {_count_word(len(counted))} required answers" if rule.rule == "all" else \
            f"{len(accepted)} of the {needed} required answers"
        return BonusDecision(True, f"Bonus awarded: {what} accepted.")
    if len(accepted) + len(pending) < needed:
        problems = []
        if missing:
            problems.append(f"{_join(missing)} {'is' if len(missing) == 1 else 'are'} unanswered")
        if rejected:
            problems.append(f"{_join(rejected)} {'was' if len(rejected) == 1 else 'were'} not accepted")
        return BonusDecision(False, f"Not yet: {'; '.join(problems)}.")
    if mode == "check":
        return BonusDecision(None, f"Bonus pending: the answers to {_join(pending)} are there; the instructor reviews "
                                   "them when grading.")
    return BonusDecision(None, f"Bonus pending: {_join(pending)} await{'s' if len(pending) == 1 else ''} the "
                               "instructor's review.")


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
        bonus = BonusDecision(False, f"Not yet: the submission could not be graded ({result.error.splitlines()[0]}).")
    return replace(result, score=score, max_score=max_score, bonus=bonus)


def apply_decisions(result: SubmissionResult, assignment: Assignment,
                    decisions: dict[str, ManualDecision]) -> SubmissionResult:
    """The result with every manual decision applied, totals and bonus recomputed."""
    questions = dict(result.questions)
    for question_id, decision in decisions.items():
        if question_id in questions:
            questions[question_id] = apply_decision(assignment.question(question_id), questions[question_id], decision)
    return finalise(replace(result, questions=questions), assignment)

"""Scoring is a pure function: points, statuses, the bonus decision and its reason."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from grader.assignment import BonusRule, Concept, Question
from grader.results import CaseResult, ManualDecision, QuestionResult, Status
from grader.score import apply_decision, concepts_found, decide_bonus, score_code_question, score_written_question

WRITTEN = Question(id="2.1", kind="written", title="Core idea", prompt="", points=1.0, bonus=True, min_words=5,
                   rubric=(Concept("frozen weights", ("frozen", "freeze", "kept fixed")),
                           Concept("few parameters", ("few parameters", "small number of parameters"))))
CODE = Question(id="4.2a", kind="code", title="softmax", prompt="", points=2.0, bonus=False, functions=("softmax",))


def case(status: Status, message: str = "", hint: str | None = None) -> CaseResult:
    return CaseResult(case_id="c", function="softmax", public=True, status=status, message=message, hint=hint)


def written(question_id: str, status: Status) -> QuestionResult:
    return QuestionResult(question_id, "written", question_id, status, 0.0, 1.0, True, "")


def test_code_points_in_proportion_and_most_severe_status():
    result = score_code_question(CODE, [case(Status.PASSED), case(Status.FAILED, "wrong", hint="Subtract the max."),
                                        case(Status.TIMEOUT, "too slow"), case(Status.PASSED)])
    assert result.score == 1.0 and result.status is Status.TIMEOUT
    assert result.feedback.startswith("2 of 4 checks passed.") and "Hint: Subtract the max." in result.feedback
    assert score_code_question(CODE, [case(Status.PASSED)] * 3).status is Status.PASSED


def test_written_answer_pending_with_rubric_and_auto_mode():
    answer = "PEFT keeps the pretrained weights frozen and trains a small number of parameters."
    pending = score_written_question(WRITTEN, answer, BonusRule(written="review"))
    assert pending.status is Status.PENDING and pending.score == 0
    assert pending.concepts_found == ("frozen weights", "few parameters")
    assert pending.suggestion.startswith("accept: 2 of 2 concepts")
    auto = score_written_question(WRITTEN, answer, BonusRule(written="auto"))
    assert auto.status is Status.PASSED and auto.score == 1.0
    short = score_written_question(WRITTEN, "Freeze it.", BonusRule(written="auto"))
    assert short.status is Status.PENDING and "shorter" in short.feedback
    assert score_written_question(WRITTEN, None, BonusRule()).status is Status.MISSING


def test_concepts_match_whole_words_only():
    assert concepts_found(WRITTEN, "unfrozen") == ()
    assert concepts_found(WRITTEN, "The weights are kept\nfixed.") == ("frozen weights",)


def test_bonus_reasons():
    rule = BonusRule(rule="all")
    ids = ["2.1", "2.2", "2.3", "3.1", "3.2", "3.3"]
    all_passed = {q: written(q, Status.PASSED) for q in ids}
    assert decide_bonus(all_passed, rule).reason == "Bonus awarded: all six required answers accepted."
    two_missing = dict(all_passed, **{"2.3": written("2.3", Status.MISSING), "3.2": written("3.2", Status.MISSING)})
    decision = decide_bonus(two_missing, rule)
    assert decision.awarded is False and decision.reason == "Not yet: 2.3 and 3.2 are unanswered."
    pending = dict(all_passed, **{"2.1": written("2.1", Status.PENDING)})
    assert decide_bonus(pending, rule).awarded is None and "2.1 awaits" in decide_bonus(pending, rule).reason
    at_least = BonusRule(rule="at_least", minimum=5)
    assert decide_bonus(dict(all_passed, **{"3.3": written("3.3", Status.FAILED)}), at_least).awarded is True


@given(st.floats(min_value=-5, max_value=5, allow_nan=False), st.booleans())
def test_manual_score_is_clamped_to_the_question(score, accepted):
    base = score_written_question(WRITTEN, "frozen weights, few parameters, adapted", BonusRule())
    decided = apply_decision(WRITTEN, base, ManualDecision("2.1", accepted=accepted, score=score, comment="ok"))
    assert 0.0 <= decided.score <= WRITTEN.points and decided.manual
    assert decided.status is (Status.PASSED if accepted else Status.FAILED)


def test_bonus_is_an_explicit_state_and_json_keeps_awarded():
    from grader.results import BonusDecision, BonusState

    code_only = {"4.2a": score_code_question(CODE, [case(Status.PASSED)])}
    decision = decide_bonus(code_only, BonusRule())
    assert decision.state is BonusState.NOT_APPLICABLE and decision.awarded is None
    assert not decision.reason.startswith("Bonus pending")
    ids = ["2.1", "2.2"]
    assert decide_bonus({q: written(q, Status.PASSED) for q in ids}, BonusRule()).state is BonusState.AWARDED
    assert decide_bonus({q: written(q, Status.PENDING) for q in ids}, BonusRule()).state is BonusState.PENDING
    assert decide_bonus({q: written(q, Status.MISSING) for q in ids}, BonusRule()).state is BonusState.NOT_AWARDED
    # older results.json files have only `awarded`: read back into the same states
    assert BonusDecision.from_dict({"awarded": True, "reason": ""}).state is BonusState.AWARDED
    assert BonusDecision.from_dict({"awarded": None, "reason": "This assignment has no bonus questions."}).state \
        is BonusState.NOT_APPLICABLE


def test_a_comment_alone_keeps_the_answer_open_as_the_review_app_shows_it():
    from grader.results import DecisionVerdict

    base = score_written_question(WRITTEN, "frozen weights, few parameters, adapted to the task", BonusRule())
    comment_only = ManualDecision("2.1", accepted=None, score=None, comment="Please expand on the second point.")
    assert comment_only.verdict is DecisionVerdict.OPEN and not comment_only.decided
    kept = apply_decision(WRITTEN, base, comment_only)
    assert kept.status is Status.PENDING and kept.score == 0 and not kept.manual
    assert kept.comment == "Please expand on the second point." and "Comment:" in kept.feedback
    points = apply_decision(WRITTEN, base, ManualDecision("2.1", accepted=None, score=0.5))
    assert points.status is Status.PASSED and points.score == 0.5


def test_passing_only_the_published_cases_earns_nothing_and_is_flagged():
    def one(public: bool, status: Status, function: str = "softmax") -> CaseResult:
        return CaseResult(case_id=f"c{public}{status}", function=function, public=public, status=status, message="")

    table = [one(True, Status.PASSED), one(True, Status.PASSED), one(False, Status.FAILED), one(False, Status.ERROR)]
    result = score_code_question(CODE, table)
    assert result.score == 0 and "published cases" in result.flag
    honest = [one(True, Status.PASSED), one(False, Status.PASSED), one(False, Status.FAILED)]
    assert score_code_question(CODE, honest).flag is None and score_code_question(CODE, honest).score > 0
    # in `grader check` there are no hidden cases: nothing to flag
    assert score_code_question(CODE, [one(True, Status.PASSED)]).flag is None

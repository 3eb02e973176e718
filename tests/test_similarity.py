"""Copied work: renamed copies are flagged, independent solutions are not, the template is ignored."""

from __future__ import annotations

import time

import pytest
import review_fixtures as fx

from grader.similarity import code_units, similar_pairs


@pytest.fixture(scope="module")
def course():
    return fx.build_course(120)


def _key(pair) -> frozenset:
    return frozenset((pair.student_a, pair.student_b))


def test_normalised_tokens_ignore_names_literals_comments_and_layout():
    a, _ = code_units("def f(x):\n    # square it\n    return x * 2  # twice\n")
    b, _ = code_units("def   g(value):\n\n    return value*3\n")
    assert a == b == ["def", "ID", "(", "ID", ")", ":", "return", "ID", "*", "LIT"]
    broken, _ = code_units("def f(:\n    return (1,\n")  # a half-finished cell still yields tokens
    assert broken[:3] == ["def", "ID", "("]


def test_copied_code_with_renamed_variables_is_flagged(course):
    pairs = [p for p in similar_pairs(course.code, {}, fx.TEMPLATE_CODE) if p.kind == "code"]
    flagged = {_key(p) for p in pairs}
    for a, b in course.copied_code:
        assert frozenset((a, b)) in flagged
    assert flagged == {frozenset(p) for p in course.copied_code}  # and no independent pair
    pair = pairs[0]
    assert pair.similarity >= 0.9 and pair.passages
    text_a, text_b = pair.passages[0]
    assert text_a != text_b and "def " in text_a  # the students' own text, side by side


def test_independent_solutions_score_much_lower(course):
    copied = {frozenset(p) for p in course.copied_code}
    pairs = similar_pairs(course.code, {}, fx.TEMPLATE_CODE, threshold=0.0)
    independent = [p.similarity for p in pairs if p.kind == "code" and _key(p) not in copied]
    copies = [p.similarity for p in pairs if p.kind == "code" and _key(p) in copied]
    print(f"\ncopies {min(copies):.2f}..{max(copies):.2f}; independent max {max(independent):.2f}, "
          f"mean {sum(independent) / len(independent):.2f}")
    assert max(independent) < 0.8 <= min(copies)
    assert sum(independent) / len(independent) < 0.4


def test_template_code_is_ignored():
    """Two students who only filled in the template's stubs trivially do not share the template."""
    body_a = "\n".join(["import numpy as np", "", "", "def softmax(x):",
                        '    """Row-wise softmax of a 2-D array; subtract the row maximum for stability."""',
                        "    z = np.exp(x - x.max(axis=1, keepdims=True))", "    return z / z.sum(axis=1, keepdims=True)"])
    body_b = body_a.replace("z = np.exp(x - x.max(axis=1, keepdims=True))", "for i in range(len(x)):\n        x[i] = np.exp(x[i]) / np.exp(x[i]).sum()").replace(
        "return z / z.sum(axis=1, keepdims=True)", "return x")
    template_heavy = {"a": fx.TEMPLATE_CODE + "\n" + body_a, "b": fx.TEMPLATE_CODE + "\n" + body_b}
    with_template = similar_pairs(template_heavy, {}, fx.TEMPLATE_CODE, threshold=0.0)
    without = similar_pairs(template_heavy, {}, "", threshold=0.0)
    print(f"\nwithout the template {without[0].similarity:.2f}, with it "
          f"{with_template[0].similarity if with_template else 0:.2f}")
    assert without and without[0].similarity > 0.3  # the stubs alone make them look alike
    assert not with_template or with_template[0].similarity < without[0].similarity / 3
    for pair in with_template:
        for text_a, _ in pair.passages:
            assert text_a.strip() not in fx.TEMPLATE_CODE  # never a stretch of the template alone


def test_near_identical_answers_are_flagged(course):
    pairs = similar_pairs({}, course.answers, template_answers=course.template_answers)
    flagged = {(_key(p), p.kind) for p in pairs}
    for a, b, question in course.answer_twins:
        assert (frozenset((a, b)), f"answer {question}") in flagged
    ring = course.answer_ring
    for i in range(len(ring)):
        for j in range(i + 1, len(ring)):
            assert (frozenset((ring[i], ring[j])), "answer 2.1") in flagged
    twin = next(p for p in pairs if (_key(p), p.kind) == (frozenset(course.answer_twins[0][:2]), "answer 2.1"))
    assert twin.passages and len(twin.passages[0][0].split()) >= 5
    planted = len(course.answer_twins) + 6
    assert len(pairs) < planted + 0.01 * len(course.answers) ** 2 / 2 * 7  # accidental ones stay rare


def test_short_and_template_answers_are_not_compared():
    answers = {s: {"2.1": "Your answer here."} for s in "abcd"}
    answers["e"] = {"2.1": "yes"}
    answers["f"] = {"2.1": "yes"}
    assert similar_pairs({}, answers, template_answers={"2.1": "### Answer 2.1\nYour answer here."}) == []


def test_two_hundred_students_are_fast():
    course = fx.build_course(200, seed=5)
    start = time.perf_counter()
    pairs = similar_pairs(course.code, course.answers, fx.TEMPLATE_CODE, course.template_answers)
    elapsed = time.perf_counter() - start
    print(f"\n200 students, code + 7 written answers: {elapsed:.2f} s, {len(pairs)} pairs flagged")
    assert elapsed < 10
    assert {frozenset(p) for p in course.copied_code} <= {_key(p) for p in pairs if p.kind == "code"}

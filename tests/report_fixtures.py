"""Builders of realistic results for the report and export tests (Exercise 1, PEFT).

Each builder returns a SubmissionResult as the pipeline would produce it; ``assignment()`` is a small
student-bundle-like Assignment (no reference) with the exercise's sections and a subset of questions.
"""

from __future__ import annotations

import random
from dataclasses import replace

from grader.assignment import Assignment, Concept, Question, Section
from grader.results import (
    ArrayDiff,
    BonusDecision,
    CaseResult,
    CellResult,
    QuestionResult,
    SimilarPair,
    Status,
    SubmissionResult,
)

SCRIPT_ANSWER = (
    "PEFT trains only a few parameters.\n\n"
    "<script>window.__pwned = 1; alert(1)</script>\n\n"
    '<img src=x onerror="window.__pwned = 2; alert(2)">\n\n'
    "[click me](javascript:alert(3)) and **bold** text with `code`.\n\n"
    "![tracker](http://127.0.0.1:9/track.png)"
)
HIDDEN_MARKER = 987654.321  # a value that must never appear in a student-facing report
HIDDEN_INPUT_MARKER = 13579.2468

ENCODER_EXPECTED = [[0.5448, 2.3451, 1.7216], [6.6879, 14.9026, 9.7301], [0.5152, 7.0498, 4.9465]]
ENCODER_RECEIVED = [[0.5448, 2.3451, 1.7216], [6.6879, 14.9026, 9.7301], [0.9152, 7.0498, 5.1465]]
X_SHEET = [[1.0, 0.0, 1.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0]]


def assignment() -> Assignment:
    sections = (
        Section("2", "2. Parameter-efficient fine-tuning"),
        Section("3", "3. LoRA, prefix-tuning and adapters"),
        Section("4", "4. Implementing it (not required for the bonus)"),
    )
    written = [
        ("2.1", "Core idea of PEFT", "2"), ("2.2", "Key advantages of PEFT", "2"),
        ("2.3", "Potential disadvantages", "2"), ("3.1", "Modelling", "3"),
        ("3.2", "Implementation and ease of use", "3"), ("3.3", "Inference", "3"),
    ]
    questions = [
        Question(id=qid, kind="written", title=title, prompt=f"Explain: {title.lower()}.", points=1.0,
                 bonus=True, section=section, min_words=20,
                 rubric=(Concept("frozen weights", ("frozen",)), Concept("few parameters", ("few",))))
        for qid, title, section in written
    ]
    questions += [
        Question(id="4.1a", kind="code", title="project", prompt="", points=1.0, bonus=False, section="4",
                 functions=("project",)),
        Question(id="4.2a", kind="code", title="softmax", prompt="", points=1.0, bonus=False, section="4",
                 functions=("softmax",)),
        Question(id="4.2b", kind="code", title="self_attention", prompt="", points=1.0, bonus=False, section="4",
                 functions=("self_attention",)),
        Question(id="4.2d", kind="code", title="encoder_layer", prompt="", points=2.0, bonus=False, section="4",
                 functions=("encoder_layer",)),
        Question(id="4.3c", kind="code", title="lora_projection", prompt="", points=1.0, bonus=False, section="4",
                 functions=("lora_projection",)),
    ]
    return Assignment(id="ex01-peft", title="Exercise 1 — Parameter-efficient fine-tuning", version="a1b2c3",
                      questions=tuple(questions), sections=sections)


def _written(qid: str, title: str, answer: str | None = "Only a **small** set of parameters is trained; the "
             "pretrained weights stay frozen.", status: Status = Status.PASSED, score: float = 1.0,
             comment: str | None = None) -> QuestionResult:
    feedback = {Status.PASSED: "Accepted.", Status.PENDING: "Awaiting review by the instructor.",
                Status.MISSING: "No answer found: add a markdown cell tagged answer-" + qid + "."}.get(status, "Not accepted.")
    return QuestionResult(qid, "written", title, status, score, 1.0, True, feedback, answer=answer,
                          suggestion="likely acceptable (names 2 of 2 concepts, 24 words)" if answer else None,
                          concepts_found=("frozen weights", "few parameters") if answer else (),
                          manual=status == Status.PASSED, comment=comment)


def _passed_code(qid: str, title: str, function: str, points: float = 1.0, cases: int = 3) -> QuestionResult:
    return QuestionResult(
        qid, "code", title, Status.PASSED, points, points, False, f"All {cases} cases pass.",
        cases=tuple(CaseResult(f"{qid}/{'sheet' if i == 0 else f'hidden-{i}'}", function, i == 0, Status.PASSED, "ok",
                               input_shapes={"X": [3, 3]}) for i in range(cases)),
    )


def _written_all(status: Status = Status.PASSED, score: float = 1.0) -> dict[str, QuestionResult]:
    titles = {q.id: q.title for q in assignment().questions if q.kind == "written"}
    return {qid: _written(qid, t, status=status, score=score) for qid, t in titles.items()}


def _code_all() -> dict[str, QuestionResult]:
    return {
        "4.1a": _passed_code("4.1a", "project", "project"),
        "4.2a": _passed_code("4.2a", "softmax", "softmax"),
        "4.2b": _passed_code("4.2b", "self_attention", "self_attention"),
        "4.2d": _passed_code("4.2d", "encoder_layer", "encoder_layer", points=2.0),
        "4.3c": _passed_code("4.3c", "lora_projection", "lora_projection"),
    }


def _submission(student: str, questions: dict[str, QuestionResult], bonus: BonusDecision, **kw) -> SubmissionResult:
    order = [q.id for q in assignment().questions]
    ordered = {qid: questions[qid] for qid in order if qid in questions}
    fields = dict(
        student=student, file=f"submissions/{student}/exercise01.ipynb", assignment="ex01-peft",
        isolation="namespaces", error=None, questions=ordered, bonus=bonus,
        score=sum(q.score for q in ordered.values()), max_score=12.0, mode="grade",
        content_hash="9f2c4e1d7b3a5f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718",
        assignment_version="a1b2c3", graded_at="2024-06-14T10:05:00Z", duration=4.2,
    )
    fields.update(kw)
    return SubmissionResult(**fields)


def perfect(student: str = "anna.k") -> SubmissionResult:
    return _submission(student, {**_written_all(), **_code_all()},
                       BonusDecision(True, "all six required answers accepted"))


def wrong_matrix(student: str = "ben.m") -> SubmissionResult:
    wrong_case = CaseResult(
        "4.2d/sheet-encoder", "encoder_layer", True, Status.FAILED,
        "2 of 9 entries differ from the expected output (first at [2, 0])",
        details="expected 0.5152 at [2, 0], got 0.9152 (rtol=1e-05, atol=1e-08)",
        diff=ArrayDiff((3, 3), 0.4, 0.7764, 2, (2, 0), ENCODER_EXPECTED, ENCODER_RECEIVED,
                       [[False] * 3, [False] * 3, [True, False, True]]),
        matched="missing-ffn-residual", hint="This matches an encoder layer without the second residual "
        "connection: add Z to the feed-forward output.",
        inputs={"X": X_SHEET, "W_q": X_SHEET, "causal": False}, input_shapes={"X": [3, 3], "W_q": [3, 3], "causal": None},
    )
    hidden = CaseResult(
        "4.2d/hidden-2", "encoder_layer", False, Status.FAILED,
        "5 of 20 entries differ from the expected output (first at [0, 1])",
        diff=ArrayDiff((4, 5), 2.5, 0.31, 5, (0, 1)),
        matched="missing-ffn-residual", hint="This matches an encoder layer without the second residual "
        "connection: add Z to the feed-forward output.", input_shapes={"X": [4, 5], "W_q": [5, 2]},
    )
    alt = CaseResult("4.2a/sheet", "softmax", True, Status.PASSED, "ok", matched="float32",
                     note="Computed in float32: accepted, within the float32 tolerance.")
    code = _code_all()
    code["4.2d"] = QuestionResult("4.2d", "code", "encoder_layer", Status.FAILED, 0.0, 2.0, False,
                                  "Wrong output in 2 of 3 cases.\nThe first differing entry is shown below.",
                                  cases=(wrong_case, hidden, code["4.2d"].cases[2]))
    code["4.2a"] = replace(code["4.2a"], cases=(alt,) + code["4.2a"].cases[1:])
    return _submission(student, {**_written_all(), **code}, BonusDecision(True, "all six required answers accepted"))


def errors_and_timeouts(student: str = "carl.o") -> SubmissionResult:
    tb = ('  File "exercise01.ipynb", cell 7, line 4, in self_attention\n'
          "    scores = Q @ K / np.sqrt(d_k)\n"
          "ValueError: matmul: Input operand 1 has a mismatch in its core dimension 0 (size 2 is different from 3)")
    code = _code_all()
    code["4.2b"] = QuestionResult("4.2b", "code", "self_attention", Status.ERROR, 0.0, 1.0, False,
                                  "self_attention raised ValueError in 3 of 3 cases.",
                                  cases=(CaseResult("4.2b/sheet", "self_attention", True, Status.ERROR,
                                                    "ValueError: matmul: Input operand 1 has a mismatch",
                                                    traceback=tb, output="debug: Q shape (3, 2)\n" * 400,
                                                    inputs={"X": X_SHEET}, input_shapes={"X": [3, 3]}),))
    code["4.2d"] = QuestionResult("4.2d", "code", "encoder_layer", Status.TIMEOUT, 0.0, 2.0, False,
                                  "encoder_layer ran longer than 10 s and was stopped.",
                                  cases=(CaseResult("4.2d/sheet-encoder", "encoder_layer", True, Status.TIMEOUT,
                                                    "stopped after 10 s (call_timeout)", input_shapes={"X": [3, 3]}),))
    cells = (
        CellResult(2, "ok"),
        CellResult(3, "skipped", "shell command skipped", notes=("skipped shell command: !pip install torch",)),
        CellResult(5, "error", "SyntaxError: invalid syntax (cell 5, line 2)"),
        CellResult(9, "timeout", "cell ran longer than 30 s and was stopped"),
    )
    return _submission(student, {**_written_all(), **code}, BonusDecision(True, "all six required answers accepted"),
                       cells=cells)


def missing_function(student: str = "dora.p") -> SubmissionResult:
    code = _code_all()
    code["4.3c"] = QuestionResult("4.3c", "code", "lora_projection", Status.MISSING, 0.0, 1.0, False,
                                  "No function lora_projection found. Did you mean lora_proj? Rename it.",
                                  cases=(CaseResult("4.3c/sheet", "lora_projection", True, Status.MISSING,
                                                    "lora_projection is not defined (found: lora_proj)"),))
    written = _written_all()
    written["2.3"] = _written("2.3", "Potential disadvantages", answer=None, status=Status.MISSING, score=0.0)
    return _submission(student, {**written, **code}, BonusDecision(False, "Not yet: 2.3 is unanswered"))


def pending(student: str = "emil.r") -> SubmissionResult:
    written = _written_all(status=Status.PENDING, score=0.0)
    return _submission(student, {**written, **_code_all()},
                       BonusDecision(None, "pending: 6 written answers await review"))


def malicious(student: str = "eve.x") -> SubmissionResult:
    written = _written_all(status=Status.PENDING, score=0.0)
    written["2.1"] = _written("2.1", "Core idea of PEFT", answer=SCRIPT_ANSWER, status=Status.PENDING, score=0.0,
                              comment="<b>not bold</b> <script>window.__pwned = 4</script>")
    return _submission(student, {**written, **_code_all()}, BonusDecision(None, "pending: answers await review"),
                       file="<img src=x onerror=alert(5)>.ipynb")


def unreadable(student: str = "finn.s") -> SubmissionResult:
    return SubmissionResult(
        student=student, file=f"submissions/{student}/exercise01.ipynb", assignment="ex01-peft",
        isolation="namespaces", error="not a notebook: the file is not valid JSON (line 1, column 1); "
        "export it again from Jupyter", questions={}, bonus=BonusDecision(False, "the file could not be graded"),
        score=0.0, max_score=12.0,
    )


def reduced_isolation(student: str = "gina.t") -> SubmissionResult:
    return replace(perfect(student), isolation="process")


def hidden_values(student: str = "hugo.v") -> SubmissionResult:
    """A hidden case carrying values it must never show (the pipeline would not even send them)."""
    leaked = CaseResult(
        "4.2b/hidden-4", "self_attention", False, Status.FAILED, "3 of 6 entries differ",
        diff=ArrayDiff((2, 3), 0.5, 0.2, 3, (0, 0), [[HIDDEN_MARKER] * 3] * 2, [[HIDDEN_MARKER + 1] * 3] * 2,
                       [[True] * 3] * 2),
        inputs={"X": [[HIDDEN_INPUT_MARKER, 1.0]]}, input_shapes={"X": [2, 7], "W_q": [7, 4]},
    )
    code = _code_all()
    code["4.2b"] = QuestionResult("4.2b", "code", "self_attention", Status.FAILED, 0.0, 1.0, False,
                                  "Wrong output in 1 hidden case.", cases=(leaked,))
    return _submission(student, {**_written_all(), **code}, BonusDecision(True, "all six required answers accepted"))


def all_fixtures() -> list[SubmissionResult]:
    return [perfect(), wrong_matrix(), errors_and_timeouts(), missing_function(), pending(), malicious(),
            unreadable(), reduced_isolation(), hidden_values()]


def similar_pairs() -> list[SimilarPair]:
    return [SimilarPair("anna.k", "ben.m", "answer 2.1", 0.82,
                        (("Only a small set of parameters is trained", "Only a small set of parameters is trained"),)),
            SimilarPair("ben.m", "eve.x", "code", 0.61, (("<script>alert(9)</script>", "scores = Q @ K.T"),))]


def cohort(n: int, seed: int = 1) -> list[SubmissionResult]:
    """``n`` varied submissions (for the overview, the histogram and the benchmark)."""
    rng = random.Random(seed)
    builders = [perfect, wrong_matrix, errors_and_timeouts, missing_function, pending, reduced_isolation]
    weights = [5, 4, 1, 2, 2, 1]
    results = []
    for i in range(n):
        base = rng.choices(builders, weights)[0](f"student-{i:04d}")
        questions = dict(base.questions)
        for qid in rng.sample(sorted(questions), rng.randint(0, 3)):
            q = questions[qid]
            if q.status == Status.PASSED and q.kind == "code":
                questions[qid] = replace(q, status=Status.FAILED, score=0.0, feedback="Wrong output.")
        results.append(replace(base, questions=questions, score=sum(q.score for q in questions.values())))
    return results

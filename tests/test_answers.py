"""Written answers are found where students put them (issue 10 §1).

Each layout is a real notebook built with nbformat (mostly from the released template, as students
get it) or a real module, written to disk and loaded the way grading loads it. The rule under test: a
student's text is never silently lost; what cannot be placed with confidence comes back with a note,
and grading leaves it to the reviewer (pending), never "missing".
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nbformat
import pytest

from grader.answers import ANSWER_PLACEHOLDER
from grader.assignment import load_assignment
from grader.release import template_notebook
from grader.results import Status
from grader.submission import load_submission

ROOT = Path(__file__).resolve().parents[1]
WRITTEN = ("2.1", "2.2", "2.3", "3.1", "3.2", "3.3")
TEXT = {q: f"My answer to {q}: PEFT freezes the pretrained model and trains a few added parameters "
           f"(adapters, prefixes, LoRA), so each task costs little memory ({q})." for q in (*WRITTEN, "4.3d")}


@pytest.fixture(scope="module")
def assignment():
    return load_assignment(ROOT / "reference" / "ex01")


@pytest.fixture(scope="module")
def ids(assignment):
    return tuple(q.id for q in assignment.questions)


@pytest.fixture()
def template(assignment):
    return template_notebook(assignment)


def answer_position(notebook, question: str) -> int:
    return next(i for i, c in enumerate(notebook.cells) if f"answer-{question}" in c.metadata.get("tags", []))


def load(tmp_path: Path, notebook, ids, name: str = "student.ipynb"):
    path = tmp_path / name
    nbformat.write(notebook, path)
    return load_submission(path, ids)


def md(source: str, tag: str | None = None):
    cell = nbformat.v4.new_markdown_cell(source)
    if tag:
        cell.metadata["tags"] = [tag]
    return cell


def test_untouched_template_has_no_answers(tmp_path, template, ids):
    submission = load(tmp_path, template, ids)
    assert submission.answers == {} and submission.answer_notes == {}


def test_placeholder_left_and_answer_typed_in_a_new_cell_below(tmp_path, template, ids):
    for question in (*WRITTEN, "4.3d"):  # the template cell stays as it is, placeholder included
        template.cells.insert(answer_position(template, question) + 1, md(TEXT[question]))
    submission = load(tmp_path, template, ids)
    assert submission.answers == TEXT
    assert submission.answer_notes == {}  # exactly where the template says: confident


def test_answer_in_the_template_cell_with_a_second_paragraph_in_a_cell_below(tmp_path, template, ids):
    position = answer_position(template, "2.1")
    template.cells[position].source = f"### Answer 2.1\n\n{TEXT['2.1']}"
    template.cells.insert(position + 1, md("Also: the base model can be shared between tasks."))
    answers = load(tmp_path, template, ids).answers
    assert answers["2.1"] == TEXT["2.1"] + "\n\nAlso: the base model can be shared between tasks."


def test_all_answers_in_one_cell_under_several_headings(tmp_path, ids):
    body = "\n\n".join(f"### Answer {q}\n{TEXT[q]}" for q in WRITTEN)
    notebook = nbformat.v4.new_notebook(cells=[md("# My answers"), md(body)])
    submission = load(tmp_path, notebook, ids)
    assert submission.answers == {q: TEXT[q] for q in WRITTEN}


def test_duplicated_cell_heading_wins_over_its_tag_and_the_reviewer_is_told(tmp_path, template, ids):
    position = answer_position(template, "2.1")
    template.cells[position].source = f"### Answer 2.1\n\n{TEXT['2.1']}"
    copied = md(f"### Answer 2.2\n\n{TEXT['2.2']}", tag="answer-2.1")  # the copy kept 2.1's tag
    template.cells.insert(answer_position(template, "2.2"), copied)
    submission = load(tmp_path, template, ids)
    assert submission.answers["2.1"] == TEXT["2.1"]
    assert submission.answers["2.2"] == TEXT["2.2"]
    assert "tagged answer-2.1 but its heading says 2.2" in submission.answer_notes["2.2"]
    assert "2.1" not in submission.answer_notes


@pytest.mark.parametrize("heading, question", [
    ("## 2.1", "2.1"),
    ("**Answer 2.3:**", "2.3"),
    ("### Answer to 3.1", "3.1"),
    ("### 3.2 Answer", "3.2"),
    ("### Antwort 3.3", "3.3"),
    ("### Answer 4.3 d", "4.3d"),
    ("#### ANSWER 2.2:", "2.2"),
    ("### Lösung zu Aufgabe 2.3", "2.3"),
    ("**2.1**", "2.1"),
    ("Answer 3.1: ", "3.1"),
])
def test_heading_variants(tmp_path, ids, heading, question):
    """Cells without tags (copied into a fresh notebook), each with one way of writing the marker."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import numpy as np"),
                                               md(f"{heading}\n{TEXT[question]}")])
    submission = load(tmp_path, notebook, ids)
    assert submission.answers == {question: TEXT[question]}
    assert submission.answer_notes == {}


def test_answer_on_the_marker_line_itself(tmp_path, ids):
    notebook = nbformat.v4.new_notebook(cells=[md(f"**Answer 2.3:** {TEXT['2.3']}"),
                                               md(f"### Answer 2.1 {TEXT['2.1']}")])
    assert load(tmp_path, notebook, ids).answers == {"2.3": TEXT["2.3"], "2.1": TEXT["2.1"]}


def test_question_headings_are_not_answers(tmp_path, ids):
    """The sheet's own headings (`### 2.1 Core idea of PEFT`, `## 3 Comparison`) mark questions, not answers."""
    notebook = nbformat.v4.new_notebook(cells=[
        md("## 2 Parameter-Efficient Fine-Tuning: Basics"),
        md("### 2.1 Core idea of PEFT\n\nDescribe the core idea of PEFT briefly."),
        md(f"### Answer 2.1\n\n{ANSWER_PLACEHOLDER}", tag="answer-2.1"),
    ])
    assert load(tmp_path, notebook, ids).answers == {}


def test_answer_cell_turned_into_a_raw_cell(tmp_path, template, ids):
    position = answer_position(template, "3.2")
    raw = nbformat.v4.new_raw_cell(f"### Answer 3.2\n\n{TEXT['3.2']}")
    raw.metadata["tags"] = ["answer-3.2"]
    template.cells[position] = raw
    submission = load(tmp_path, template, ids)
    assert submission.answers == {"3.2": TEXT["3.2"]}


def test_text_outside_any_answer_cell_is_kept_for_the_reviewer(tmp_path, template, ids):
    """The answer cell deleted, the answer typed in a plain cell under the question: not lost, not sure."""
    del template.cells[answer_position(template, "2.2")]
    position = next(i for i, c in enumerate(template.cells) if c.source.startswith("### 2.2 "))
    template.cells.insert(position + 1, md(TEXT["2.2"]))
    submission = load(tmp_path, template, ids)
    assert submission.answers == {"2.2": TEXT["2.2"]}
    assert "outside its answer cell" in submission.answer_notes["2.2"]


def test_module_answer_forms(tmp_path, ids):
    path = tmp_path / "student.py"
    path.write_text(
        'import numpy as np\n'
        'method = "LoRA"\n'
        'ANSWER_2_1 = """first draft"""\n'
        f'ANSWER_2_2 = f"""{TEXT["2.2"]} Example: {{method}}."""\n'
        f'ANSWER_2_3 = """\n    {TEXT["2.3"]}\n""".strip()\n'
        f'ANSWER_2_1 = """{TEXT["2.1"]}"""  # reassigned later: the last one counts\n'
        f'ANSWER_3_2 = ("{TEXT["3.2"][:30]}"\n              "{TEXT["3.2"][30:]}")\n'
        f'ANSWER_4_3D = "{TEXT["4.3d"]}"\n'
        "\n"
        "# Answer 3.1:\n"
        + "".join(f"# {line}\n" for line in TEXT["3.1"].split(". ")) +
        "\n"
        "def project(X, W):\n"
        "    # Answer 3.3: this comment is inside a function, after the answer above\n"
        "    return X @ W\n"
        f'ANSWER_3_3 = " ".join(["{TEXT["3.3"]}"])\n'
    )
    submission = load_submission(path, ids)
    assert submission.answers["2.1"] == TEXT["2.1"]
    assert submission.answers["2.2"] == f"{TEXT['2.2']} Example: {{method}}."
    assert submission.answers["2.3"] == TEXT["2.3"]
    assert submission.answers["3.1"] == "\n".join(TEXT["3.1"].split(". "))
    assert submission.answers["3.2"] == TEXT["3.2"]
    assert submission.answers["3.3"] == TEXT["3.3"]
    assert submission.answers["4.3d"] == TEXT["4.3d"]
    assert submission.answer_notes == {}


def test_module_answer_computed_by_code_goes_to_the_reviewer(tmp_path, ids):
    path = tmp_path / "student.py"
    path.write_text('PARTS = ["frozen base", "few parameters"]\nANSWER_2_1 = ", ".join(PARTS)\n')
    submission = load_submission(path, ids)
    assert submission.answers == {"2.1": '", ".join(PARTS)'}
    assert "computed by code" in submission.answer_notes["2.1"]


def test_notebook_answer_in_a_code_cell_goes_to_the_reviewer(tmp_path, ids):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f'ANSWER_2_1 = """{TEXT["2.1"]}"""')])
    submission = load(tmp_path, notebook, ids)
    assert submission.answers == {"2.1": TEXT["2.1"]}
    assert "code cell 1" in submission.answer_notes["2.1"]


def test_uncertain_answer_is_pending_with_its_note_never_missing(tmp_path, assignment, template):
    """Through scoring: even with automatic acceptance on, a misplaced answer waits for a person."""
    from grader.api import assemble
    from grader.sandbox import JobOutcome

    auto = dataclasses.replace(assignment, bonus=dataclasses.replace(assignment.bonus, written="auto",
                                                                     auto_min_concepts=1))
    del template.cells[answer_position(template, "2.2")]
    position = next(i for i, c in enumerate(template.cells) if c.source.startswith("### 2.2 "))
    template.cells.insert(position + 1, md(TEXT["2.2"]))
    template.cells[answer_position(template, "2.1")].source = f"### Answer 2.1\n\n{TEXT['2.1']}"
    path = tmp_path / "s.ipynb"
    nbformat.write(template, path)
    submission = load_submission(path, tuple(q.id for q in assignment.questions))
    empty = JobOutcome(cells=(), calls={}, names=(), isolation="none", restarts=0)
    result = assemble(submission, auto, (), empty, "grade", 0.0)
    misplaced = result.questions["2.2"]
    assert misplaced.status is Status.PENDING and misplaced.answer == TEXT["2.2"]
    assert "outside its answer cell" in misplaced.answer_note and "outside its answer cell" in misplaced.feedback
    assert result.questions["2.1"].answer_note is None
    assert result.questions["2.3"].status is Status.MISSING


def test_answer_cell_turned_into_a_code_cell_is_read_not_run(tmp_path, template, ids):
    position = answer_position(template, "2.3")
    code = nbformat.v4.new_code_cell(f"### Answer 2.3\n\n{TEXT['2.3']}")
    code.metadata["tags"] = ["answer-2.3"]
    template.cells[position] = code
    submission = load(tmp_path, template, ids)
    assert submission.answers == {"2.3": TEXT["2.3"]}
    cell = next(c for c in submission.cells if c.index == position)
    assert cell.source == "" and "holds a written answer" in cell.notes[0]


def test_module_answer_in_a_variable_named_otherwise_goes_to_the_reviewer(tmp_path, ids):
    path = tmp_path / "student.py"
    path.write_text(f'answer_2_1_text = """{TEXT["2.1"]}"""\nANSWER_2_2 = """{TEXT["2.2"]}"""\n'
                    f'answer_2_2_draft = "an older draft"\n')
    submission = load_submission(path, ids)
    assert submission.answers == {"2.1": TEXT["2.1"], "2.2": TEXT["2.2"]}
    assert "`answer_2_1_text`, not `ANSWER_2_1`" in submission.answer_notes["2.1"]
    assert "2.2" not in submission.answer_notes


def test_answer_typed_into_the_questions_own_cell_goes_to_the_reviewer(tmp_path, assignment, template, ids):
    """The answer cell deleted, the answer typed below the question's text in the question's cell."""
    prompts = {q.id: q.prompt for q in assignment.questions if q.kind == "written"}
    del template.cells[answer_position(template, "3.1")]
    question = next(c for c in template.cells if c.source.startswith("### 3.1 "))
    question.source += f"\n\n{TEXT['3.1']}"
    path = tmp_path / "s.ipynb"
    nbformat.write(template, path)
    submission = load_submission(path, ids, prompts=prompts)
    assert submission.answers == {"3.1": TEXT["3.1"]}
    assert "the cell of question 3.1 itself" in submission.answer_notes["3.1"]
    untouched = tmp_path / "t.ipynb"
    nbformat.write(template_notebook(assignment), untouched)
    assert load_submission(untouched, ids, prompts=prompts).answers == {}  # the questions alone are no answers

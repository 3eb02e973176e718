"""Loading submissions: notebooks (v4, v3), modules, folders, zips; answers; IPython syntax; bad files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat import v3

from grader.errors import SubmissionError
from grader.submission import ANSWER_PLACEHOLDER, answer_variable, find_submissions, load_submission, transform_cell

QUESTIONS = ("2.1", "2.2", "3.1", "4.3d")


def write_notebook(path: Path, cells: list) -> Path:
    notebook = nbformat.v4.new_notebook(cells=cells)
    nbformat.write(notebook, path)
    return path


def answer_cell(question: str, text: str, tag: bool = True, heading: bool = True):
    source = (f"### Answer {question}\n\n" if heading else "") + text
    cell = nbformat.v4.new_markdown_cell(source)
    if tag:
        cell.metadata["tags"] = [f"answer-{question}"]
    return cell


def test_notebook_code_cells_and_answers(tmp_path):
    path = write_notebook(tmp_path / "alice.ipynb", [
        nbformat.v4.new_markdown_cell("# Exercise"),
        nbformat.v4.new_code_cell("import numpy as np\ndef softmax(x):\n    return x"),
        answer_cell("2.1", "PEFT freezes the pretrained weights."),
        answer_cell("2.2", "Tag lost, heading kept.", tag=False),
        answer_cell("3.1", "Tag kept, heading lost.", heading=False),
        answer_cell("4.3d", ANSWER_PLACEHOLDER),
    ])
    submission = load_submission(path, QUESTIONS)
    assert submission.student == "alice"
    assert submission.kind == "notebook"
    assert [c.label for c in submission.cells] == ["cell 2"]
    assert submission.answers == {"2.1": "PEFT freezes the pretrained weights.",
                                  "2.2": "Tag lost, heading kept.", "3.1": "Tag kept, heading lost."}
    assert len(submission.content_hash) == 64


def test_heading_alone_takes_the_following_markdown(tmp_path):
    path = write_notebook(tmp_path / "s.ipynb", [
        nbformat.v4.new_markdown_cell("### ANSWER 2.1"),
        nbformat.v4.new_markdown_cell("My answer is below the heading."),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("Unrelated text"),
    ])
    assert load_submission(path, QUESTIONS).answers == {"2.1": "My answer is below the heading."}


def test_magics_and_shell_escapes_are_neutralised(tmp_path):
    source = "%matplotlib inline\n!pip install torch\nresult = !ls\n%time y = 2\nif True:\n    %timeit -n 3 y + 1\n"
    cell = transform_cell(0, "cell 1", source)
    compile(cell.source, "cell 1", "exec")  # plain Python now
    assert "y = 2" in cell.source
    assert cell.source.count("\n") == source.count("\n")  # line numbers kept for tracebacks
    assert any("!pip install torch" in note for note in cell.notes)
    skipped = transform_cell(0, "cell 1", "%%bash\nrm -rf /\n")
    assert skipped.source == "" and "%%bash" in skipped.notes[0]
    timed = transform_cell(0, "cell 1", "%%time\nz = 3\n")
    namespace: dict = {}
    exec(compile(timed.source, "c", "exec"), namespace)
    assert namespace["z"] == 3


def test_nbformat3_is_upgraded(tmp_path):
    notebook = v3.new_notebook(worksheets=[v3.new_worksheet(cells=[
        v3.new_code_cell(input="def project(X, W):\n    return X @ W"),
        v3.new_text_cell("markdown", source="### Answer 2.1\nOld notebooks count too."),
    ])])
    path = tmp_path / "old.ipynb"
    path.write_text(v3.writes_json(notebook))
    submission = load_submission(path, QUESTIONS)
    assert "def project" in submission.cells[0].source
    assert submission.answers == {"2.1": "Old notebooks count too."}


def test_module_answers_and_percent_cells(tmp_path):
    path = tmp_path / "bob.py"
    path.write_text('import numpy as np\n# %%\nANSWER_2_1 = """Frozen weights."""\nANSWER_4_3D = "Prefix."\n'
                    '# %%\ndef project(X, W):\n    return X @ W\n')
    submission = load_submission(path, QUESTIONS)
    assert submission.kind == "module"
    assert submission.answers == {"2.1": "Frozen weights.", "4.3d": "Prefix."}
    assert len(submission.cells) == 3
    assert all(c.label == "bob.py" for c in submission.cells)
    # each cell knows the lines before it, so tracebacks show the file's line numbers: the def is on line 6
    assert [c.line for c in submission.cells] == [0, 1, 4]
    assert submission.cells[2].source.startswith("# %%\ndef project")
    assert answer_variable("4.3d") == "ANSWER_4_3D"


def test_module_with_syntax_error_still_gives_answers(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('ANSWER_2_1 = """Still found."""\ndef broken(:\n')
    assert load_submission(path, QUESTIONS).answers == {"2.1": "Still found."}


def test_folder_and_zip_of_one(tmp_path):
    folder = tmp_path / "carla"
    folder.mkdir()
    write_notebook(folder / "exercise.ipynb", [nbformat.v4.new_code_cell("x = 1")])
    (folder / ".ipynb_checkpoints").mkdir()
    write_notebook(folder / ".ipynb_checkpoints" / "exercise-checkpoint.ipynb", [])
    assert load_submission(folder).student == "carla"
    archive = tmp_path / "dora.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(folder / "exercise.ipynb", "dora/exercise.ipynb")
        z.writestr("__MACOSX/dora/._exercise.ipynb", "junk")
    loaded = load_submission(archive)
    assert loaded.student == "dora" and loaded.cells[0].source == "x = 1"


def test_find_submissions_expands_course_folder(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    (tmp_path / "b.py").write_text("")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.ipynb").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / ".hidden.py").write_text("")
    assert [p.name for p in find_submissions([tmp_path])] == ["a.ipynb", "b.py", "c"]
    assert find_submissions([tmp_path / "a.ipynb"]) == [tmp_path / "a.ipynb"]


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"{not json", "not JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00binary", "binary"),
    (b'{"nbformat": 4, "cells": "nope"}', "damaged"),
    (b'{"nbformat": 9, "cells": []}', "known version"),
    (b"[1, 2, 3]", "not an object"),
    (b"\xff\xfe\x00x", "binary"),
])
def test_bad_notebooks_give_clear_errors(tmp_path, content, words):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    with pytest.raises(SubmissionError, match=words):
        load_submission(path)


def test_huge_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    import grader.submission as submission

    monkeypatch.setattr(submission, "MAX_SUBMISSION_BYTES", 1000)
    path = tmp_path / "huge.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "cells": [], "pad": "x" * 5000}))
    with pytest.raises(SubmissionError, match="limit"):
        load_submission(path)


def test_corrupt_zip_and_ambiguous_folder(tmp_path):
    (tmp_path / "z.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(SubmissionError, match="zip"):
        load_submission(tmp_path / "z.zip")
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "a.ipynb").write_text("{}")
    (folder / "b.ipynb").write_text("{}")
    with pytest.raises(SubmissionError, match="several"):
        load_submission(folder)

"""Loading submissions: notebooks (v4, v3), modules, folders, zips; answers; IPython syntax; bad files."""

from __future__ import annotations

import ast
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



def compiled(cell, label: str):
    """A cell compiled as the sandbox worker does: numbered from the lines of the file before it."""
    try:
        tree = ast.parse(cell.source, label)
    except SyntaxError as error:
        error.lineno = (error.lineno or 0) + cell.line
        raise
    return compile(ast.increment_lineno(tree, cell.line), label, "exec")

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


def test_module_answers_and_statement_cells(tmp_path):
    path = tmp_path / "bob.py"
    path.write_text('import numpy as np\n# %%\nANSWER_2_1 = """Frozen weights."""\nANSWER_4_3D = "Prefix."\n'
                    'print(np.eye(2))\n# %%\ndef project(X, W):\n    return X @ W\n')
    submission = load_submission(path, QUESTIONS)
    assert submission.kind == "module"
    assert submission.run_as == "bob"  # imported under its own name, not run as __main__
    assert submission.answers == {"2.1": "Frozen weights.", "4.3d": "Prefix."}
    # definitions, imports and constants share a cell; the print statement is a cell of its own
    assert [c.source.strip().splitlines()[0] for c in submission.cells] == [
        "import numpy as np", "print(np.eye(2))", "def project(X, W):"]
    assert all(c.label == "bob.py" for c in submission.cells)
    # each cell knows how many file lines come before it, so tracebacks show the file's line numbers
    # without padding every cell (which grew quadratically): the def is on line 7 of the file
    cell = submission.cells[2]
    assert cell.source.startswith("def project") and cell.line + 1 == 7
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


def test_module_statements_become_cells_with_the_files_line_numbers(tmp_path):
    path = tmp_path / "carol.py"
    path.write_text('"""Carol\'s solution."""\nfrom __future__ import annotations\nimport numpy as np\n\n'
                    'print("demo")\n\n@np.vectorize\ndef relu(x: Tensor) -> float:\n    return max(x, 0.0)\n\n'
                    'def softmax(x: np.ndarray) -> np.ndarray:\n    return x\n'
                    'if __name__ == "__main__":\n    print(softmax(np.zeros(2)))\n')
    cells = load_submission(path, QUESTIONS).cells
    firsts = [c.source.strip().splitlines()[0] for c in cells]
    assert firsts == ['"""Carol\'s solution."""', 'from __future__ import annotations', 'from __future__ import annotations']
    assert "print(\"demo\")" in cells[1].source and "def relu" in cells[2].source and "def softmax" in cells[2].source
    namespace: dict = {"__name__": "carol"}
    for cell in cells:  # each cell compiles alone, at the file's own line numbers, annotations postponed
        code = compiled(cell, "carol.py")
        if "def relu" in cell.source:
            assert [c for c in code.co_consts if hasattr(c, "co_firstlineno")][0].co_firstlineno == 7  # its decorator
        exec(code, namespace)
    assert namespace["relu"].pyfunc.__annotations__ == {"x": "Tensor", "return": "float"}


def test_nbconvert_script_and_ipython_lines_in_a_module(tmp_path):
    path = tmp_path / "exported.py"
    path.write_text("#!/usr/bin/env python\n# coding: utf-8\n\n# In[1]:\n\n\n"
                    "get_ipython().run_line_magic('matplotlib', 'inline')\nget_ipython().system('pip install torch')\n"
                    "files = get_ipython().getoutput('ls')\nimport numpy as np\n\n\n# In[2]:\n\n\n"
                    "get_ipython().run_cell_magic('bash', '', 'rm -rf /\\n')\ndef project(X, W):\n    return X @ W\n")
    submission = load_submission(path, QUESTIONS)
    source = "".join(c.source for c in submission.cells)
    assert "get_ipython" not in source and "rm -rf" not in source and "files = []" in source
    notes = [n for c in submission.cells for n in c.notes]
    assert any("!pip install torch" in n for n in notes) and any("%%bash" in n for n in notes)
    path.write_text('%matplotlib inline\n!pip install torch\nimport numpy as np\nTEXT = """\n!keep %this\n"""\n')
    submission = load_submission(path, QUESTIONS)
    namespace: dict = {}
    for cell in submission.cells:
        exec(compile(cell.source, "exported.py", "exec"), namespace)
    assert namespace["TEXT"] == "\n!keep %this\n"  # lines inside strings are left alone


def test_a_module_that_does_not_parse_loses_only_the_broken_statement(tmp_path):
    path = tmp_path / "typo.py"
    path.write_text("import numpy as np\n\ndef broken(x:\n    return x\n\ndef project(X, W):\n    return (X @\n"
                    "            W)\n\nANSWER_2_1 = 'still read'\n")
    submission = load_submission(path, QUESTIONS)
    namespace: dict = {}
    failed = []
    for cell in submission.cells:
        try:
            exec(compiled(cell, "typo.py"), namespace)
        except SyntaxError as error:
            failed.append(error.lineno)
    assert failed == [3] and callable(namespace["project"]) and "np" in namespace
    assert submission.answers == {"2.1": "still read"}


def test_imports_the_sandbox_lacks_are_skipped_once_and_the_next_import_still_runs(tmp_path):
    path = write_notebook(tmp_path / "plots.ipynb", [
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nimport numpy as np, scipy.linalg as la\n"
                                  "from torch import nn; import math"),
        nbformat.v4.new_code_cell("try:\n    import torch\nexcept ImportError:\n    torch = None\n"
                                  "import matplotlib\nx = np.ones(2)"),
    ])
    submission = load_submission(path, QUESTIONS, packages=("numpy",))
    first, second = submission.cells
    namespace: dict = {}
    exec(compile(first.source, "cell 1", "exec"), namespace)
    assert "np" in namespace and "math" in namespace and "plt" not in namespace
    assert first.source.count("\n") == 2  # line numbers kept
    assert [n.split(";")[0] for n in first.notes] == [
        "matplotlib is not available while grading", "scipy is not available while grading",
        "torch is not available while grading"]
    assert "import torch" in second.source  # inside try: the student handles it
    assert second.notes == ()  # matplotlib was reported once already
    assert submission.unavailable == {"plt": "matplotlib", "la": "scipy", "nn": "torch", "matplotlib": "matplotlib"}

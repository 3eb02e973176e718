"""``grader new ID``: a small assignment folder that validates out of the box, to start a sheet from.

It holds one written and one code question, the reference function, public and hidden cases and
one known mistake with its hint, each file commented with what its parts are for. The instructor
replaces the example with the sheet's own questions and runs ``grader validate`` after each change.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .errors import ConfigError

ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")

_DEFINITION = '''\
# The definition of assignment {id}: questions, points, the bonus rule, tolerances, known mistakes.
# Written by `grader new {id}`. Replace the example questions with the sheet's own and run
#     grader validate --assignment {id}
# after every change: it names the file, question, case or variant at fault.

id = "{id}"
title = "{title}"
seed = {seed}                   # hidden cases are built from it: the same seed gives the same cases
reference = "solution"           # the module with the reference implementations (solution.py)
cases = "cases"                  # the module with public_cases() and hidden_cases(seed) (cases.py)

# The top of the students' notebook (markdown).
intro = \'\'\'
# {title}

What this sheet is about. Fill in the function cells and the answer cells, then check your work
with `grader check`.
\'\'\'

[defaults]
tolerance = {{ rtol = 1e-5, atol = 1e-8 }}   # how close a numeric result must be (numpy.allclose)
min_words = 20                              # written answers shorter than this are pointed out

[bonus]
rule = "all"          # the sheet's bonus needs every bonus question accepted; or "at_least" with minimum = N
written = "review"    # written answers wait for a person (grader review); "auto" accepts them by the rubric

[limits]              # for each student's code in the sandbox
call_timeout = 5      # seconds per call of a student function
cell_timeout = 10     # seconds per notebook cell
total_timeout = 60    # seconds per submission

[[sections]]          # headings of the notebook; each question names its section
id = "1"
title = "1 Concepts"

[[sections]]
id = "2"
title = "2 Implementation"

# ---------------------------------------------------------------- a written question

[[questions]]
id = "1.1"
kind = "written"      # answered in a markdown cell headed "### Answer 1.1"; decided in grader review
section = "1"
title = "Why normalise?"
prompt = "Explain in two or three sentences why word embeddings are often scaled to unit length before they are compared."
points = 1
bonus = true          # counts for the sheet's bonus

[[questions.rubric]]  # concepts the review app highlights; the suggestion counts them
concept = "cosine similarity becomes a dot product"
synonyms = ["cosine", "dot product", "angle"]

[[questions.rubric]]
concept = "length effects (e.g. word frequency) removed"
synonyms = ["length", "magnitude", "norm", "frequency"]

# ---------------------------------------------------------------- a code question

[[questions]]
id = "2.1"
kind = "code"
section = "2"
title = "Normalise rows"
functions = ["normalize_rows"]   # the student functions this question calls: defined in solution.py
points = 2
bonus = true
prompt = \'\'\'
Implement `normalize_rows(X)`: divide each row of `X` (one word embedding per row) by its Euclidean
length.
\'\'\'

[[questions.mistakes]]           # a known wrong answer: a student whose output equals it gets the hint
name = "normalize_rows__columns"   # <function>__<what>: the function in variants.py with this name
function = "normalize_rows"
implementation = "variants:normalize_rows__columns"
hint = "Your columns have length 1, your rows do not: divide each row by its own norm (axis=-1, keepdims=True)."

# An accepted alternative convention looks the same, with `note` instead of `hint`:
# [[questions.alternatives]]
# name = "normalize_rows__something"
# function = "normalize_rows"
# implementation = "variants:normalize_rows__something"
# note = "Accepted: … (the note the student sees)"
'''

_SOLUTION = '''\
"""Reference solution of {id}: one function per student function, with the signature students get.

`grader release` copies each function's signature and docstring into the students' template (the body
becomes `raise NotImplementedError`), so a docstring says what a function takes and returns, never how
it computes it. Keep every function self-contained: pasted alone into a notebook cell it must work,
given `import numpy as np` and the other student functions by name (`grader validate` checks this).
"""

import numpy as np


def normalize_rows(X):
    """Scale each row of X to unit Euclidean length.

    X: (n, d) array, one vector per row, none of them all zeros.
    Returns the (n, d) array whose row i is X[i] divided by its Euclidean norm.
    """
    return X / np.linalg.norm(X, axis=-1, keepdims=True)
'''

_CASES = '''\
"""Cases of {id}: the calls of the student functions that grading makes.

Public cases ship to students with their expected values (`grader release`), so they can check their
work; hidden cases are rebuilt from the assignment's seed for grading only, with other shapes and
values, so an answer that hard-codes the public results fails them. Expected values are never written
here: grading computes them from solution.py.
"""

import numpy as np

from grader.assignment import Case


def public_cases():
    """Small fixed inputs; the description is shown in the student's report."""
    return [
        Case("2.1", "normalize_rows", (np.array([[3.0, 4.0], [1.0, 0.0]]),), id="2.1/small",
             description="two rows, of lengths 5 and 1"),
        Case("2.1", "normalize_rows", (np.array([[1.0, 2.0, 2.0], [0.0, -3.0, 4.0], [2.0, 1.0, -2.0]]),),
             id="2.1/square", description="a 3×3 matrix whose rows have lengths 3, 5 and 3"),
    ]


def hidden_cases(seed):
    """Random inputs of other shapes, the same for the same seed."""
    rng = np.random.default_rng(seed)
    cases = []
    for number, (n, d) in enumerate([(4, 3), (2, 6), (7, 5)], start=1):
        X = rng.normal(size=(n, d))
        cases.append(Case("2.1", "normalize_rows", (X,), id=f"2.1/hidden-{{number}}",
                          description=f"a random {{n}}×{{d}} matrix"))
    return cases
'''

_VARIANTS = '''\
"""Other answers than the reference's for {id}: known mistakes and accepted alternatives.

Each function imitates one student function, with exactly its signature, and is named
<function>__<what>; assignment.toml lists it with the hint (mistake) or note (alternative) the student
sees when their output equals its output. `grader validate` checks that each can actually fire: that
on some case it differs from the reference by more than the tolerance.
"""

import numpy as np


def normalize_rows__columns(X):
    """Mistake: the columns normalised instead of the rows."""
    return X / np.linalg.norm(X, axis=0, keepdims=True)
'''

_INIT = '''\
# The assignment folder is imported as a package, so its modules may import each other
# (e.g. `from .solution import normalize_rows` in variants.py).
'''


def new_assignment(assignment_id: str, root: Path = Path("reference"), title: str | None = None) -> list[Path]:
    """Write ``root/<id>/`` with a small assignment that validates; return the files written."""
    if not ID_PATTERN.fullmatch(assignment_id):
        raise ConfigError(f"'{assignment_id}' cannot be an assignment id: use a letter, then letters, digits, "
                          "'-' or '_' (e.g. ex02)")
    folder = Path(root) / assignment_id
    if folder.exists():
        raise ConfigError(f"{folder} already exists; choose another id or remove it first")
    title = title or f"{assignment_id}: a new assignment"
    if '"' in title or "\\" in title or "\n" in title:
        raise ConfigError("the title may not contain quotes, backslashes or line breaks (edit assignment.toml later)")
    seed = int(hashlib.sha256(assignment_id.encode()).hexdigest()[:6], 16)
    values = {"id": assignment_id, "title": title, "seed": seed}
    folder.mkdir(parents=True)
    written = []
    for name, text in (("assignment.toml", _DEFINITION), ("solution.py", _SOLUTION), ("cases.py", _CASES),
                       ("variants.py", _VARIANTS), ("__init__.py", _INIT)):
        path = folder / name
        path.write_text(text.format(**values), encoding="utf-8")
        written.append(path)
    return written

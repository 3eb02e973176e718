"""The README's promises, checked: its assignment example loads, and its error example is what we say."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.errors import AssignmentError
from grader.release import release

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

SOLUTION = '''
import numpy as np


def softmax(x):
    """Softmax along the last axis."""
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
'''
VARIANTS = '''
import numpy as np


def softmax__wrong_axis(x):
    z = np.exp(x - x.max(axis=0, keepdims=True))
    return z / z.sum(axis=0, keepdims=True)
'''
CASES = '''
import numpy as np

from grader.assignment import Case


def public_cases():
    return [Case("4.2a", "softmax", (np.array([[1.0, 2.0], [3.0, 5.0]]),), id="4.2a/small")]


def hidden_cases(seed):
    rng = np.random.default_rng(seed)
    return [Case("4.2a", "softmax", (rng.normal(size=(3, 4)),)) for _ in range(3)]
'''


@pytest.fixture
def ex02(tmp_path):
    toml = re.search(r"```toml\n(.*?)```", README, re.S).group(1)
    folder = tmp_path / "reference" / "ex02"
    folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(toml)
    for name, text in (("solution", SOLUTION), ("variants", VARIANTS), ("cases", CASES)):
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder


def test_the_readme_assignment_example_loads_and_releases(ex02, tmp_path):
    assignment = load_assignment(ex02)
    assert [q.id for q in assignment.questions] == ["2.1", "4.2a"]
    prepared = assignment.prepared_cases(include_hidden=True)
    assert len(prepared) == 4 and prepared[0].variants[0][0].name == "softmax__wrong_axis"
    written = release(assignment, tmp_path / "bundle", wheel=False)
    assert any(path.name == "ex02.ipynb" for path in written)


def test_the_readme_error_example_is_what_loading_says(ex02):
    toml = ex02 / "assignment.toml"
    toml.write_text(toml.read_text().replace('functions = ["softmax"]',
                                             'functions = ["softmax"]\ntolerance = { rtol = "x" }'))
    with pytest.raises(AssignmentError) as error:
        load_assignment(ex02)
    message = str(error.value)
    assert message.endswith("field 'questions[1].tolerance.rtol': expected a number, got 'x'")
    shown = re.search(r"\(`(reference/ex02/assignment.toml: field [^`]*)`\)", README).group(1)
    assert shown.split(": ", 1)[1].replace("[3]", "[1]") == message.split(": ", 1)[1]

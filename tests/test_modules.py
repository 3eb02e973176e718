"""Modules and notebooks that do more than the exercise still get full marks (issue 10 §2).

Every submission here is a real file (a module written to a temporary folder, a notebook built with
nbformat) graded through the real sandbox. The solution is one an independent student would write from
the contract (docs: exercise-01.md), not the reference: its own helper, its own numpy idioms.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import nbformat
import pytest

from grader.api import grade_submission, open_sandbox
from grader.assignment import load_assignment
from grader.results import Status

ROOT = Path(__file__).resolve().parents[1]
# every limit a test exercises is far from what the work needs: definitions take milliseconds
LIMITS = {"cell_timeout": 3.0, "call_timeout": 2.0, "total_timeout": 120.0, "memory_mb": 512}

pytestmark = pytest.mark.sandbox

STUDENT = textwrap.dedent('''
    def project(X, W):
        return np.matmul(X, W)


    def projection_loss(X_proj, Y):
        return float(np.sum(np.sqrt(np.sum((X_proj - Y) ** 2, axis=-1))))


    def softmax(x):
        shifted = x - np.max(x, axis=-1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=-1, keepdims=True)


    def _attend(Q, K, V, causal, skip=0):
        scores = Q @ K.T / np.sqrt(K.shape[1])
        if causal:
            rows, cols = np.indices(scores.shape)
            scores = np.where(cols - skip > rows, -np.inf, scores)
        return softmax(scores) @ V


    def self_attention(H, W_q, W_k, W_v, causal=False):
        return _attend(H @ W_q, H @ W_k, H @ W_v, causal)


    def feed_forward(X, W_1, W_2):
        return np.maximum(X @ W_1, 0.0) @ W_2


    def prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=False):
        K = np.concatenate([P_k, H @ W_k])
        V = np.concatenate([P_v, H @ W_v])
        return _attend(H @ W_q, K, V, causal, skip=len(P_k))


    def bottleneck_adapter(X, W_down, W_up):
        return X + np.maximum(X @ W_down, 0.0) @ W_up


    def lora_projection(X, W, A, B, alpha):
        return X @ W + alpha / A.shape[1] * (X @ A @ B)


    def transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None, lora=None,
                          lora_alpha=1.0):
        lora = lora or {}
        Q, K, V = (lora_projection(H, W, *lora[key], lora_alpha) if key in lora else H @ W
                   for key, W in (("q", W_q), ("k", W_k), ("v", W_v)))
        skip = 0
        if prefix is not None:
            K, V, skip = np.concatenate([prefix[0], K]), np.concatenate([prefix[1], V]), len(prefix[0])
        Z = H + _attend(Q, K, V, causal, skip)
        out = feed_forward(Z, W_1, W_2)
        if adapter is not None:
            out = bottleneck_adapter(out, *adapter)
        return Z + out


    def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):
        return transformer_layer(H, W_q, W_k, W_v, W_1, W_2)


    def decoder_layer(H, W_q, W_k, W_v, W_1, W_2):
        return transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=True)
''')


def functions_of(source: str) -> list[str]:
    """The student's functions, one source each (split at the top-level defs)."""
    return ["def " + part.strip() + "\n" for part in source.split("\ndef ") if part.strip()]


@pytest.fixture(scope="module")
def assignment():
    loaded = load_assignment(ROOT / "reference" / "ex01")
    return dataclasses.replace(loaded, limits={**loaded.limits, **LIMITS})


@pytest.fixture(scope="module")
def sandbox(assignment):
    with open_sandbox(assignment) as box:
        yield box


def grade(path: Path, assignment, sandbox):
    return grade_submission(path, assignment, mode="check", sandbox=sandbox)


def code_statuses(result) -> dict[str, str]:
    return {q: r.status.value for q, r in result.questions.items() if r.kind == "code"}


def all_code_passed(result) -> bool:
    return all(r.status is Status.PASSED for r in result.questions.values() if r.kind == "code")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def write_notebook(tmp_path: Path, name: str, cells: list) -> Path:
    path = tmp_path / name
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_module_is_imported_so_its_main_demo_does_not_run(tmp_path, assignment, sandbox):
    demo = textwrap.dedent('''
        if __name__ == "__main__":
            import time
            time.sleep(15)  # a long demo: far past the cell limit if it ran
            print(softmax(np.arange(3.0)))
    ''')
    result = grade(write(tmp_path, "demo.py", "import numpy as np\n" + STUDENT + demo), assignment, sandbox)
    assert all_code_passed(result), code_statuses(result)
    assert all(c.status == "ok" for c in result.cells), [c.message for c in result.cells]


def test_a_module_statement_that_raises_hangs_or_crashes_costs_only_itself(tmp_path, assignment, sandbox):
    functions = functions_of(STUDENT)
    middle = len(functions) // 2
    source = "\n\n".join([
        "import numpy as np",
        *functions[:middle],
        "print(project(np.ones((2, 3)), np.ones((2, 3))))  # a shape error at the top level",
        "while True:  # waiting for something that never comes\n    pass",
        "import os\nos._exit(3)",
        *functions[middle:],
    ]) + "\n"
    result = grade(write(tmp_path, "busy.py", source), assignment, sandbox)
    assert all_code_passed(result), code_statuses(result)
    problems = {c.status: c.message for c in result.cells if c.status != "ok"}
    assert set(problems) == {"error", "timeout", "crashed"}, problems
    stopped_at = source.splitlines().index(next(line for line in source.splitlines() if line.startswith("print("))) + 1
    assert problems["error"].startswith(f"line {stopped_at}: ValueError"), problems["error"]


def test_nbconvert_script_is_treated_as_the_notebook_it_was(tmp_path, assignment, sandbox):
    cells = [("import numpy as np\nget_ipython().run_line_magic('matplotlib', 'inline')\n"
              "get_ipython().system('pip install torch')"), *functions_of(STUDENT),
             "get_ipython().run_line_magic('time', 'check = softmax(np.zeros(3))')\nprint(check)"]
    script = "#!/usr/bin/env python\n# coding: utf-8\n\n" + "".join(
        f"# In[{n}]:\n\n\n{cell}\n\n\n" for n, cell in enumerate(cells, 1))
    result = grade(write(tmp_path, "exported.py", script), assignment, sandbox)
    assert all_code_passed(result), code_statuses(result)
    assert all(c.status == "ok" for c in result.cells), [c.message for c in result.cells]
    notes = " ".join(n for c in result.cells for n in c.notes)
    assert "!pip install torch" in notes


def test_module_with_ipython_lines_runs_like_a_notebook(tmp_path, assignment, sandbox):
    source = ("%matplotlib inline\n!pip install numpy\nimport numpy as np\n" + STUDENT
              + "\n%timeit softmax(np.zeros(4))\n")
    result = grade(write(tmp_path, "magic.py", source), assignment, sandbox)
    assert all_code_passed(result), code_statuses(result)
    assert any("!pip install numpy" in n for c in result.cells for n in c.notes)


def test_module_with_a_syntax_error_loses_only_the_broken_function(tmp_path, assignment, sandbox):
    functions = functions_of(STUDENT)
    broken = next(i for i, f in enumerate(functions) if f.startswith("def feed_forward"))
    functions[broken] = "def feed_forward(X, W_1, W_2:\n    return np.maximum(X @ W_1, 0) @ W_2\n"
    result = grade(write(tmp_path, "typo.py", "import numpy as np\n\n" + "\n\n".join(functions)), assignment, sandbox)
    statuses = code_statuses(result)
    assert statuses.pop("4.2c") != "passed"
    assert statuses.pop("4.2d") != "passed" and statuses.pop("4.2e") != "passed"  # they call feed_forward
    assert statuses.pop("4.3a") != "passed" and statuses.pop("4.3b") != "passed" and statuses.pop("4.3c") != "passed"
    assert set(statuses.values()) == {"passed"}, statuses
    feedback = result.questions["4.2c"].feedback
    assert "syntax error" in feedback and "not defined in your submission" not in feedback, feedback


def test_unavailable_import_is_reported_once_and_does_not_stop_the_next_import(tmp_path, assignment, sandbox):
    cells = [nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nimport numpy as np"),
             *[nbformat.v4.new_code_cell(f) for f in functions_of(STUDENT)],
             nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfrom torch import nn\n"
                                       "plt.plot(softmax(np.arange(4.0)))")]
    result = grade(write_notebook(tmp_path, "plots.ipynb", cells), assignment, sandbox)
    assert all_code_passed(result), code_statuses(result)
    notes = [n for c in result.cells for n in c.notes]
    assert sum("matplotlib is not available while grading; only numpy is" in n for n in notes) == 1, notes
    assert sum("torch is not available" in n for n in notes) == 1, notes
    plotting = result.cells[-1]
    assert plotting.status == "error"
    assert "`plt` was never imported: matplotlib is not available while grading" in plotting.message


def test_missing_function_messages_say_what_really_happened(tmp_path, assignment, sandbox):
    functions = {f.split("(")[0][4:]: f for f in functions_of(STUDENT)}
    cells = [nbformat.v4.new_code_cell("import numpy as np"),
             # a cell that stops before its def
             nbformat.v4.new_code_cell("weights = np.load('weights.npy')\n\n" + functions.pop("softmax")),
             # a def pasted into a markdown cell
             nbformat.v4.new_markdown_cell("My code:\n\n" + functions.pop("project")),
             # a cell that never finishes before its def
             nbformat.v4.new_code_cell("while True:\n    pass\n\n" + functions.pop("feed_forward")),
             *[nbformat.v4.new_code_cell(f) for f in functions.values()]]
    result = grade(write_notebook(tmp_path, "stuck.ipynb", cells), assignment, sandbox)
    everything = "\n".join(c.message for q in result.questions.values() for c in q.cases)
    assert "not defined in your submission" not in everything
    softmax = result.questions["4.2a"].feedback
    assert "in cell 2, line 3" in softmax and "stopped at line 1" in softmax and "weights.npy" in softmax, softmax
    assert "markdown or raw cell (cell 3)" in result.questions["4.1a"].feedback
    assert "did not finish within its time limit" in result.questions["4.2c"].feedback


def test_def_under_main_guard_is_explained(tmp_path, assignment, sandbox):
    functions = functions_of(STUDENT)
    softmax = next(f for f in functions if f.startswith("def softmax"))
    rest = [f for f in functions if f is not softmax]
    source = "import numpy as np\n\n" + "\n\n".join(rest) + '\n\nif __name__ == "__main__":\n' + textwrap.indent(
        softmax, "    ")
    result = grade(write(tmp_path, "guarded.py", source), assignment, sandbox)
    feedback = result.questions["4.2a"].feedback
    assert result.questions["4.2a"].status is Status.MISSING
    assert 'under `if __name__ == "__main__":`' in feedback and "define it at the top level" in feedback, feedback


def test_untouched_template_is_not_attempted_yet(tmp_path, assignment, sandbox):
    from grader.release import template_notebook

    path = tmp_path / "template.ipynb"
    nbformat.write(template_notebook(assignment), path)
    result = grade(path, assignment, sandbox)
    for question in result.questions.values():
        assert question.status is Status.MISSING, (question.question_id, question.feedback)
        if question.kind == "code":
            assert "not attempted yet" in question.feedback, question.feedback
    assert result.bonus.awarded is False


def test_results_in_longdouble_and_other_real_dtypes_are_numbers(tmp_path, assignment, sandbox):
    source = "import numpy as np\n" + STUDENT + textwrap.dedent('''
        _softmax = softmax
        def softmax(x):
            return _softmax(np.asarray(x, dtype=np.longdouble))

        _project = project
        def project(X, W):
            return np.array(_project(X, W).tolist(), dtype=object)

        _loss = projection_loss
        def projection_loss(X_proj, Y):
            return np.longdouble(_loss(X_proj, Y))
    ''')
    result = grade(write(tmp_path, "precise.py", source), assignment, sandbox)
    assert all_code_passed(result), {q: r.feedback for q, r in result.questions.items()
                                     if r.kind == "code" and r.status is not Status.PASSED}


def test_a_definition_using_an_unavailable_package_costs_only_itself(tmp_path, assignment, sandbox):
    """`@njit` after a skipped numba import fails alone; the definitions after it stay."""
    functions = functions_of(STUDENT)
    softmax = next(i for i, f in enumerate(functions) if f.startswith("def softmax"))
    functions[softmax] = "@njit\n" + functions[softmax]
    source = "import numpy as np\nfrom numba import njit\n\n" + "\n\n".join(functions)
    result = grade(write(tmp_path, "fast.py", source), assignment, sandbox)
    statuses = code_statuses(result)
    assert statuses.pop("4.2a") == "error"
    assert statuses.pop("4.2b") != "passed"  # it calls softmax
    assert statuses["4.1a"] == statuses["4.1b"] == statuses["4.2c"] == "passed", statuses  # not using softmax
    feedback = result.questions["4.2a"].feedback
    assert "name 'njit' is not defined" in feedback and "numba is not available while grading" in feedback, feedback
    assert "not defined in your submission" not in feedback

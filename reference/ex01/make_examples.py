"""Example submissions for Exercise 1, built from the template, the reference and the variants.

Run ``python reference/ex01/make_examples.py`` to (re)write ``submissions/``:

- ``alice.ipynb``: correct, every answer written well;
- ``bob.py``: correct, as a Python module with ``ANSWER_2_1 = \"\"\"...\"\"\"`` strings;
- ``carla.ipynb``: the typical mistake, attention without 1/√d_k; answers present;
- ``dmitri.ipynb``: the unfinished template;
- ``emil.ipynb``: a cell with a syntax error, ``project`` loops forever, ``projection_loss`` raises;
  the rest correct;
- ``fatima.ipynb``: correct, computing in float32.

Importable too: tests and benchmarks build their own submissions with :func:`build_submission`,
:func:`notebook_submission`, :func:`module_submission`, :func:`correct_sources`, :func:`mistake_source`
and :data:`GOOD_ANSWERS`.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
ROOT = FOLDER.parent.parent
SUBMISSIONS = ROOT / "submissions"
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from grader.assignment import Assignment, load_assignment  # noqa: E402
from grader.release import answer_cell_source, template_notebook  # noqa: E402

NUMPY_IMPORT = "import numpy as np"

GOOD_ANSWERS: dict[str, str] = {
    "2.1": (
        "Parameter-efficient fine-tuning adapts a large pretrained language model to a downstream task or "
        "a new language without updating all of its weights. The pretrained weights stay frozen; only a "
        "small number of new or selected trainable parameters (adapters, LoRA matrices, prefix vectors), "
        "often well below 1% of the model, are trained for the task."
    ),
    "2.2": (
        "Storage and memory: one frozen copy of the model is shared and each task only stores a small "
        "checkpoint of a few megabytes; optimizer state and GPU memory shrink too. Training is cheaper and "
        "faster because gradients are needed only for the few trainable parameters. Keeping the pretrained "
        "weights frozen reduces overfitting on small datasets and avoids catastrophic forgetting. PEFT "
        "modules are modular: they can be swapped, shared, reused and composed, e.g. language and task "
        "adapters for cross-lingual transfer as in MAD-X."
    ),
    "2.3": (
        "PEFT can underperform full fine-tuning, especially when the task is far from pretraining, because "
        "the limited capacity of a few parameters is less expressive. Some methods add inference latency: "
        "adapters add extra layers, and prefix-tuning lengthens the sequence and uses up context length. "
        "PEFT also adds new hyperparameters (rank, bottleneck size, prefix length) to which results are "
        "sensitive, and training can converge more slowly or be unstable."
    ),
    "3.1": (
        "LoRA reparameterises the weight update of existing projection matrices as a low-rank product: "
        "W becomes W + (alpha/r) A B, so the representations change through modified weights. Prefix-tuning "
        "leaves all weights untouched and prepends trainable prefix vectors as extra keys and values in "
        "every attention layer, so tokens change only through what they attend to. Adapters insert new "
        "bottleneck layers (down-projection, nonlinearity, up-projection with a residual connection) after "
        "the feed-forward or attention sublayer, transforming the hidden representations directly."
    ),
    "3.2": (
        "LoRA is easy to implement: it wraps existing linear layers such as W_q and W_v with two small "
        "matrices and needs no architecture change; the peft library does it in a few lines and the rank r "
        "is the main choice. Prefix-tuning is fiddly: the prefix length matters, training is unstable "
        "without a reparameterisation through an MLP, and the prefixes must be injected as past_key_values. "
        "Adapters modify the architecture and forward pass: one must choose the placement and bottleneck "
        "size, though the adapters library (AdapterHub) makes inserting them simple."
    ),
    "3.3": (
        "LoRA can be merged into the frozen weights after training (W + (alpha/r) A B), so inference has "
        "no additional latency at all. Prefix-tuning makes attention longer: every layer attends over extra "
        "prefix keys, which costs computation and reduces the usable sequence length of the context window. "
        "Adapters add extra layers that run sequentially in every block, which adds latency and cannot be "
        "merged into the existing weights, although the overhead is small."
    ),
    "4.3d": (
        "Prefix-tuning changes only the attention: p trainable prefix keys and values are prepended to the "
        "keys and values computed from the tokens, so every token also attends to the prefix; queries and "
        "the number of output rows stay the same. A bottleneck adapter after the feed-forward layer applies "
        "a down-projection, ReLU and up-projection with its own skip connection to the feed-forward output "
        "before the residual is added. LoRA adds a scaled low-rank term (alpha / r) X A B to the projections "
        "with W_q, W_k and W_v, which is the same as using the merged weight W + (alpha / r) A B."
    ),
}


@lru_cache(maxsize=1)
def assignment() -> Assignment:
    """Exercise 1 loaded from this folder."""
    return load_assignment(FOLDER)


def _variants_module():
    reference = assignment().reference
    package = reference.__name__.rpartition(".")[0]
    return sys.modules[f"{package}.variants"]


def correct_sources() -> dict[str, str]:
    """The reference source of every student function, by name."""
    reference = assignment().reference
    return {name: textwrap.dedent(inspect.getsource(getattr(reference, name))) for name in assignment().functions}


def mistake_source(variant_name: str) -> tuple[str, str]:
    """The student function a variant imitates and the variant's source renamed to that function.

    Other variants it calls are appended under their own names, so the source stands alone.
    """
    variants = _variants_module()
    function = getattr(variants, variant_name, None)
    if function is None or "__" not in variant_name:
        raise KeyError(f"no variant {variant_name!r} in variants.py")
    student_name = variant_name.split("__", 1)[0]
    source = textwrap.dedent(inspect.getsource(function))
    source = source.replace(f"def {variant_name}(", f"def {student_name}(", 1)
    helpers, seen = [], {variant_name}
    pending = _called_variants(source, variants)
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        helper = textwrap.dedent(inspect.getsource(getattr(variants, name)))
        helpers.append(helper)
        pending.extend(_called_variants(helper, variants))
    return student_name, "\n\n".join([source, *helpers])


def _called_variants(source: str, variants) -> list[str]:
    names = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    return sorted(n for n in names if "__" in n and callable(getattr(variants, n, None)))


def float32_sources() -> dict[str, str]:
    """The reference sources, each casting its array arguments to float32 first (like a torch solution)."""
    out = {}
    for name, source in correct_sources().items():
        node = ast.parse(source).body[0]
        required = [a.arg for a in node.args.args[:len(node.args.args) - len(node.args.defaults)]]
        lines = source.splitlines()
        body_start = node.body[1].lineno - 1 if ast.get_docstring(node) else node.body[0].lineno - 1
        casts = [f"    {arg} = np.asarray({arg}, dtype=np.float32)" for arg in required]
        out[name] = "\n".join(lines[:body_start] + casts + lines[body_start:]) + "\n"
    return out


def notebook_submission(sources: dict[str, str], answers: dict[str, str]) -> nbformat.NotebookNode:
    """The template with the given function sources and written answers filled in.

    Functions not in ``sources`` keep their stub; sources for names the template does not have go
    into new code cells at the end; answers not given keep the placeholder.
    """
    notebook = template_notebook(assignment())
    remaining = dict(sources)
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        for tag in tags:
            if cell.cell_type == "code" and tag.startswith("function-") and tag[9:] in remaining:
                prefix = f"{NUMPY_IMPORT}\n\n\n" if cell.source.startswith(NUMPY_IMPORT) else ""
                cell.source = prefix + remaining.pop(tag[9:]).strip() + "\n"
            elif cell.cell_type == "markdown" and tag.startswith("answer-") and tag[7:] in answers:
                cell.source = answer_cell_source(tag[7:], answers[tag[7:]])
    for name, source in remaining.items():
        cell = nbformat.v4.new_code_cell(source.strip() + "\n")
        cell["id"] = f"extra-{name}"[:64]
        notebook.cells.append(cell)
    return notebook


def module_submission(sources: dict[str, str], answers: dict[str, str]) -> str:
    """A Python module with the given functions and ``ANSWER_<id>`` strings."""
    parts = [f'"""Exercise 1 submission."""\n\n{NUMPY_IMPORT}\n']
    parts += [source.strip() + "\n" for source in sources.values()]
    for question_id, text in answers.items():
        variable = "ANSWER_" + question_id.replace(".", "_").upper()
        parts.append(f'{variable} = """\n{text.strip()}\n"""\n')
    return "\n\n".join(parts)


def build_submission(kind: str = "notebook", *, answers: dict[str, str] | None = None,
                     overrides: dict[str, str] | None = None, mistakes: tuple[str, ...] = (),
                     float32: bool = False) -> nbformat.NotebookNode | str:
    """A submission: the correct functions (or float32 ones), with ``mistakes`` (variant names) and
    ``overrides`` (function name → source) replacing some, as a notebook or a module (``kind``)."""
    sources = float32_sources() if float32 else correct_sources()
    for variant in mistakes:
        name, source = mistake_source(variant)
        sources[name] = source
    sources.update(overrides or {})
    answers = GOOD_ANSWERS if answers is None else answers
    if kind == "notebook":
        return notebook_submission(sources, answers)
    if kind == "module":
        return module_submission(sources, answers)
    raise ValueError(f"kind must be 'notebook' or 'module', not {kind!r}")


EMIL_OVERRIDES = {
    "project": (
        "def project(X, W):\n"
        "    result = X @ W\n"
        "    while True:  # waiting for convergence that never comes\n"
        "        pass\n"
        "    return result\n"
    ),
    "projection_loss": (
        "def projection_loss(X_proj, Y):\n"
        "    distances = np.linalg.norm(X_proj - Y, axis=1)\n"
        "    return distances.sum() / len(distances_per_word)\n"
    ),
}
EMIL_BROKEN_CELL = "def helper(x:\n    return x + 1\n"


def write_examples(folder: Path = SUBMISSIONS) -> list[Path]:
    """Write the six example submissions into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    notebooks = {
        "alice": build_submission("notebook"),
        "carla": build_submission("notebook", mistakes=("self_attention__unscaled",)),
        "dmitri": template_notebook(assignment()),
        "fatima": build_submission("notebook", float32=True),
    }
    emil = build_submission("notebook", overrides=EMIL_OVERRIDES)
    broken = nbformat.v4.new_code_cell(EMIL_BROKEN_CELL)
    broken["id"] = "emil-broken-helper"
    emil.cells.insert(next(i for i, c in enumerate(emil.cells) if c.cell_type == "code"), broken)
    notebooks["emil"] = emil
    written = []
    for student, notebook in notebooks.items():
        nbformat.validate(notebook)
        path = folder / f"{student}.ipynb"
        nbformat.write(notebook, str(path))
        written.append(path)
    bob = folder / "bob.py"
    bob.write_text(build_submission("module"), encoding="utf-8")
    written.append(bob)
    return sorted(written)


def main() -> int:
    for path in write_examples():
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

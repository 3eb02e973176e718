"""Example submissions for Exercise 1, built from the template, the reference and the variants.

Run ``python reference/ex01/make_examples.py`` to (re)write ``submissions/``. Each student writes her or
his own code and answers (:data:`STUDENT_CODE`, :data:`STUDENT_ANSWERS`), so the course overview's
"Similar submissions" flags only the one deliberate copy:

- ``alice.ipynb``: correct, every answer written well;
- ``bob.py``: a Python module with ``ANSWER_2_1 = \"\"\"...\"\"\"`` strings that copies alice: her functions
  with the variables renamed and the comments reworded, her answers to 2.1 and 3.2 lightly edited, his
  own answers to the rest (the overview must flag alice ↔ bob);
- ``carla.ipynb``: the typical mistake, attention without 1/√d_k (the reference otherwise); short answers;
- ``dmitri.ipynb``: the unfinished template;
- ``emil.ipynb``: a cell with a syntax error, ``project`` loops forever, ``projection_loss`` raises;
  the rest correct, in his own loop-heavy style; 3.3 and 4.3d left unanswered;
- ``fatima.ipynb``: correct, computing in float32 (like a torch solution).

Importable too: tests and benchmarks build their own submissions with :func:`build_submission`,
:func:`notebook_submission`, :func:`module_submission`, :func:`correct_sources`, :func:`mistake_source`
and :data:`GOOD_ANSWERS`.
"""

from __future__ import annotations

import ast
import inspect
import io
import sys
import textwrap
import tokenize
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


# --------------------------------------------------------------------------- the students' own answers
# Written independently of GOOD_ANSWERS and of each other (each names the rubric concepts in its own
# words); bob's 2.1 and 3.2 are alice's, lightly edited (see BOB_EDITS), so the overview flags them.

STUDENT_ANSWERS: dict[str, dict[str, str]] = {
    "alice": {
        "2.1": (
            "The core idea of PEFT is to specialise a large pretrained language model for a downstream task "
            "(or a new language) while keeping almost all of its weights frozen. Instead of updating the "
            "hundreds of millions of original parameters, we train only a small set of parameters: either a "
            "subset of the existing ones or newly added modules such as adapters, low-rank LoRA matrices or "
            "prefix vectors. In practice this is often less than one percent of the model, and the frozen "
            "backbone can be shared across many tasks."
        ),
        "2.2": (
            "**Advantages.** (1) Storage: each task needs only a small checkpoint with the trained parameters, "
            "while a single copy of the large base model is kept on disk. (2) Training is cheaper: no "
            "gradients and no optimizer state are needed for the frozen weights, so GPU memory and compute "
            "drop and bigger models fit on less hardware. (3) Because the original weights are untouched, "
            "there is less overfitting when the training data is small, and no catastrophic forgetting of "
            "what the model learned in pretraining. (4) Modularity: trained modules can be swapped at run "
            "time or combined, e.g. a language adapter stacked with a task adapter for zero-shot "
            "cross-lingual transfer."
        ),
        "2.3": (
            "**Disadvantages.** With so few trainable parameters PEFT can fall short of full fine-tuning, in "
            "particular for tasks that are very different from the pretraining data, because its capacity is "
            "limited. Several methods cost something at test time: adapters are additional layers that every "
            "token must pass through, and a prefix occupies part of the context length. Finally, every method "
            "brings its own hyperparameters (the LoRA rank, the bottleneck size, the prefix length, the "
            "learning rate) and results can be sensitive to them, so tuning takes extra effort."
        ),
        "3.1": (
            "All three methods keep the pretrained weights frozen but differ in where they act. **LoRA** "
            "learns a weight update ΔW = A·B of low rank for chosen projection matrices (typically W_q and "
            "W_v), so every token is projected by a slightly modified weight W + (alpha/r)·A·B. "
            "**Prefix-tuning** does not touch any weight of the model: it prepends p trainable vectors to the "
            "keys and values of every attention layer, and the token representations change only indirectly, "
            "through what the queries attend to. **Adapters** insert small new bottleneck modules "
            "(down-projection, nonlinearity, up-projection plus a residual connection) into each layer, which "
            "transform the hidden states directly after the sublayer they follow."
        ),
        "3.2": (
            "LoRA is the easiest of the three: you wrap existing linear layers (e.g. the query and value "
            "projections) with two small matrices, there is no architecture change, and with the peft library "
            "it takes a few lines of code; the main choice is the rank r. Prefix-tuning is harder to get "
            "right: training the prefix directly is unstable, so the original paper reparameterises it "
            "through an MLP, the prefix length must be tuned, and the prefixes have to be injected into every "
            "layer as past_key_values. Adapters change the forward pass of the model: one has to decide the "
            "placement and the bottleneck size, but libraries like AdapterHub make inserting them "
            "straightforward."
        ),
        "3.3": (
            "At inference LoRA is free: after training, the low-rank product is merged into the frozen "
            "weight, W' = W + (alpha/r)·A·B, so the model has exactly its original size and speed (unless one "
            "keeps the factors apart to switch tasks quickly). Prefix-tuning makes every attention layer "
            "process p extra key/value positions, which raises the attention cost and takes away part of the "
            "context window. Adapters run as extra sequential layers in every block; they add a little "
            "latency, especially at small batch sizes, and they cannot be merged into the base weights."
        ),
        "4.3d": (
            "Prefix-tuning only changes the self-attention: the keys and values become [P_k; H W_k] and "
            "[P_v; H W_v], so the softmax runs over p + n positions while the queries, and therefore the n "
            "output rows, come from the tokens alone; with the causal mask every token still sees the whole "
            "prefix. The bottleneck adapter acts on the feed-forward output F before the residual: F is "
            "replaced by F + relu(F W_down) W_up, a down-projection, ReLU and up-projection with its own skip "
            "connection. LoRA replaces each projection H W by H W + (alpha/r) H A B, which is the same as "
            "projecting with the merged weight W + (alpha/r) A B."
        ),
    },
    "carla": {
        "2.1": (
            "PEFT means that we do not train the whole pretrained model. Its original weights are frozen and "
            "we only train a small number of parameters, for example an adapter or LoRA, to adapt the model "
            "to a new task."
        ),
        "2.2": (
            "It needs much less memory and storage, because for each task we save only the small part that "
            "was trained. Training is cheaper and quicker. It also helps against catastrophic forgetting, and "
            "the modules are modular: you can swap them."
        ),
        "2.3": (
            "The results can be a bit worse than with full fine-tuning. Some methods make inference slower, "
            "for example adapters add additional layers. Also there are new hyperparameters like the rank or "
            "the prefix length which need tuning."
        ),
        "3.1": (
            "LoRA adds a low-rank update to the weight matrices. Prefix-tuning learns prefix vectors that are "
            "prepended to the keys and values in attention. Adapters are new small bottleneck layers that are "
            "inserted into each transformer layer."
        ),
        "3.2": (
            "LoRA is easy to implement, it only wraps the linear layer and you choose the rank r. "
            "Prefix-tuning is harder because training can be unstable and the prefix length matters a lot. "
            "Adapters change the architecture of the model, you must insert them."
        ),
        "3.3": (
            "LoRA weights can be merged into the model after training, so there is no extra latency. For "
            "prefix-tuning the sequence length gets longer, so attention costs more. Adapters are additional "
            "layers, so inference is a bit slower."
        ),
        "4.3d": (
            "With prefix-tuning the attention gets extra prefix keys and values that are concatenated before "
            "the keys and values of the tokens, so each token can also attend to them. The adapter takes the "
            "feed-forward output, does a down-projection, ReLU and up-projection and adds a skip connection. "
            "LoRA adds a low-rank term to W_q, W_k and W_v, scaled by alpha/r."
        ),
    },
    "emil": {  # 3.3 and 4.3d left unanswered
        "2.1": (
            "So basically, instead of fine-tuning all the weights of a huge model like XLM-R, you freeze it "
            "and put a few new parameters on top or inside (adapters, LoRA, prefixes). Only those get trained "
            "on the downstream task, which is way cheaper than training everything."
        ),
        "2.2": (
            "The big one for me is memory: you don't need optimizer state for the whole model, and per task "
            "you only store the small trained weights instead of a full copy of the model each time. You also "
            "get faster training. Since the base model is not updated it suffers less from catastrophic "
            "forgetting and overfits less on tiny datasets. And you can reuse modules, e.g. plug a language "
            "adapter and a task adapter together."
        ),
        "2.3": (
            "It's not always as good as full fine-tuning, especially when the target task needs a lot of new "
            "knowledge. Adapters make inference a bit slower because there are more layers to run, and "
            "prefixes eat part of the context length. Also I found it annoying that there are even more "
            "knobs to tune: rank, bottleneck size, where to put the modules..."
        ),
        "3.1": (
            "LoRA: the pretrained matrix W stays, and a low-rank product AB is added to it, so effectively the "
            "weights change. Prefix-tuning: nothing in the model changes, you prepend learned vectors (like "
            "virtual tokens) to the keys and values in attention, so the hidden states only change because "
            "they attend to something else. Adapters: little bottleneck networks are inserted between the "
            "existing layers and change the hidden states directly."
        ),
        "3.2": (
            "Honestly LoRA was the simplest to use: with the peft library it's a few lines, you say which "
            "linear layers (q, v) and the rank. Prefix-tuning I found harder, it needs a good prefix length "
            "and apparently training is unstable without an extra MLP in front. Adapters need changes to the "
            "forward pass of the model, but the adapters library handles that for you."
        ),
    },
    "fatima": {
        "2.1": (
            "Fine-tune a pretrained model for a downstream task by training only a small subset of "
            "parameters:\n\n"
            "- the original (pretrained) weights are kept frozen;\n"
            "- the trainable parameters are either a selected fraction of the existing ones (e.g. BitFit "
            "trains only the biases) or new parameters added to the model (adapters, LoRA, prefixes);\n"
            "- typically < 1 % of all parameters are updated."
        ),
        "2.2": (
            "- **Memory:** gradients and optimizer state exist only for the trainable parameters, so "
            "fine-tuning is cheaper and fits on a single GPU.\n"
            "- **Storage:** per task only a few MB are saved instead of a full model copy.\n"
            "- **Generalisation:** the frozen model acts as a regularization, which helps in low-resource "
            "settings and prevents catastrophic forgetting.\n"
            "- **Modularity:** modules for languages and tasks can be combined (MAD-X) and shared, e.g. via "
            "AdapterHub."
        ),
        "2.3": (
            "- **Performance gap:** on some tasks (and for smaller models) PEFT can underperform full "
            "fine-tuning.\n"
            "- **Inference overhead:** adapters add layers, prefixes make the sequence longer; only LoRA "
            "avoids this by merging.\n"
            "- **More design choices:** rank, bottleneck size, prefix length, which layers to modify; the "
            "results are sensitive to these choices.\n"
            "- Convergence can be slower, so part of the savings in training is lost again."
        ),
        "3.1": (
            "- **LoRA:** learns ΔW = A B of low rank r for frozen matrices such as W_q and W_v; a projection "
            "becomes x W + (α/r) x A B, i.e. the same layers with updated effective weights.\n"
            "- **Prefix-Tuning:** learns continuous key/value vectors that are prepended in the attention of "
            "every layer (a soft prompt); the weights are untouched, the hidden states change through the "
            "attention weights.\n"
            "- **Adapters:** new modules (down-projection → ReLU → up-projection + residual) inserted after "
            "the attention and/or the FFN sublayer; they add a learned function to the hidden states."
        ),
        "3.2": (
            "- **LoRA:** easiest; no architecture change, a wrapper around the chosen linear layers, "
            "hyperparameters r and α; supported by HF peft.\n"
            "- **Prefix-Tuning:** the prefix has to be passed as past_key_values to every layer; optimisation "
            "is unstable without an MLP reparameterization, and the best prefix length depends on the task.\n"
            "- **Adapters:** the forward pass of every block must call the adapter, so the model code changes; "
            "placement (Houlsby vs. Pfeiffer) and bottleneck size must be chosen; the adapters library takes "
            "care of most of it."
        ),
        "3.3": (
            "- **LoRA:** A B can be folded into W after training, so there is no extra latency; for many tasks "
            "the factors can also be kept apart and swapped.\n"
            "- **Prefix-Tuning:** p extra positions in every attention layer, i.e. more keys to attend over "
            "and a shorter usable context window.\n"
            "- **Adapters:** extra sequential layers in every block: some latency, they cannot be merged, and "
            "batching requests for different tasks' adapters is awkward."
        ),
        "4.3d": (
            "- **Prefix-Tuning:** the prefix keys and values are prepended in the attention, K = [P_k; H W_k] "
            "and V = [P_v; H W_v]; the score matrix gets p extra columns that are never masked, the output "
            "still has n rows.\n"
            "- **Adapter:** after the FFN, F ↦ F + ReLU(F W_down) W_up (a bottleneck with its skip "
            "connection), then the usual residual Z' + F.\n"
            "- **LoRA:** each projection H W_x becomes H (W_x + (α/r) A_x B_x) for x ∈ {q, k, v}, a low-rank "
            "update that could also be merged into the weights."
        ),
    },
    "bob": {  # 2.1 and 3.2 are alice's with a few words changed, filled in below
        "2.2": (
            "PEFT saves a lot of resources. You store one base model and only small task-specific weights, so "
            "the disk usage is tiny. Tuning needs less GPU memory and gives faster training. There is less "
            "forgetting of the knowledge from pretraining, and you can share the trained modules with others."
        ),
        "2.3": (
            "Sometimes the quality is lower than with full fine-tuning. There are extra hyperparameters to "
            "choose, for example the rank in LoRA or the size of the adapter, and inference can have overhead "
            "when the extra modules are not merged."
        ),
        "3.1": (
            "LoRA changes the weights indirectly: a trained low-rank matrix is added to the frozen weight "
            "matrix. Prefix-tuning changes the input of attention: learned prefix vectors are added as extra "
            "keys and values. Adapters add new layers to the network that transform the hidden representation."
        ),
        "3.3": (
            "For inference LoRA is best, since the update can be merged and there is no overhead. "
            "Prefix-tuning needs extra tokens in every layer, so less sequence length remains for the input. "
            "Adapters cost additional layers and therefore some latency."
        ),
        "4.3d": (
            "Prefix-tuning: before computing attention, the trainable prefix is concatenated to the keys and "
            "values, so the attention matrix gets more columns but the output keeps n rows. Adapter: the "
            "feed-forward output goes through a bottleneck (down, ReLU, up) plus skip connection before the "
            "residual. LoRA: W_q, W_k and W_v each get a low-rank addition (alpha/r) A B."
        ),
    },
}

# bob's copies of alice's answers: (old, new) replacements, a few words each
BOB_EDITS: dict[str, tuple[tuple[str, str], ...]] = {
    "2.1": (("The core idea", "The main idea"), ("hundreds of millions of", "millions of"),
            ("In practice", "In reality")),
    "3.2": (("the easiest of", "the simplest of"), ("it takes a few", "it needs a few"),
            ("straightforward.", "easy.")),
}


def _bob_copies() -> dict[str, str]:
    copies = {}
    for question_id, edits in BOB_EDITS.items():
        text = STUDENT_ANSWERS["alice"][question_id]
        for old, new in edits:
            if old not in text:
                raise ValueError(f"bob's edit {old!r} not in alice's answer to {question_id}")
            text = text.replace(old, new, 1)
        copies[question_id] = text
    return copies


STUDENT_ANSWERS["bob"] = {**_bob_copies(), **STUDENT_ANSWERS["bob"]}
STUDENT_ANSWERS["bob"] = {q: STUDENT_ANSWERS["bob"][q] for q in GOOD_ANSWERS}  # in question order


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


# --------------------------------------------------------------------------- the students' own code
# Each student solves section 4 in her or his own way (names, helpers, numpy idioms), so their code does
# not look alike token by token; bob's is alice's in disguise (see BOB_RENAMES, BOB_COMMENTS).

ALICE_CODE: dict[str, str] = {
    "project": '''
def project(X, W):
    # each row of X is one word, so one matrix product maps all words at once
    projected = np.dot(X, W)
    return projected
''',
    "projection_loss": '''
def projection_loss(X_proj, Y):
    diff = X_proj - Y
    per_pair = np.sqrt(np.sum(diff ** 2, axis=1))  # Euclidean distance of every word pair
    return float(per_pair.sum())
''',
    "softmax": '''
def softmax(x):
    # subtract the row maximum first, otherwise exp overflows for large scores
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
''',
    "self_attention": '''
def _attention_core(Q, K, V, visible=None):
    """softmax(Q K^T / sqrt(d_k)) V, hiding the positions where visible is False."""
    scores = np.dot(Q, K.T) / np.sqrt(K.shape[1])
    if visible is not None:
        scores = np.where(visible, scores, -np.inf)
    return softmax(scores) @ V


def _causal_visible(n, p=0):
    """(n, p + n) mask: every token sees the p prefix positions and the tokens up to itself."""
    visible = np.ones((n, p + n), dtype=bool)
    visible[:, p:] = np.tril(np.ones((n, n), dtype=bool))
    return visible


def self_attention(H, W_q, W_k, W_v, causal=False):
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    visible = _causal_visible(H.shape[0]) if causal else None
    return _attention_core(Q, K, V, visible)
''',
    "feed_forward": '''
def feed_forward(X, W_1, W_2):
    hidden = np.maximum(0, X @ W_1)  # ReLU
    return hidden @ W_2
''',
    "encoder_layer": '''
def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    # the general layer of 4.3 without any PEFT is exactly the encoder layer
    return transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=False)
''',
    "decoder_layer": '''
def decoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    return transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=True)
''',
    "prefix_self_attention": '''
def prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    # the prefix already consists of keys and values: stack it on top as it is
    K = np.vstack([P_k, H @ W_k])
    V = np.vstack([P_v, H @ W_v])
    visible = _causal_visible(H.shape[0], P_k.shape[0]) if causal else None
    return _attention_core(H @ W_q, K, V, visible)
''',
    "bottleneck_adapter": '''
def bottleneck_adapter(X, W_down, W_up):
    down = np.maximum(0, X @ W_down)
    return X + down @ W_up  # inner skip connection: W_up = 0 leaves X unchanged
''',
    "lora_projection": '''
def lora_projection(X, W, A, B, alpha):
    rank = A.shape[1]
    scaling = alpha / rank
    return X @ W + scaling * ((X @ A) @ B)
''',
    "transformer_layer": '''
def transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None, lora=None,
                      lora_alpha=1.0):
    lora = lora or {}

    def projection(key, W):
        # a LoRA projection where factors are given, the frozen weight otherwise
        if key in lora:
            A, B = lora[key]
            return lora_projection(H, W, A, B, lora_alpha)
        return H @ W

    Q, K, V = projection("q", W_q), projection("k", W_k), projection("v", W_v)
    n_prefix = 0
    if prefix is not None:
        P_k, P_v = prefix
        K, V = np.vstack([P_k, K]), np.vstack([P_v, V])
        n_prefix = P_k.shape[0]
    visible = _causal_visible(H.shape[0], n_prefix) if causal else None
    Z_prime = H + _attention_core(Q, K, V, visible)
    ffn = feed_forward(Z_prime, W_1, W_2)
    if adapter is not None:
        ffn = bottleneck_adapter(ffn, *adapter)
    return Z_prime + ffn
''',
}

EMIL_CODE: dict[str, str] = {  # project and projection_loss are EMIL_OVERRIDES
    "softmax": '''
def softmax(x):
    x = np.array(x, dtype=float)
    biggest = np.max(x, axis=-1)
    biggest = biggest.reshape(biggest.shape + (1,))
    ex = np.exp(x - biggest)
    total = np.sum(ex, axis=-1)
    return ex / total.reshape(total.shape + (1,))
''',
    "self_attention": '''
def self_attention(H, W_q, W_k, W_v, causal=False):
    queries = H.dot(W_q)
    keys = H.dot(W_k)
    values = H.dot(W_v)
    dk = W_k.shape[1]
    s = queries.dot(keys.T) / np.sqrt(dk)
    if causal:
        # token i is not allowed to look at the tokens after it
        for i in range(s.shape[0]):
            for j in range(i + 1, s.shape[1]):
                s[i][j] = -np.inf
    weights = softmax(s)
    return weights.dot(values)
''',
    "feed_forward": '''
def feed_forward(X, W_1, W_2):
    h = X.dot(W_1)
    h = h * (h > 0)  # relu
    return h.dot(W_2)
''',
    "encoder_layer": '''
def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    z = self_attention(H, W_q, W_k, W_v)
    h1 = H + z  # first residual
    h2 = feed_forward(h1, W_1, W_2)
    return h1 + h2  # second residual
''',
    "decoder_layer": '''
def decoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    z = self_attention(H, W_q, W_k, W_v, causal=True)
    h1 = H + z
    return h1 + feed_forward(h1, W_1, W_2)
''',
    "prefix_self_attention": '''
def prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    p = len(P_k)
    queries = H.dot(W_q)
    keys = np.concatenate((P_k, H.dot(W_k)), axis=0)
    values = np.concatenate((P_v, H.dot(W_v)), axis=0)
    s = queries.dot(keys.T) / np.sqrt(W_k.shape[1])
    if causal:
        for i in range(len(H)):
            s[i, p + i + 1:] = -np.inf  # prefix stays visible, later tokens not
    return softmax(s).dot(values)
''',
    "bottleneck_adapter": '''
def bottleneck_adapter(X, W_down, W_up):
    small = X.dot(W_down)
    small = small * (small > 0)
    return X + small.dot(W_up)
''',
    "lora_projection": '''
def lora_projection(X, W, A, B, alpha):
    r = A.shape[1]
    W_merged = W + (alpha / r) * A.dot(B)
    return X.dot(W_merged)
''',
    "transformer_layer": '''
def transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None, lora=None,
                      lora_alpha=1.0):
    W = {"q": W_q, "k": W_k, "v": W_v}
    if lora is not None:
        for name in lora:
            A, B = lora[name]
            W[name] = W[name] + lora_alpha / A.shape[1] * A.dot(B)  # merge LoRA into the weight
    if prefix is None:
        z = self_attention(H, W["q"], W["k"], W["v"], causal)
    else:
        z = prefix_self_attention(H, W["q"], W["k"], W["v"], prefix[0], prefix[1], causal)
    h1 = H + z
    f = feed_forward(h1, W_1, W_2)
    if adapter is not None:
        f = bottleneck_adapter(f, adapter[0], adapter[1])
    return h1 + f
''',
}

FATIMA_CODE: dict[str, str] = {  # everything in float32, like her PyTorch solution
    "project": '''
def _f32(*arrays):
    return tuple(np.asarray(a, dtype=np.float32) for a in arrays)


def project(X, W):
    X, W = _f32(X, W)
    return np.matmul(X, W)
''',
    "projection_loss": '''
def projection_loss(X_proj, Y):
    X_proj, Y = _f32(X_proj, Y)
    delta = X_proj - Y
    return float(np.sqrt(np.einsum("ij,ij->i", delta, delta)).sum())
''',
    "softmax": '''
def softmax(x):
    (x,) = _f32(x)
    x = x - np.amax(x, axis=-1)[..., np.newaxis]  # stable: the largest exponent is 0
    np.exp(x, out=x)
    return x / x.sum(axis=-1)[..., np.newaxis]
''',
    "self_attention": '''
def _future_bias(n_queries, n_keys, offset=0):
    # 0 where query i may look at key j, -inf where key j lies in its future
    i = np.arange(n_queries)[:, np.newaxis]
    j = np.arange(n_keys)[np.newaxis, :]
    return np.where(j > i + offset, -np.inf, 0.0).astype(np.float32)


def self_attention(H, W_q, W_k, W_v, causal=False):
    H, W_q, W_k, W_v = _f32(H, W_q, W_k, W_v)
    q, k, v = H @ W_q, H @ W_k, H @ W_v
    logits = (q @ k.T) * np.float32(k.shape[-1] ** -0.5)
    if causal:
        logits = logits + _future_bias(len(q), len(k))
    return softmax(logits) @ v
''',
    "feed_forward": '''
def feed_forward(X, W_1, W_2):
    X, W_1, W_2 = _f32(X, W_1, W_2)
    return np.clip(X @ W_1, 0.0, None) @ W_2
''',
    "encoder_layer": '''
def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    (H,) = _f32(H)
    h = H + self_attention(H, W_q, W_k, W_v)
    return h + feed_forward(h, W_1, W_2)
''',
    "decoder_layer": '''
def decoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    (H,) = _f32(H)
    h = H + self_attention(H, W_q, W_k, W_v, causal=True)
    return h + feed_forward(h, W_1, W_2)
''',
    "prefix_self_attention": '''
def prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    H, W_q, W_k, W_v, P_k, P_v = _f32(H, W_q, W_k, W_v, P_k, P_v)
    p = len(P_k)
    k = np.concatenate([P_k, H @ W_k])
    v = np.concatenate([P_v, H @ W_v])
    logits = ((H @ W_q) @ k.T) * np.float32(k.shape[-1] ** -0.5)
    if causal:
        logits = logits + _future_bias(len(H), len(k), offset=p)  # the prefix is never in the future
    return softmax(logits) @ v
''',
    "bottleneck_adapter": '''
def bottleneck_adapter(X, W_down, W_up):
    X, W_down, W_up = _f32(X, W_down, W_up)
    return X + np.clip(X @ W_down, 0.0, None) @ W_up
''',
    "lora_projection": '''
def lora_projection(X, W, A, B, alpha):
    X, W, A, B = _f32(X, W, A, B)
    scale = np.float32(alpha / A.shape[1])  # alpha / r
    return X @ W + scale * np.linalg.multi_dot([X, A, B])
''',
    "transformer_layer": '''
def transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None, lora=None,
                      lora_alpha=1.0):
    (H,) = _f32(H)
    factors = lora if lora is not None else {}
    projected = []
    for name, W in zip("qkv", (W_q, W_k, W_v)):
        if name in factors:
            projected.append(lora_projection(H, W, *factors[name], lora_alpha))
        else:
            projected.append(H @ _f32(W)[0])
    q, k, v = projected
    p = 0
    if prefix is not None:
        P_k, P_v = _f32(*prefix)
        p = len(P_k)
        k, v = np.concatenate([P_k, k]), np.concatenate([P_v, v])
    logits = (q @ k.T) * np.float32(k.shape[-1] ** -0.5)
    if causal:
        logits = logits + _future_bias(len(q), len(k), offset=p)
    h = H + softmax(logits) @ v
    out = feed_forward(h, W_1, W_2)
    if adapter is not None:
        out = bottleneck_adapter(out, *adapter)
    return h + out
''',
}

# bob renames alice's local names (never the functions' parameters: the grader may pass them by keyword)
BOB_RENAMES = {
    "projected": "result", "diff": "delta", "per_pair": "distances", "z": "shifted", "e": "exps",
    "_attention_core": "_attend", "_causal_visible": "_make_mask", "visible": "allowed", "scores": "logits",
    "Q": "queries", "K": "keys", "V": "values", "hidden": "act", "down": "squeezed", "rank": "r",
    "scaling": "factor", "projection": "proj", "key": "which", "n_prefix": "num_prefix", "Z_prime": "res",
    "ffn": "ff_out",
}
BOB_COMMENTS = {  # alice's comment -> bob's wording ("" drops it)
    "# each row of X is one word, so one matrix product maps all words at once": "# rows are words",
    "# Euclidean distance of every word pair": "# L2 norm per row",
    "# subtract the row maximum first, otherwise exp overflows for large scores": "# numerically stable version",
    "# ReLU": "# relu activation",
    "# the general layer of 4.3 without any PEFT is exactly the encoder layer": "# reuse the general layer",
    "# the prefix already consists of keys and values: stack it on top as it is": "",
    "# inner skip connection: W_up = 0 leaves X unchanged": "# residual inside the adapter",
    "# a LoRA projection where factors are given, the frozen weight otherwise": "# use lora if given",
}


def _with_docstrings(sources: dict[str, str]) -> dict[str, str]:
    """The students' functions with the template's docstrings kept (they filled in the stubs)."""
    reference = correct_sources()
    out = {}
    for name, source in sources.items():
        source = textwrap.dedent(source).strip("\n") + "\n"
        ref_node = ast.parse(reference[name]).body[0]
        ref_lines = reference[name].splitlines()
        docstring = ref_lines[ref_node.body[0].lineno - 1:ref_node.body[0].end_lineno]
        node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name)
        lines = source.splitlines()
        at = node.body[0].lineno - 1
        while at > node.lineno and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
            at -= 1  # the docstring comes first, above the student's own comments
        out[name] = "\n".join(lines[:at] + docstring + lines[at:]) + "\n"
    return out


def _disguise(source: str, renames: dict[str, str], comments: dict[str, str]) -> str:
    """``source`` with the NAME tokens in ``renames`` and the comments in ``comments`` replaced (others dropped)."""
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    edits = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        start = line_starts[token.start[0] - 1] + token.start[1]
        end = line_starts[token.end[0] - 1] + token.end[1]
        if token.type == tokenize.NAME and token.string in renames:
            edits.append((start, end, renames[token.string]))
        elif token.type == tokenize.COMMENT:
            text = comments.get(token.string, "")
            line_start = line_starts[token.start[0] - 1]
            if not text and not source[line_start:start].strip():  # a comment line dropped entirely
                start, end = line_start, line_starts[token.start[0]]
            edits.append((start, end, text))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return "\n".join(line.rstrip() for line in source.splitlines()) + "\n"


def student_sources(student: str) -> dict[str, str]:
    """The function sources an example student wrote (carla: the reference with her mistake)."""
    if student == "alice":
        return _with_docstrings(ALICE_CODE)
    if student == "bob":
        return {name: _disguise(source, BOB_RENAMES, BOB_COMMENTS)
                for name, source in student_sources("alice").items()}
    if student == "carla":
        sources = correct_sources()
        name, source = mistake_source("self_attention__unscaled")
        sources[name] = source
        return sources
    if student == "emil":
        return {**_with_docstrings(EMIL_CODE), **EMIL_OVERRIDES}
    if student == "fatima":
        return {name: textwrap.dedent(source).strip("\n") + "\n" for name, source in FATIMA_CODE.items()}
    raise KeyError(f"no example student {student!r}")


def write_examples(folder: Path = SUBMISSIONS) -> list[Path]:
    """Write the six example submissions into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    notebooks = {student: notebook_submission(student_sources(student), STUDENT_ANSWERS[student])
                 for student in ("alice", "carla", "emil", "fatima")}
    notebooks["dmitri"] = template_notebook(assignment())
    emil = notebooks["emil"]
    broken = nbformat.v4.new_code_cell(EMIL_BROKEN_CELL)
    broken["id"] = "emil-broken-helper"
    emil.cells.insert(next(i for i, c in enumerate(emil.cells) if c.cell_type == "code"), broken)
    written = []
    for student, notebook in sorted(notebooks.items()):
        nbformat.validate(notebook)
        path = folder / f"{student}.ipynb"
        nbformat.write(notebook, str(path))
        written.append(path)
    bob = folder / "bob.py"
    bob.write_text(module_submission(student_sources("bob"), STUDENT_ANSWERS["bob"]), encoding="utf-8")
    written.append(bob)
    return sorted(written)


def main() -> int:
    for path in write_examples():
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

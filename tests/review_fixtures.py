"""A synthetic course for the gradebook, similarity and review tests.

``build_course(n)`` makes n students of Exercise 1 (PEFT): each with six bonus written answers plus 4.3d
assembled from a bank of sentences, a notebook's worth of code written in one of several styles with
their own variable names and comments, and a SubmissionResult as the pipeline would record it. Planted
in it, and named on the Course so tests can check them:

- ``copied_code``: pairs where one student took the other's code and renamed variables, changed
  comments and spacing;
- ``answer_twins``: pairs whose answers to one question are near-identical (case, a word, punctuation);
- ``answer_ring``: four students handing in the same answer to 2.1 (copied from one source);
- ``script_student``: an answer that contains HTML and a ``<script>``;
- ``markdown_student``: an answer with markdown (list, emphasis, code);
- some missing and some very short answers.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field, replace

from grader.assignment import Assignment, BonusRule, Concept, Question
from grader.results import BonusDecision, QuestionResult, Status, SubmissionResult

ASSIGNMENT_ID = "exercise-01"
WRITTEN = ("2.1", "2.2", "2.3", "3.1", "3.2", "3.3", "4.3d")
CODE = ("4.1a", "4.1b", "4.2a", "4.2b", "4.2c")


def _written(qid: str, title: str, prompt: str, concepts: list[tuple[str, list[str]]], bonus: bool = True,
             min_words: int = 30) -> Question:
    return Question(id=qid, kind="written", title=title, prompt=prompt, points=2.0, bonus=bonus,
                    section=qid.split(".")[0], min_words=min_words,
                    rubric=tuple(Concept(name, tuple([name, *syn])) for name, syn in concepts))


def make_assignment(version: str = "v1") -> Assignment:
    questions = [
        _written("2.1", "Core idea of PEFT", "Explain the **core idea** of parameter-efficient fine-tuning.",
                 [("frozen", ["freeze", "freezes", "fixed", "unchanged"]),
                  ("few parameters", ["small number of parameters", "subset of parameters", "small fraction"]),
                  ("task-specific", ["downstream task", "new task"])]),
        _written("2.2", "Advantages", "What are the key advantages of PEFT?",
                 [("memory", ["storage", "GPU memory", "disk"]), ("faster training", ["compute", "cheaper"]),
                  ("catastrophic forgetting", ["forgetting"]), ("modular", ["swap", "one base model"])]),
        _written("2.3", "Disadvantages", "Name potential disadvantages of PEFT.",
                 [("lower performance", ["worse", "underperform", "performance gap"]),
                  ("inference latency", ["slower inference", "latency"]),
                  ("hyperparameters", ["rank", "bottleneck size", "prefix length"])]),
        _written("3.1", "Modelling", "Compare LoRA, prefix-tuning and adapters: how are representations updated?",
                 [("low-rank", ["low rank", "BA", "rank decomposition"]),
                  ("virtual tokens", ["prefix", "keys and values"]),
                  ("bottleneck", ["down-projection", "up-projection"])]),
        _written("3.2", "Implementation", "Compare them for implementation and ease of use.",
                 [("wrap layers", ["modify the layer", "insert modules"]), ("library", ["peft", "huggingface"])]),
        _written("3.3", "Inference", "Compare them at inference time.",
                 [("merge", ["merged", "folded into the weights"]), ("extra layers", ["additional layers"]),
                  ("context length", ["sequence length", "shorter context"])]),
        _written("4.3d", "In words", "Describe how prefix-tuning, the adapter and LoRA change the computation.",
                 [("prefix", ["prepended"]), ("adapter", ["residual"]), ("lora", ["low-rank"])], bonus=False,
                 min_words=20),
    ]
    questions += [Question(id=qid, kind="code", title=f"Code {qid}", prompt="", points=1.0, bonus=False,
                           section="4", functions=(f"f_{qid.replace('.', '_')}",)) for qid in CODE]
    return Assignment(id=ASSIGNMENT_ID, title="Exercise 1: PEFT", version=version, questions=tuple(questions),
                      bonus=BonusRule(rule="all"))


# --------------------------------------------------------------------------- written answers

SENTENCES = {
    "2.1": ["The pretrained model is kept frozen and only a small number of parameters is trained.",
            "Instead of updating all weights we freeze the backbone and learn a few new parameters for the downstream task.",
            "PEFT adapts a large language model to a new task by training only a small fraction of its weights.",
            "Most of the weights stay unchanged, which is the whole point.",
            "This makes fine-tuning feasible on a single GPU.",
            "The idea is similar to feature extraction but more expressive.",
            "Full fine-tuning would update billions of parameters for every task.",
            "Small task-specific modules are added and trained while the rest is fixed."],
    "2.2": ["It needs much less GPU memory because optimizer states exist only for the new parameters.",
            "Training is faster and cheaper in compute.",
            "Since the base model is not changed there is less catastrophic forgetting.",
            "One base model can serve many tasks, we just swap the small modules, which is very modular.",
            "Storage is tiny: a checkpoint is a few megabytes instead of gigabytes.",
            "It also works well in low-resource settings with little data.",
            "Sharing a task is as easy as sending a small file."],
    "2.3": ["Performance can be worse than full fine-tuning on hard tasks.",
            "Adapters add inference latency because of the extra layers.",
            "There are new hyperparameters such as the rank or the prefix length to tune.",
            "Prefix-tuning can be unstable to train.",
            "It is not always clear which method to pick for a given task.",
            "There may be a performance gap for very different domains."],
    "3.1": ["LoRA adds a low-rank update BA to the weight matrices.",
            "Prefix-tuning prepends trainable virtual tokens, i.e. extra keys and values in every attention layer.",
            "Adapters insert a small bottleneck network with a down-projection and an up-projection after a sublayer.",
            "So LoRA changes the weights, prefix-tuning changes the attention inputs and adapters change the hidden states.",
            "All three leave the original weights frozen.",
            "The update of LoRA lives in weight space while the adapter acts on activations.",
            "Prefix-tuning only influences the output through the attention weights.",
            "Adapters are applied sequentially, LoRA in parallel to the frozen projection.",
            "Because BA starts at zero, training starts exactly from the pretrained model."],
    "3.2": ["LoRA is easy to implement: wrap the linear layers and add two small matrices.",
            "With the huggingface peft library each method is a few lines of configuration.",
            "Adapters require to modify the layer structure and insert modules into the forward pass.",
            "Prefix-tuning needs access to the attention keys and values which is more intrusive.",
            "Choosing the rank is the main decision for LoRA.",
            "Debugging is harder for prefix-tuning because the prefix has no direct meaning.",
            "Adapters were the first of the three and many pretrained adapters exist on AdapterHub.",
            "In our notebook LoRA took eight lines of numpy.",
            "The adapter needs a decision where to put it: after attention, after the feed-forward block or both.",
            "Prefix-tuning often uses a reparametrisation with an MLP during training which makes the code longer."],
    "3.3": ["LoRA weights can be merged into the base weights, so inference has no extra cost.",
            "Adapters add additional layers and therefore some latency at inference.",
            "Prefix-tuning uses up part of the context length, leaving a shorter context for the input.",
            "For serving many tasks at once unmerged LoRA modules can be batched.",
            "Adapters can be switched per request.",
            "Merged LoRA means one model per task though, unless the update is kept separate.",
            "The prefix keys and values can be precomputed once per task.",
            "Memory at inference is nearly the same as for the base model for all three.",
            "Batching different tasks is hardest with merged weights."],
    "4.3d": ["Prefix-tuning concatenates learned prefix keys and values to the attention, so the queries also attend to them.",
             "The adapter is a small residual bottleneck applied to the output of the feed-forward block.",
             "LoRA adds the product of two low-rank matrices to a projection, scaled by alpha over r.",
             "None of them changes the shapes of the layer outputs.",
             "With a prefix the attention matrix gets more columns, one per prefix token.",
             "The adapter output is added back to its input so an all-zero adapter is the identity.",
             "LoRA in our code only touches the query and value projections."],
}

FIRST = ["Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ines", "Jonas", "Katharina", "Lukas",
         "Mia", "Noah", "Olga", "Paul", "Quirin", "Rosa", "Sven", "Tuğba", "Ulrike", "Vincent", "Wen", "Yusuf", "Zoë"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Öztürk", "Nguyen", "Kowalski", "García", "Rossi", "Yamamoto", "Ivanova", "Dubois"]


VARIANTS = {
    "model": ["model", "network", "LM", "transformer"], "small": ["small", "tiny", "little", "compact"],
    "only": ["only", "just", "merely"], "trained": ["trained", "learned", "updated", "optimised"],
    "much": ["much", "far", "a lot"], "because": ["because", "since", "as"], "many": ["many", "several", "lots of"],
    "easy": ["easy", "simple", "straightforward"], "adds": ["adds", "introduces", "puts in"],
    "the": ["the", "the", "the", "this"], "can": ["can", "may", "could"], "very": ["very", "really", "quite", ""],
    "add": ["add", "introduce", "insert"], "uses": ["uses", "takes", "consumes"], "so": ["so", "thus", "therefore"],
    "new": ["new", "additional", "extra"], "weights": ["weights", "weight matrices", "matrices"],
}
OPENERS = ["", "", "", "Basically, ", "In short, ", "As far as I understand, ", "Essentially, ", "In practice, ",
           "Put simply, ", "Importantly, ", "First, ", "Also, "]


def _paraphrase(rng: random.Random, sentence: str) -> str:
    words = [rng.choice(VARIANTS[w]) if w in VARIANTS and rng.random() < 0.6 else w for w in sentence.split()]
    text = " ".join(w for w in words if w)
    opener = rng.choice(OPENERS)
    return opener + (text[0].lower() + text[1:] if opener else text)


def _answer(rng: random.Random, qid: str) -> str:
    chosen = rng.sample(SENTENCES[qid], k=rng.randint(2, min(5, len(SENTENCES[qid]))))
    text = " ".join(_paraphrase(rng, sentence) for sentence in chosen)
    if rng.random() < 0.3:
        text += " " + rng.choice(["I think this is the main point.", "See also the lecture slides.",
                                  "In our experiments this held as well.", "This is my understanding."])
    return text


def _near_copy(rng: random.Random, text: str) -> str:
    """Case changes, one word changed, punctuation: what a hurried copier does."""
    words = text.split()
    i = rng.randrange(len(words))
    words[i] = {"the": "a", "is": "is", "and": "&"}.get(words[i], words[i])
    out = " ".join(words)
    return out.replace(".", ". ", 1).lower() if rng.random() < 0.5 else out.replace(",", "")


# --------------------------------------------------------------------------- code

TEMPLATE_CODE = '''import numpy as np


def project(X, W):
    """Project the rows of X with W: returns X @ W, shape (n, d_tgt)."""
    raise NotImplementedError


def projection_loss(X_proj, Y):
    """Sum over word pairs of the Euclidean distance between X_proj[i] and Y[i]."""
    raise NotImplementedError


def softmax(x):
    """Row-wise softmax of a 2-D array; subtract the row maximum for stability."""
    raise NotImplementedError


def self_attention(X, W_q, W_k, W_v):
    """Single-head scaled dot-product self-attention, tokens are rows."""
    raise NotImplementedError


def feed_forward(X, W_1, W_2):
    """ReLU feed-forward block without biases."""
    raise NotImplementedError
'''

# Each function body in several styles; {a}, {b}, {c} are the student's own names.
STYLES = {
    "project": ["    return {a} @ {b}\n",
                "    {c} = np.dot({a}, {b})\n    return {c}\n",
                "    {c} = np.matmul({a}, {b})\n    assert {c}.shape[0] == {a}.shape[0]\n    return {c}\n"],
    "projection_loss": ["    return np.sum(np.linalg.norm({a} - {b}, axis=1))\n",
                        "    {c} = 0.0\n    for i in range(len({a})):\n        {c} += np.sqrt(np.sum(({a}[i] - {b}[i]) ** 2))\n    return {c}\n",
                        "    {c} = {a} - {b}\n    return float(np.sqrt(({c} * {c}).sum(axis=-1)).sum())\n"],
    "softmax": ["    {c} = np.exp({a} - {a}.max(axis=1, keepdims=True))\n    return {c} / {c}.sum(axis=1, keepdims=True)\n",
                "    {b} = {a} - np.max({a}, axis=-1, keepdims=True)\n    {c} = np.exp({b})\n    return {c} / np.sum({c}, axis=-1, keepdims=True)\n",
                "    {c} = np.zeros_like({a}, dtype=float)\n    for i, row in enumerate({a}):\n        e = np.exp(row - row.max())\n        {c}[i] = e / e.sum()\n    return {c}\n"],
    "self_attention": ["    q, k, v = X @ W_q, X @ W_k, X @ W_v\n    {c} = q @ k.T / np.sqrt(k.shape[1])\n    return softmax({c}) @ v\n",
                       "    {a} = np.dot(X, W_q)\n    {b} = np.dot(X, W_k)\n    {c} = softmax({a} @ {b}.T / np.sqrt(W_k.shape[1]))\n    return {c} @ (X @ W_v)\n",
                       "    d_k = W_k.shape[-1]\n    scores = (X @ W_q) @ (X @ W_k).T\n    scores = scores / d_k ** 0.5\n    {c} = softmax(scores)\n    return np.matmul({c}, X @ W_v)\n"],
    "feed_forward": ["    return np.maximum(0, X @ W_1) @ W_2\n",
                     "    {c} = X @ W_1\n    {c}[{c} < 0] = 0\n    return {c} @ W_2\n",
                     "    {a} = np.dot(X, W_1)\n    {b} = np.where({a} > 0, {a}, 0.0)\n    return np.dot({b}, W_2)\n"],
}
NAMES = ["tmp", "out", "res", "result", "h", "z", "e", "s", "m", "acc", "val", "hidden", "scores", "weights",
         "exps", "probs", "y", "mat", "buf", "total", "diff", "norms", "act", "proj", "inner"]
EXPLORATION = [
    "{v} = np.random.randn({n}, {m})\nprint(softmax({v}).sum(axis=1))",
    "print(project(np.eye({n}), np.ones(({n}, {m}))).shape)",
    "for trial in range({n}):\n    {v} = np.random.rand({m}, {m})\n    assert np.allclose(softmax({v}).sum(1), 1)",
    "def check(a, b):\n    return np.abs(a - b).max()",
    "{v} = [softmax(np.random.randn(3, {n})) for _ in range({m})]\nprint(len({v}))",
    "import matplotlib.pyplot as plt\nplt.imshow(softmax(np.random.randn({n}, {n})))\nplt.show()",
    "np.random.seed({n})\nX = np.random.randn({m}, 4)\nW = np.random.randn(4, 3)\nprint(project(X, W))",
    "with np.printoptions(precision=3):\n    print(feed_forward(np.ones((2, {n})), np.eye({n}), np.eye({n})))",
    "{v} = self_attention(np.eye(3), np.eye(3), np.eye(3), np.eye(3))\nprint({v}.round(2))",
    "assert projection_loss(np.zeros((2, 2)), np.zeros((2, 2))) == 0",
    "print('loss', projection_loss(np.ones(({n}, 2)), np.zeros(({n}, 2))))",
    "{v} = {{'a': 1, 'b': [1, 2, 3]}}\nprint({v}['b'][-1])",
    "try:\n    softmax(np.array([[1000.0, 1000.0]]))\nexcept FloatingPointError as err:\n    print(err)",
    "def relu(z):\n    return np.maximum(z, 0)\nprint(relu(np.arange(-{n}, {m})))",
    "{v} = np.linspace(-{n}, {m}, 50)\nprint({v}.mean(), {v}.std())",
    "print(np.__version__)",
    "%timeit softmax(np.random.randn(100, 100))" if False else "import time\nt0 = time.time()\nsoftmax(np.random.randn(100, {n}0))\nprint(time.time() - t0)",
    "while {n} > {m}:\n    break",
    "{v} = lambda t: t * {n}\nprint({v}(np.arange({m})))",
    "class Tiny:\n    def __init__(self, w):\n        self.w = w\n    def __call__(self, x):\n        return x @ self.w",
]
SIGNATURES = {line.split("(")[0][4:]: line for line in TEMPLATE_CODE.splitlines() if line.startswith("def ")}
DOCSTRINGS = {name: TEMPLATE_CODE.split(SIGNATURES[name])[1].split("\n")[1] for name in SIGNATURES}


def _code(rng: random.Random, styles: dict[str, int] | None = None, names: list[str] | None = None,
          extras: bool = True) -> str:
    parts = ["import numpy as np\n"]
    for function, bodies in STYLES.items():
        style = styles[function] if styles else rng.randrange(len(bodies))
        a, b, c = names or rng.sample(NAMES, 3)
        params = {"project": ("X", "W"), "projection_loss": ("X_proj", "Y"), "softmax": ("x", b)}.get(function)
        if params:
            a, b = params
        body = bodies[style].format(a=a, b=b, c=c)
        comment = f"    # {rng.choice(['my solution', 'vectorised', 'see lecture 3', 'TODO: check shapes', 'works'])}\n" \
            if extras and rng.random() < 0.5 else ""
        debug = f"    # print({c}.shape)\n" if extras and rng.random() < 0.3 else ""
        parts.append(f"\n\n{SIGNATURES[function]}\n{DOCSTRINGS[function]}\n{comment}{body.rstrip()}\n{debug}")
    if extras:  # the student's own exploration cells, in their own order
        cells = rng.sample(EXPLORATION, k=rng.randint(4, 9))
        parts += ["\n\n" + cell.format(n=rng.randint(2, 9), m=rng.randint(2, 9), v=rng.choice(NAMES)) for cell in cells]
    return "".join(parts) + "\n"


def _rename(rng: random.Random, code: str) -> str:
    """What a copier does: other names, other comments, other blank lines; the structure stays."""
    for old in NAMES:
        new = rng.choice(["foo", "bar", "x1", "tmp2", "mine", "my_var", "helper", "q2", "xx"]) + str(rng.randint(0, 99))
        code = re.sub(rf"(?<![\w.]){old}\b(?!\()", new, code)
    return code.replace("# ", "# note: ").replace("\n\n\ndef", "\n\ndef")


# --------------------------------------------------------------------------- the course


@dataclass
class Course:
    assignment: Assignment
    results: list[SubmissionResult]
    code: dict[str, str]
    answers: dict[str, dict[str, str]]
    names: dict[str, str]  # student -> full name
    template_code: str = TEMPLATE_CODE
    template_answers: dict[str, str] = field(default_factory=dict)
    copied_code: list[tuple[str, str]] = field(default_factory=list)
    answer_twins: list[tuple[str, str, str]] = field(default_factory=list)  # (a, b, question)
    answer_ring: list[str] = field(default_factory=list)
    script_student: str = ""
    markdown_student: str = ""


def _student_id(full_name: str, participant: int) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ğ": "g", "ë": "e", "í": "i"})
    return "-".join(full_name.lower().translate(table).split()) + f"-{participant}"


def build_course(n_students: int = 120, seed: int = 1, version: str = "v1") -> Course:
    rng = random.Random(seed)
    assignment = make_assignment(version)
    students, names = [], {}
    for i in range(n_students):
        full = f"{FIRST[i % len(FIRST)]} {LAST[(i * 7 + i // len(FIRST)) % len(LAST)]}"
        sid = _student_id(full, 100000 + i * 13)
        students.append(sid)
        names[sid] = full
    code = {s: _code(rng) for s in students}
    answers = {s: {q: _answer(rng, q) for q in WRITTEN} for s in students}
    course = Course(assignment, [], code, answers, names,
                    template_answers={q: f"### Answer {q}\nYour answer here." for q in WRITTEN})
    # copied code: 4 pairs
    for k in range(4):
        a, b = students[10 + 2 * k], students[11 + 2 * k]
        code[b] = _rename(rng, code[a])
        course.copied_code.append((a, b))
    # near-identical answers: 6 pairs on different questions
    for k in range(6):
        a, b, q = students[30 + 2 * k], students[31 + 2 * k], WRITTEN[k]
        answers[b][q] = _near_copy(rng, answers[a][q])
        course.answer_twins.append((a, b, q))
    # a ring of four with the same answer to 2.1
    ring = students[50:54]
    for s in ring[1:]:
        answers[s]["2.1"] = answers[ring[0]]["2.1"]
    course.answer_ring = list(ring)
    # missing and short answers
    for s in students[60:66]:
        answers[s]["2.3"] = ""
    for s in students[66:70]:
        answers[s]["3.3"] = "LoRA is faster."
    course.script_student = students[70]
    answers[course.script_student]["2.2"] = (
        "It saves memory <script>window.__pwned = true; document.title = 'pwned'</script> "
        "<img src=x onerror=\"window.__pwned=true\"> and is **faster training**. " + SENTENCES["2.2"][0])
    course.markdown_student = students[71]
    answers[course.markdown_student]["3.1"] = (
        "Three ways:\n\n- **LoRA**: a *low-rank* update `W + BA`\n- **prefix-tuning**: virtual tokens\n"
        "- **adapters**: a bottleneck MLP\n\n```python\nh = h + up(relu(down(h)))\n```\n")
    course.results = [make_result(assignment, s, code[s], answers[s], rng) for s in students]
    return course


def content_hash(code: str, answers: dict[str, str]) -> str:
    digest = hashlib.sha256(code.encode())
    for q in sorted(answers):
        digest.update(f"\0{q}\0{answers[q]}".encode())
    return digest.hexdigest()


def make_result(assignment: Assignment, student: str, code: str, answers: dict[str, str],
                rng: random.Random, mode: str = "grade", graded_at: str = "2024-06-20T10:00:00+00:00") -> SubmissionResult:
    questions = {}
    for question in assignment.questions:
        if question.kind == "written":
            text = answers.get(question.id, "")
            status = Status.PENDING if text.strip() else Status.MISSING
            questions[question.id] = QuestionResult(
                question.id, "written", question.title, status, 0.0, question.points, question.bonus,
                "awaiting review" if text.strip() else "no answer found", answer=text or None)
        else:
            passed = rng.random() < 0.8
            questions[question.id] = QuestionResult(
                question.id, "code", question.title, Status.PASSED if passed else Status.FAILED,
                question.points if passed else 0.0, question.points, question.bonus,
                "all cases pass" if passed else "2 of 5 cases differ")
    score = sum(q.score for q in questions.values())
    return SubmissionResult(
        student=student, file=f"submissions/{student}/exercise-01.ipynb", assignment=assignment.id,
        isolation="namespaces", error=None, questions=questions,
        bonus=BonusDecision(None, "6 written answers await review"), score=score,
        max_score=sum(q.points for q in assignment.questions), mode=mode,
        content_hash=content_hash(code, answers), assignment_version=assignment.version,
        graded_at=graded_at, duration=round(rng.uniform(1.0, 4.0), 2))


def second_run(course: Course, changed: int = 25, seed: int = 2) -> list[SubmissionResult]:
    """The results of a regrade a week later: ``changed`` students handed in a new version."""
    rng = random.Random(seed)
    picked = set(rng.sample(range(len(course.results)), changed))
    results = []
    for i, result in enumerate(course.results):
        if i in picked:
            answers = dict(course.answers[result.student])
            answers["2.3"] = (answers.get("2.3") or "") + " Also, the rank must be tuned."
            results.append(make_result(course.assignment, result.student, course.code[result.student], answers, rng,
                                       graded_at="2024-06-27T10:00:00+00:00"))
        else:
            results.append(replace(result, graded_at="2024-06-27T10:00:00+00:00"))
    return results


# --------------------------------------------------------------------------- handed-in notebooks

PWN_MARKERS = ("__pwned_markdown", "__pwned_onerror", "__pwned_js", "__pwned_raw", "__pwned_svg")


def handed_in_notebook(course: Course, student: str, hostile: bool = False) -> bytes:
    """The notebook a student of the course could have handed in: their answers in markdown cells, their
    code with a printed output and a small PNG plot; ``hostile`` adds a script in markdown, an HTML output
    with ``onerror``, a JavaScript output, a raw HTML cell and an SVG output with a script (none may run)."""
    import base64
    import zlib

    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

    def png(width: int, height: int) -> str:  # a red square, a real PNG
        raw = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

        header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
        data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
        return base64.b64encode(data).decode()

    cells = [new_markdown_cell("# Exercise 1: PEFT\n\nScratch notes: *try the rank 4 first*.")]
    for qid, text in course.answers[student].items():
        cells.append(new_markdown_cell(f"### Answer {qid}\n{text}"))
    cells.append(new_code_cell(course.code[student], execution_count=1, outputs=[
        new_output("stream", name="stdout", text="loss 0.25 after 10 steps\n"),
        new_output("display_data", data={"image/png": png(24, 16), "text/plain": "<Figure>"})]))
    if hostile:
        cells += [
            new_markdown_cell("Look: <script>window.__pwned_markdown = 1; document.title = 'pwned'</script> "
                              "<img src=x onerror=\"window.__pwned_onerror = 1\"> [click](javascript:window.__pwned_js=1)"),
            new_code_cell("display(HTML(...))", execution_count=2, outputs=[
                new_output("display_data", data={"text/html": "<b>bold output</b><img src=nope "
                                                               "onerror=\"window.__pwned_onerror = 2\">",
                                                 "text/plain": "<HTML>"}),
                new_output("display_data", data={"application/javascript": "window.__pwned_js = 2",
                                                 "text/plain": "<Javascript>"}),
                new_output("display_data", data={"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg'>"
                                                                  "<script>window.__pwned_svg = 1</script></svg>"})]),
            new_raw_cell("<script>window.__pwned_raw = 1</script>", metadata={"format": "text/html"}),
        ]
    return nbformat.writes(new_notebook(cells=cells)).encode()

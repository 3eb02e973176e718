"""Written answers: found where students put them, read as text, never executed.

A notebook's answer is the markdown cell tagged ``answer-<id>`` or headed ``### Answer <id>``, but
students move, copy, merge and retype those cells. This module reads every markdown and raw cell
line by line and recognises the markers students really write (``## 2.1``, ``**Answer 2.3:**``,
``### Answer to 3.1``, ``### 3.2 Answer``, ``### Antwort 3.3``, ``### Answer 4.3 d``, several of them
in one cell), takes the plain cells below an answer as part of it (the template's placeholder cell
left as it is, the answer typed in a new cell below), and lets a heading win over a contradicting tag.

A module's answer is the string ``ANSWER_<id>``, read from the syntax tree: plain, f-, concatenated
or ``.strip()``-ed strings, the last assignment winning; ``# Answer 2.1:`` comment blocks and bare
strings that start with a marker count too.

The rule: a student's text is never silently lost. Text the grader cannot place with confidence (a
plain cell below a question's prompt, an answer computed by code) is returned with a note that says
where it was found; scoring then leaves it to the reviewer instead of calling the question missing.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from dataclasses import dataclass
from typing import Callable, Iterator

ANSWER_PLACEHOLDER = "*Your answer here.*"
_PLACEHOLDER = re.compile(r"[*_]{0,2}\s*your answer here\.?\s*[*_]{0,2}", re.I)

_WORD = r"(?:answers?|antwort(?:en)?|l(?:ö|oe)sung(?:en)?|solution)"
_LINK = r"(?:(?:to|for|of|zu|zur|zum|auf)\s+)?"
_QWORD = r"(?:(?:question|task|exercise|aufgabe|teilaufgabe|frage|q)\s*)?"
_ID = r"(?P<id>\d+(?:\.\d+)*(?:\s?\(?[a-z]\)?(?!\w))?)"
_SEP = r"[\s:.)\-–—*_]*"
# the line after its markdown decoration (#, >, emphasis) is taken off
_EXPLICIT = re.compile(rf"^{_WORD}\s*{_LINK}{_QWORD}{_ID}(?:\s*{_WORD}\b)?{_SEP}(?P<rest>.*)$", re.I)
_ID_THEN_WORD = re.compile(rf"^{_QWORD}{_ID}\s*[:.)\-–—]?\s*{_WORD}\b{_SEP}(?P<rest>.*)$", re.I)
_BARE_ID = re.compile(rf"^{_QWORD}{_ID}{_SEP}$", re.I)
_ID_COLON = re.compile(rf"^{_ID}\s*[:)]{_SEP}(?P<rest>.+)$", re.I)
_WORD_ONLY = re.compile(rf"^{_WORD}\s*[:.]{_SEP}(?P<rest>.*)$", re.I)
_PROMPT = re.compile(rf"^{_QWORD}{_ID}\b(?P<rest>.*)$", re.I)
_DECORATION = re.compile(r"^\s*(?:>\s*)*(?P<hashes>#{1,6})?\s*(?P<emph>[*_]{1,3})?\s*")
_ANSWER_TAG = re.compile(r"^answer-(.+)$", re.I)
_MAYBE_MARKER = re.compile(r"\s*(?:>\s*)*(?:[#*_\d]|answer|antwort|l(?:ö|oe)sung|solution|question|task|exercise|"
                           r"aufgabe|teilaufgabe|frage|q\s*\d)", re.I)
_MARKER_STEMS = ("answer", "antwort", "lösung", "loesung", "solution")


def has_marker_word(text: str) -> bool:
    """Does ``text`` hold the word answer/antwort/lösung/solution (not ``ANSWER_2_1``)? Faster than a regex."""
    lowered = text.lower()
    for stem in _MARKER_STEMS:
        at = lowered.find(stem)
        while at >= 0:
            end = at + len(stem)
            while end < len(lowered) and lowered[end] in "sen":  # answers, antworten, lösungen
                end += 1
            before = lowered[at - 1] if at else " "
            after = lowered[end] if end < len(lowered) else " "
            if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
                return True
            at = lowered.find(stem, at + 1)
    return False


@dataclass(frozen=True)
class FoundAnswer:
    """One question's answer text; ``note`` says why it was not placed with confidence (else empty)."""

    text: str
    note: str = ""


def clean_answer(text: str) -> str:
    """The answer without the template's placeholder and surrounding blank space."""
    return _PLACEHOLDER.sub("", text).strip() if "answer here" in text.lower() else text.strip()


def normalise_id(raw: str) -> str:
    """``4.3 d`` / ``4.3(d)`` / ``4.3D`` → ``4.3d``."""
    return re.sub(r"[\s()]", "", raw).lower()


@functools.lru_cache(maxsize=64)
def _ids(question_ids: tuple[str, ...]) -> _Ids:
    return _Ids(question_ids)


class _Ids:
    """The assignment's question ids, matched in any spelling; any id when none are known."""

    def __init__(self, question_ids: tuple[str, ...]):
        self.known = {normalise_id(q): q for q in question_ids}

    def resolve(self, raw: str) -> tuple[str | None, str]:
        """(question id, text that was not part of it) for a raw id like ``2.1 a``."""
        norm = normalise_id(raw)
        if not self.known:
            return norm, ""
        if norm in self.known:
            return self.known[norm], ""
        letter = re.match(r"^(.*\d)\s?\(?([a-z])\)?$", raw.strip(), re.I)
        if letter and normalise_id(letter.group(1)) in self.known:  # "Answer 2.1 a lot of…"
            return self.known[normalise_id(letter.group(1))], letter.group(2)
        return None, ""


@dataclass(frozen=True)
class _Marker:
    kind: str  # "answer" (the text below answers the question), "prompt" (the question's own heading), "section"
    question: str | None
    rest: str = ""  # text on the marker line after the marker


def parse_marker(line: str, ids: _Ids, explicit_only: bool = False) -> _Marker | None:
    """What an answer or question marker line says, or None for an ordinary line."""
    if not _MAYBE_MARKER.match(line):  # most lines of prose: settled by one cheap test
        return None
    decoration = _DECORATION.match(line)
    assert decoration is not None  # every part of the pattern is optional
    heading = bool(decoration.group("hashes"))
    emphasis = bool(decoration.group("emph"))
    body = line[decoration.end():].rstrip()
    if not body:
        return None
    for pattern in (_EXPLICIT, _ID_THEN_WORD):
        found = pattern.match(body)
        if found:
            question, extra = ids.resolve(found.group("id"))
            if question is not None:
                rest = f"{extra} {found.group('rest')}" if extra else found.group("rest")
                return _Marker("answer", question, _strip_emphasis(rest))
    if explicit_only:
        return None
    if heading or emphasis:
        found = _BARE_ID.match(body)
        if found:
            question, extra = ids.resolve(found.group("id"))
            if question is not None and not extra:
                return _Marker("answer", question)
    found = _ID_COLON.match(body)
    if found and "." in found.group("id"):
        question, extra = ids.resolve(found.group("id"))
        if question is not None and not extra:
            return _Marker("answer", question, _strip_emphasis(found.group("rest")))
    word_only = _WORD_ONLY.match(body)
    if word_only and (heading or emphasis):
        return _Marker("answer", None, _strip_emphasis(word_only.group("rest")))
    if heading:
        found = _PROMPT.match(body)
        if found:
            question, _ = ids.resolve(found.group("id"))
            if question is not None:
                return _Marker("prompt", question)
        return _Marker("section", None) if len(decoration.group("hashes") or "") <= 2 else None
    return None


def _strip_emphasis(text: str) -> str:
    return text.strip().strip("*_").strip()


# --------------------------------------------------------------------------- notebooks


class _Collector:
    """Answer parts per question, confident ones and candidates kept apart."""

    def __init__(self) -> None:
        self.placed: dict[str, list[str]] = {}
        self.notes: dict[str, list[str]] = {}
        self.candidates: dict[str, list[tuple[str, str]]] = {}

    def place(self, question: str, text: str, note: str = "") -> None:
        self.placed.setdefault(question, []).append(text)
        if note:
            self.notes.setdefault(question, []).append(note)

    def candidate(self, question: str, text: str, note: str) -> None:
        if clean_answer(text):
            self.candidates.setdefault(question, []).append((text, note))

    def result(self) -> dict[str, FoundAnswer]:
        found: dict[str, FoundAnswer] = {}
        for question, placed in self.placed.items():
            text = clean_answer("\n\n".join(p for p in (clean_answer(p) for p in placed) if p))
            if text:
                found[question] = FoundAnswer(text, " ".join(dict.fromkeys(self.notes.get(question, []))))
        for question, candidates in self.candidates.items():
            if question not in found:
                text = "\n\n".join(clean_answer(t) for t, _ in candidates)
                found[question] = FoundAnswer(text, " ".join(dict.fromkeys(n for _, n in candidates)))
        return found


def notebook_answers(cells: list[dict], question_ids: tuple[str, ...] = (),
                     prompts: dict[str, str] | None = None) -> dict[str, FoundAnswer]:
    """Answers from a notebook's markdown and raw cells (see the module's docstring for the rules).

    ``prompts`` (question id → the question's text, as the template shows it under ``### <id> <title>``)
    lets text a student typed into a question's own cell be told from the question: it becomes a
    candidate for the reviewer. Without them, a question's cell is all question.
    """
    ids = _ids(tuple(question_ids))
    found = _Collector()
    follow: str | None = None  # the answer that plain cells below continue
    region: str | None = None  # the question whose prompt or answer came last
    for position, cell in enumerate(cells):
        kind = cell.get("cell_type")
        if kind not in ("markdown", "raw"):
            follow = None
            continue
        source = cell_source(cell)
        if not source.strip():
            continue
        tag = _tag_question(cell, ids)
        where = f"cell {position + 1}" + (" (a raw cell)" if kind == "raw" else "")
        segments = _segments(source, ids)
        if not segments:  # a cell without any marker line
            starts_with_heading = source.lstrip().startswith("#")
            if tag is not None:
                found.place(tag, source)
                follow = region = tag
            elif follow is not None and not starts_with_heading:
                found.place(follow, source)
            else:
                follow = None
                if region is not None:
                    found.candidate(region, source, f"Found in {where}, below question {region} but outside "
                                                    f"its answer cell; check that it answers {region}.")
            continue
        preamble, marked = segments
        if preamble.strip():
            owner = tag if tag is not None else follow
            if owner is not None:
                found.place(owner, preamble)
            elif region is not None:
                found.candidate(region, preamble, f"Found in {where}, above a heading and outside the answer "
                                                  f"cell of {region}; check that it answers {region}.")
        answered = [m for m, _ in marked if m.kind == "answer"]
        follow = None
        for marker, text in marked:
            if marker.kind == "section":
                region = follow = None
                if text.strip() and tag is not None:
                    found.place(tag, text)
                continue
            if marker.kind == "prompt" and tag is None:  # the question's own heading; in a tagged cell, its answer's
                region, follow = marker.question, None
                extra = _beyond_prompt(text, (prompts or {}).get(marker.question or "")) if prompts else ""
                if extra and marker.question:
                    found.candidate(marker.question, extra, (
                        f"Found in {where}, the cell of question {marker.question} itself, below the question's "
                        f"text; check that it answers {marker.question}."))
                continue
            question = marker.question or region or tag
            if question is None:
                continue
            note = ""
            if tag is not None and tag != question and marker is answered[0] and not preamble.strip():
                note = (f"The cell holding this answer is tagged answer-{tag} but its heading says {question}; "
                        f"it was taken as the answer to {question} (check that this is right).")
            found.place(question, text, note)
            follow = region = question
    return found.result()


def _beyond_prompt(text: str, prompt: str | None) -> str:
    """The paragraphs of a question's cell that are not the question: neither its text nor the
    template's italic line of facts (points, bonus, where to answer)."""
    if prompt is None:
        return ""
    known = " ".join(prompt.lower().split())
    kept = []
    for paragraph in re.split(r"\n\s*\n", text):
        plain = " ".join(paragraph.lower().split())
        if not plain or plain in known or (plain.startswith("*") and plain.endswith("*") and "point" in plain):
            continue
        kept.append(paragraph.strip())
    return "\n\n".join(kept)


def _segments(source: str, ids: _Ids) -> tuple[str, list[tuple[_Marker, str]]] | None:
    """(text before the first marker, [(marker, text under it)]) or None when there is no marker."""
    lines = source.splitlines()
    preamble: list[str] = []
    marked: list[tuple[_Marker, list[str]]] = []
    for line in lines:
        marker = parse_marker(line, ids) if line.strip() else None
        if marker is not None and marker.kind == "section" and marked and marked[-1][0].kind == "answer":
            marker = None  # a heading inside an answer is part of it
        if marker is None:
            (marked[-1][1] if marked else preamble).append(line)
        else:
            marked.append((marker, [marker.rest] if marker.rest else []))
    if not marked:
        return None
    return "\n".join(preamble), [(m, "\n".join(body)) for m, body in marked]


def looks_like_answer(cell: dict, question_ids: tuple[str, ...] = ()) -> bool:
    """Does this cell (of any type) carry an answer tag or start with an answer marker?"""
    ids = _ids(tuple(question_ids))
    if _tag_question(cell, ids) is not None:
        return True
    first = next((line for line in cell_source(cell).splitlines() if line.strip()), "")
    marker = parse_marker(first, ids) if first else None
    return marker is not None and marker.kind == "answer" and marker.question is not None


def _tag_question(cell: dict, ids: _Ids) -> str | None:
    metadata = cell.get("metadata")
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    for tag in tags if isinstance(tags, list) else []:
        match = _ANSWER_TAG.match(tag) if isinstance(tag, str) else None
        if match:
            question, _ = ids.resolve(match.group(1))
            if question is not None:
                return question
    return None


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


# --------------------------------------------------------------------------- modules


def answer_variable(question_id: str) -> str:
    """``2.1`` → ``ANSWER_2_1``; ``4.3d`` → ``ANSWER_4_3D``."""
    return "ANSWER_" + re.sub(r"[^0-9A-Za-z]", "_", question_id).upper()


def module_answers(source: str, question_ids: tuple[str, ...] = (), tree: ast.Module | None = None
                   ) -> dict[str, FoundAnswer]:
    """``ANSWER_<id>`` strings (last assignment wins), then ``# Answer <id>:`` comments and marked strings."""
    ids = _ids(tuple(question_ids))
    if tree is None:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
    if tree is None:
        variables = _variables_by_pattern(source, ids)
        strings: list[str] = []
    else:
        variables, strings = _variables_from_tree(tree, source, ids)
    found = {q: a for q, a in variables.items() if a.text}
    if has_marker_word(source):
        blocks = strings + _comment_blocks(source)
        marked = notebook_answers([{"cell_type": "markdown", "source": b} for b in blocks
                                   if has_marker_word(b)], question_ids)
        for question, answer in marked.items():
            if question not in found and not answer.note:
                found[question] = answer
    return found


def _variable_question(name: str, ids: _Ids) -> str | None:
    if not name.upper().startswith("ANSWER_"):
        return None
    raw = name[len("ANSWER_"):]
    key = re.sub(r"[^0-9a-z]", "", raw.lower())
    if not ids.known:
        return raw.replace("_", ".").lower()
    for norm, question in ids.known.items():
        if re.sub(r"[^0-9a-z]", "", norm) == key:
            return question
    return None


def _loose_variable_question(name: str, ids: _Ids) -> str | None:
    """A question id in a variable named like an answer but not as the contract says."""
    lowered = name.lower()
    if not any(stem in lowered for stem in ("answer", "antwort", "loesung")) or not ids.known:
        return None
    found = re.search(r"(\d+)_?(\d+)_?([a-z])?(?![a-z0-9])", lowered)
    if not found:
        return None
    key = found.group(1) + found.group(2) + (found.group(3) or "")
    for norm, question in ids.known.items():
        if re.sub(r"[^0-9a-z]", "", norm) == key:
            return question
    return None


def _variables_from_tree(tree: ast.Module, source: str, ids: _Ids) -> tuple[dict[str, FoundAnswer], list[str]]:
    found: dict[str, FoundAnswer] = {}
    strings: list[str] = []
    for node in _top_level(tree.body):
        if isinstance(node, ast.Expr):
            text = static_string(node.value)
            if text:
                strings.append(text)
            continue
        if isinstance(node, ast.Assign):
            targets = [t for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            targets = [node.target]
        else:
            continue
        for target in targets:
            question = _variable_question(target.id, ids)
            if question is None and node.value is not None and not isinstance(node, ast.AugAssign):
                loose = _loose_variable_question(target.id, ids)  # answer21, ANSWER_2_1_TEXT, antwort_3_3
                text = static_string(node.value)
                if loose is not None and text and clean_answer(text) and \
                        (loose not in found or found[loose].note):
                    found[loose] = FoundAnswer(clean_answer(text), (
                        f"Found in the variable `{target.id}`, not `{answer_variable(loose)}`; check that it "
                        f"answers {loose}."))
                continue
            if node.value is None or question is None:
                continue
            text = static_string(node.value)
            if isinstance(node, ast.AugAssign):
                if text is not None and isinstance(node.op, ast.Add) and question in found:
                    found[question] = FoundAnswer(clean_answer(found[question].text + text), found[question].note)
                continue
            if text is not None:
                found[question] = FoundAnswer(clean_answer(text))
            else:  # computed: show it as written, for the reviewer to read
                written = ast.get_source_segment(source, node.value) or ""
                found[question] = FoundAnswer(written.strip(), (
                    f"`{target.id}` is computed by code, so its value could not be read without running the "
                    "module; it is shown as written."))
    return found, strings


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, including those in top-level if/try/with blocks."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.With, ast.Try)):
            for part in ("body", "orelse", "finalbody"):
                yield from _top_level(getattr(node, part, []))
            for handler in getattr(node, "handlers", []):
                yield from _top_level(handler.body)


_STR_METHODS = {"strip", "lstrip", "rstrip", "replace", "format", "capitalize"}


def static_string(node: ast.expr | None) -> str | None:
    """The value of a string expression that needs no code to run, else None.

    Plain and implicitly concatenated strings, ``+``, f-strings (a ``{…}`` field is kept as written),
    ``.strip()`` and friends with constant arguments, ``textwrap.dedent``/``inspect.cleandoc``, and
    ``"sep".join([...])`` of such strings.
    """
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(value.value)
            elif isinstance(value, ast.FormattedValue):
                parts.append("{" + ast.unparse(value.value) + "}")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = static_string(node.left), static_string(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.Call) and not node.keywords:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "join" and len(node.args) == 1:
            sep = static_string(func.value)
            items = node.args[0]
            if sep is not None and isinstance(items, (ast.List, ast.Tuple)):
                values = [static_string(e) for e in items.elts]
                return sep.join(v for v in values if v is not None) if None not in values else None
            return None
        args = [static_string(a) for a in node.args]
        if any(a is None for a in args):
            return None
        if isinstance(func, ast.Attribute) and func.attr in _STR_METHODS:
            base = static_string(func.value)
            if base is not None and func.attr != "format":
                try:
                    return getattr(base, func.attr)(*args)
                except (TypeError, ValueError):
                    return None
            return base
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("dedent", "cleandoc", "str") and len(args) == 1:
            import inspect
            import textwrap

            convert: dict[str, Callable[[str], str]] = {"dedent": textwrap.dedent, "cleandoc": inspect.cleandoc,
                                                        "str": str}
            return convert[name](args[0] or "")
    return None


def _comment_blocks(source: str) -> list[str]:
    """Runs of consecutive comment lines, without their ``#``: ``# Answer 2.1: …`` blocks."""
    blocks: list[list[str]] = []
    last_row = -2
    try:
        tokens = [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline)
                  if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = [(n, line.strip()) for n, line in enumerate(source.splitlines(), 1) if line.lstrip().startswith("#")]
    for row, text in tokens:
        line = re.sub(r"^#+ ?", "", text).rstrip()
        if text.startswith(("# %%", "# In[")):
            last_row = -2
            continue
        if row == last_row + 1 and blocks:
            blocks[-1].append(line)
        else:
            blocks.append([line])
        last_row = row
    return ["\n".join(b) for b in blocks]


_VARIABLE_START = re.compile(r'^(ANSWER_\w+)[ \t]*=[ \t]*[fFrR]?("""|\'\'\'|"|\')', re.M | re.I)


def _variables_by_pattern(source: str, ids: _Ids) -> dict[str, FoundAnswer]:
    """Best effort for a module with a syntax error: ANSWER_ string literals, the last one winning.

    Plain searches for each closing quote, never a lazy ``.*?`` over the rest of the file: a quote
    left open after one start is not closed after a later one either, so hostile text stays linear.
    """
    found = {}
    unclosed: set[str] = set()
    end = 0
    for match in _VARIABLE_START.finditer(source):
        quote = match.group(2)
        if match.start() < end or quote in unclosed:
            continue
        if len(quote) == 3:
            close = source.find(quote, match.end())
        else:  # a one-line string: it closes on its own line or not at all
            line_end = source.find("\n", match.end())
            close = source.find(quote, match.end(), len(source) if line_end < 0 else line_end)
        if close < 0:
            if len(quote) == 3:
                unclosed.add(quote)
            continue
        end = close + len(quote)
        question = _variable_question(match.group(1), ids)
        if question:
            found[question] = FoundAnswer(clean_answer(source[match.end():close]))
    return found

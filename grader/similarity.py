"""Copied work: pairs of submissions whose code or written answers are suspiciously alike.

A flag for the instructor to look at, never a verdict. Code is reduced to its token structure (Python
``tokenize``: identifiers become ``ID``, literals ``LIT``, comments and layout dropped), so renaming
variables or reformatting does not hide a copy. The token stream is cut into k-grams, hashed, and
*winnowed* (Schleimer, Wilkerson, Aiken 2003: in every window of w hashes keep the smallest), which keeps
a small set of fingerprints that still catches every shared stretch of at least w + k - 1 tokens.
Answers are compared as shingles of normalised words. Fingerprints the template provides (the
signatures, docstrings and prompts every student starts from) are removed before comparing, and so are
those more than half of a large class shares (what everyone writes is no evidence of copying).

Similarity is the Jaccard index of two fingerprint sets. Intersections for all pairs come from one sparse
incidence product computed column block by column block, so 200 students take well under a second and
memory stays bounded for larger classes. For each flagged pair the longest shared stretches are shown
side by side, in the students' own text.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np

from .results import SimilarPair

CODE_K = 8  # tokens per k-gram
CODE_W = 4  # winnowing window
WORD_K = 3  # words per answer shingle
MIN_FINGERPRINTS = 5  # fewer than this (after removing the template) is too little to compare
COMMON_FRACTION = 0.5  # fingerprints in more than this share of a class of COMMON_MIN_CLASS+ are ignored
COMMON_MIN_CLASS = 10
MAX_PASSAGES = 3
MAX_PASSAGE_LINES = 25
_BLOCK = 4096


@dataclass(frozen=True)
class _Doc:
    """One document reduced for comparison: normalised units and where each came from in the text."""

    text: str
    units: tuple[str, ...]  # normalised tokens or words
    spans: tuple[tuple[int, int], ...]  # (start, end) character offsets of each unit in text
    grams: tuple[int, ...]  # hash of the k-gram starting at each unit
    fingerprints: frozenset[int]


# --------------------------------------------------------------------------- normalising


def code_units(source: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Normalised tokens of Python source and their character spans (tolerates broken code)."""
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    units, spans = [], []
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in skip or token.type == tokenize.ERRORTOKEN and not token.string.strip():
                continue
            if token.type == tokenize.NAME:
                unit = token.string if keyword.iskeyword(token.string) else "ID"
            elif tokenize.tok_name[token.type] in _LITERALS:
                unit = "LIT"
            else:
                unit = token.string
            (row, col), (end_row, end_col) = token.start, token.end
            units.append(unit)
            spans.append((line_starts[row - 1] + col, line_starts[end_row - 1] + end_col))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # keep what was read before the break: a half-finished notebook is still comparable
    return units, spans


_LITERALS = {"NUMBER", "STRING", "FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END"}
_WORD = re.compile(r"\w+", re.UNICODE)


def answer_units(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Lower-cased, accent-folded words and their spans (markdown punctuation falls away)."""
    units, spans = [], []
    for match in _WORD.finditer(text):
        word = unicodedata.normalize("NFKD", match.group().casefold())
        units.append("".join(ch for ch in word if not unicodedata.combining(ch)))
        spans.append(match.span())
    return units, spans


def _grams(units: list[str], k: int) -> list[int]:
    if not units:
        return []
    if len(units) < k:
        return [zlib.crc32("\x1f".join(units).encode())]
    return [zlib.crc32("\x1f".join(units[i:i + k]).encode()) for i in range(len(units) - k + 1)]


def _winnow(grams: list[int], w: int) -> set[int]:
    if len(grams) <= w:
        return set(grams)
    chosen = set()
    for i in range(len(grams) - w + 1):
        chosen.add(min(grams[i:i + w]))
    return chosen


def _doc(text: str, kind: str) -> _Doc:
    if kind == "code":
        units, spans = code_units(text)
        grams = _grams(units, CODE_K)
        prints = _winnow(grams, CODE_W)
    else:
        units, spans = answer_units(text)
        grams = _grams(units, WORD_K)
        prints = set(grams)
    return _Doc(text, tuple(units), tuple(spans), tuple(grams), frozenset(prints))


# --------------------------------------------------------------------------- comparing


MAX_PAIRS_WITH_PASSAGES = 40  # per kind (code, each question)


def similar_pairs(code: dict[str, str], answers: dict[str, dict[str, str]], template_code: str = "",
                  template_answers: dict[str, str] | None = None, threshold: float = 0.8) -> list[SimilarPair]:
    """Pairs of students at or above ``threshold`` for code and for each written question, most similar first."""
    template_answers = template_answers or {}
    pairs = _compare({s: c for s, c in code.items() if c and c.strip()}, template_code, "code", "code", threshold)
    questions = sorted({q for by_question in answers.values() for q in by_question})
    for question in questions:
        texts = {s: a[question] for s, a in answers.items() if a.get(question) and a[question].strip()}
        pairs += _compare(texts, template_answers.get(question, ""), "answer", f"answer {question}", threshold)
    return sorted(pairs, key=lambda p: (-p.similarity, p.kind, p.student_a, p.student_b))


def _compare(texts: dict[str, str], template: str, kind: str, label: str, threshold: float) -> list[SimilarPair]:
    docs = {student: _doc(text, kind) for student, text in texts.items()}
    template_doc = _doc(template, kind) if template.strip() else None
    ignored = set(template_doc.grams) if template_doc else set()
    sets = {s: d.fingerprints - ignored for s, d in docs.items()}
    if len(sets) >= COMMON_MIN_CLASS:
        counts: dict[int, int] = {}
        for prints in sets.values():
            for h in prints:
                counts[h] = counts.get(h, 0) + 1
        common = {h for h, n in counts.items() if n > COMMON_FRACTION * len(sets)}
        if common:
            ignored |= common
            sets = {s: p - common for s, p in sets.items()}
    students = sorted(s for s, p in sets.items() if len(p) >= MIN_FINGERPRINTS)
    above = sorted(_jaccard_above(students, sets, threshold), key=lambda t: (-t[2], t[0], t[1]))
    found = []
    for rank, (a, b, similarity) in enumerate(above):
        # shared passages are what a person reads; past the first pairs nobody reads them all, and
        # computing them for every pair of a class that shares one solution would dominate the run
        passages = _passages(docs[a], docs[b], ignored, kind) if rank < MAX_PAIRS_WITH_PASSAGES else ()
        found.append(SimilarPair(a, b, label, round(similarity, 4), passages))
    return found


def _jaccard_above(students: list[str], sets: dict[str, frozenset[int]] | dict[str, set[int]], threshold: float):
    """(a, b, jaccard) for every pair at or above threshold, via blocks of the student x fingerprint matrix."""
    if len(students) < 2:
        return []
    index: dict[int, list[int]] = {}
    for row, student in enumerate(students):
        for h in sets[student]:
            index.setdefault(h, []).append(row)
    shared = [rows for rows in index.values() if len(rows) > 1]  # only these add to intersections
    n = len(students)
    inter = np.zeros((n, n), dtype=np.float64)
    for start in range(0, len(shared), _BLOCK):
        block = shared[start:start + _BLOCK]
        matrix = np.zeros((n, len(block)), dtype=np.float32)
        for column, rows in enumerate(block):
            matrix[rows, column] = 1.0
        inter += matrix @ matrix.T
    sizes = np.array([len(sets[s]) for s in students], dtype=np.float64)
    union = sizes[:, None] + sizes[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, inter / union, 0.0)
    upper, right = np.nonzero(np.triu(jaccard >= threshold - 1e-12, k=1))
    return [(students[i], students[j], float(jaccard[i, j])) for i, j in zip(upper.tolist(), right.tolist())]


# --------------------------------------------------------------------------- passages


def _passages(a: _Doc, b: _Doc, ignored: set[int], kind: str) -> tuple[tuple[str, str], ...]:
    """The longest shared stretches, as (text in a, text in b), template-only stretches left out."""
    k = CODE_K if kind == "code" else WORD_K
    where_b: dict[int, list[int]] = {}
    for j, h in enumerate(b.grams):
        if h not in ignored:
            positions = where_b.setdefault(h, [])
            if len(positions) < 16:
                positions.append(j)
    runs: dict[tuple[int, int], int] = {}  # (i_start, j_start) -> number of matching grams
    ends: dict[tuple[int, int], tuple[int, int]] = {}  # (i, j) of the last gram -> run key
    for i, h in enumerate(a.grams):
        for j in where_b.get(h, ()):
            key = ends.pop((i - 1, j - 1), None) or (i, j)
            runs[key] = runs.get(key, 0) + 1
            ends[(i, j)] = key
    chosen: list[tuple[int, int, int]] = []
    for (i, j), length in sorted(runs.items(), key=lambda item: -item[1]):
        if any(i < ci + cl and ci < i + length for ci, _, cl in chosen):
            continue
        chosen.append((i, j, length))
        if len(chosen) == MAX_PASSAGES:
            break
    chosen.sort()
    units = min(len(a.units), len(b.units))
    whole_lines = kind == "code"
    return tuple((_excerpt(a, i, min(i + length + k - 1, len(a.units)), whole_lines),
                  _excerpt(b, j, min(j + length + k - 1, len(b.units)), whole_lines))
                 for i, j, length in chosen if units)


def _excerpt(doc: _Doc, first: int, end: int, whole_lines: bool) -> str:
    start = doc.spans[first][0]
    stop = doc.spans[end - 1][1]
    if not whole_lines:
        return doc.text[start:stop]
    line_start = doc.text.rfind("\n", 0, start) + 1  # whole lines read better for code
    line_stop = doc.text.find("\n", stop)
    text = doc.text[line_start:len(doc.text) if line_stop < 0 else line_stop]
    lines = text.splitlines()
    if len(lines) > MAX_PASSAGE_LINES:
        text = "\n".join(lines[:MAX_PASSAGE_LINES] + [f"… ({len(lines) - MAX_PASSAGE_LINES} more lines)"])
    return text

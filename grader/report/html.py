"""HTML reports: one self-contained page per submission and the class overview ``index.html``.

The templates live next to this module (``templates/``) and are loaded with ``PackageLoader``. Python
prepares small view models (section totals, chart geometry, flags) so the templates only lay them out.

Safety: autoescape is on everywhere; a student's written answer is rendered by markdown-it-py with raw
HTML disabled and images turned off (no external loads), ``javascript:`` links are dropped by its link
validator, and every page carries a Content-Security-Policy whose ``script-src`` allows only the
overview's own inline script (by hash). Hidden cases never show values: the templates print their
shapes only, even if a caller handed them values.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from ..assignment import Assignment, Question
from ..results import CaseResult, QuestionResult, SimilarPair, Status, SubmissionResult

OUTPUT_CAP = 4000  # characters of captured output shown per case or cell
TRACEBACK_CAP = 8000
MATRIX_CELL_CAP = 400  # larger arrays are described, not drawn

STATUS_LABELS = {
    "passed": ("✓", "Passed"),
    "failed": ("✗", "Wrong"),
    "error": ("!", "Error"),
    "timeout": ("◔", "Timed out"),
    "missing": ("∅", "Missing"),
    "pending": ("…", "Awaiting review"),
    "ungraded": ("–", "Not graded"),
    "skipped": ("»", "Skipped"),  # cells only
    "crashed": ("!", "Crashed"),
}
ISOLATION_LABELS = {
    "namespaces": "full isolation (bubblewrap namespaces)",
    "process": "reduced isolation (plain process, no namespaces)",
}
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


# --------------------------------------------------------------------------- public API


def render_submission(result: SubmissionResult, assignment: Assignment) -> str:
    """One student's report as a self-contained HTML page."""
    return _env().get_template("submission.html.j2").render(
        r=result, a=assignment, view=_submission_view(result, assignment),
        csp=_csp(script=None), isolation_labels=ISOLATION_LABELS, notebook=notebook_link(result),
    )


def notebook_link(result: SubmissionResult) -> str | None:
    """Where the report links to the notebook as handed in: ``notebooks/<file>.html`` next to it, which
    only ``grader review`` serves (rendered on demand, no scripts) under ``/reports/``. The link is
    ``hidden`` in the file, so a student's copy has no dead link; the review app shows it."""
    if result.mode != "grade" or not result.file.lower().endswith(".ipynb"):
        return None
    return f"notebooks/{safe_filename(result.student)}.html"


def render_index(results: list[SubmissionResult], assignment: Assignment,
                 similar: Sequence[SimilarPair] = ()) -> str:
    """The class overview: table, charts, common mistakes, flags and similar pairs."""
    script = _overview_script()
    return _env().get_template("index.html.j2").render(
        a=assignment, view=_index_view(results, assignment, similar), script=Markup(script),
        csp=_csp(script=script),
    )


def write_html_reports(results: list[SubmissionResult], assignment: Assignment, out_dir: Path,
                       similar: Sequence[SimilarPair] = ()) -> list[Path]:
    """Write ``index.html`` and ``<student>.html`` for each result; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text(render_index(results, assignment, similar), encoding="utf-8")
    written = [index]
    for result in results:
        path = out_dir / f"{safe_filename(result.student)}.html"
        path.write_text(render_submission(result, assignment), encoding="utf-8")
        written.append(path)
    return written


def safe_filename(student: str) -> str:
    """A file name stem for a student id: ASCII letters, digits, ``._-``; one-to-one.

    ``"anna.k"`` stays as it is; ``"../x"``, ``"Jürgen Weiß"``, ``"Anna"`` or ``"index"`` get a readable
    slug plus ``-`` and eight hex digits of the id's hash. An id is kept only when it is lower case and
    does not itself end in ``-`` and eight hex digits, so a kept name can never equal a hashed one
    (``"jurgen_wei-1a2b3c4d"`` is hashed too) and no two names differ only in case: two students
    never share a page or a Gradescope file, also on a case-insensitive file system.
    """
    if _KEPT.fullmatch(student) and ".." not in student and not _HASHED.search(student) and student not in _WINDOWS_RESERVED | {"index"}:
        return student
    ascii_ = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_).strip("._-")[:60] or "student"
    digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}-{digest}"


_KEPT = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,78}[a-z0-9_])?")  # lower case, <= 80, no dot or dash at the end
_HASHED = re.compile(r"-[0-9a-f]{8}$")


def bonus_sentence(result: SubmissionResult) -> str:
    """The bonus decision in one sentence, e.g. "Bonus awarded: all six required answers accepted"."""
    reason = (result.bonus.reason or "").strip()
    if reason.lower().startswith(("bonus", "not yet")):
        return reason
    lead = {True: "Bonus awarded", False: "Bonus not awarded", None: "Bonus pending"}[result.bonus.awarded]
    return f"{lead}: {reason}" if reason else f"{lead}."


def bonus_word(result: SubmissionResult) -> str:
    return {True: "yes", False: "no", None: "pending"}[result.bonus.awarded]


def overall_status(result: SubmissionResult) -> str:
    """One word for a submission: error, timeout, failed, missing, pending or passed."""
    if result.error:
        return "error"
    statuses = {q.status for q in result.questions.values()}
    for status in (Status.TIMEOUT, Status.ERROR, Status.FAILED, Status.MISSING):
        if status in statuses:
            return status.value
    if Status.PENDING in statuses:
        return "pending"
    return "passed"


def points(value: float | None) -> str:
    """Points without noise: 3, 0.5, 2.25."""
    if value is None:
        return "–"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# --------------------------------------------------------------------------- environment


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("grader.report", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        points=points, markdown=render_markdown, matrix=matrix_html, shape=format_shape, number=format_number,
        cap=_cap, hidden_message=hidden_message,
    )
    env.globals.update(status_icon=lambda s: STATUS_LABELS.get(str(s), ("?", str(s)))[0],
                       status_label=lambda s: STATUS_LABELS.get(str(s), ("?", str(s)))[1],
                       filename=safe_filename, bonus_sentence=bonus_sentence, bonus_word=bonus_word)
    return env


@lru_cache(maxsize=1)
def _overview_script() -> str:
    return _env().get_template("_overview.js.j2").render().strip()


def _csp(script: str | None) -> str:
    if script is None:
        script_src = "'none'"
    else:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        script_src = f"'sha256-{digest}'"
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src {script_src}; "
            "base-uri 'none'; form-action 'none'")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")  # no external loads from a student's answer

    def link_open(renderer, tokens, idx, options, env):
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


def render_markdown(text: str | None) -> Markup:
    """A student's markdown as HTML that cannot run anything (raw HTML is shown as text)."""
    if not text:
        return Markup("")
    return Markup(_markdown().render(text))


_RAISED = re.compile(r"^(`[^`\n]{1,200}` raised [\w.]{1,200})")


def hidden_message(message: str | None) -> str:
    """A hidden case's message as its student sees it: the text of an exception their code raised is
    left out, since the code could put the hidden inputs into it (the instructor sees it in results.json)."""
    raised = _RAISED.match(message or "")
    if raised is None:
        return message or ""
    return f"{raised.group(1)} (its message is not shown for a hidden case: it could show the hidden inputs)."


def _cap(text: str | None, limit: int = OUTPUT_CAP) -> str:
    if not text:
        return ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters not shown)"


# --------------------------------------------------------------------------- arrays


def format_number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value == 0:
            return "0"
        if 1e-3 <= abs(value) < 1e5:
            return f"{value:.4f}".rstrip("0").rstrip(".").replace("-", "−")
        return f"{value:.3e}".replace("-", "−")
    return str(value)


def format_shape(shape: Any) -> str:
    if shape is None or shape == [] or shape == ():
        return "scalar"
    if isinstance(shape, (list, tuple)):
        return " × ".join(str(n) for n in shape)
    return str(shape)


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, (list, tuple)):
        depth += 1
        if not value:
            break
        value = value[0]
    return depth


def _count(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return sum(_count(v) for v in value)
    return 1


def matrix_html(values: Any, mask: Any = None, caption: str = "") -> Markup:
    """Nested lists as a table (2-D), a row (1-D) or slices (3-D+); masked cells are marked."""
    if values is None:
        return Markup('<p class="muted">not available</p>')
    if _count(values) > MATRIX_CELL_CAP:
        return Markup(f'<p class="muted">array with {_count(values)} entries — too large to show</p>')
    depth = _depth(values)
    if depth > 2:
        parts = []
        for i, part in enumerate(values):
            sub_mask = mask[i] if isinstance(mask, (list, tuple)) and i < len(mask) else None
            parts.append(matrix_html(part, sub_mask, f"{caption}[{i}]"))
        return Markup("").join(parts)
    if depth == 0:
        rows, mask_rows = [[values]], [[mask]] if mask is not None else None
    elif depth == 1:
        rows, mask_rows = [list(values)], [list(mask)] if isinstance(mask, (list, tuple)) else None
    else:
        rows, mask_rows = values, list(mask) if isinstance(mask, (list, tuple)) else None
    out = ['<table class="matrix">']
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<tbody>")
    for r, row in enumerate(rows):
        out.append("<tr>")
        for c, value in enumerate(row):
            bad = False
            if mask_rows is not None:
                try:
                    bad = bool(mask_rows[r][c])
                except (IndexError, TypeError):
                    bad = False
            text = escape(format_number(value))
            if bad:
                out.append(f'<td class="bad" title="differs">{text}<span class="sr-only"> (differs)</span></td>')
            else:
                out.append(f"<td>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return Markup("".join(out))


# --------------------------------------------------------------------------- view models


@dataclass(frozen=True)
class QuestionView:
    question: Question | None
    id: str
    title: str
    result: QuestionResult | None
    status: str
    score: float
    max_score: float
    failing: tuple[CaseResult, ...]
    passing: tuple[CaseResult, ...]


@dataclass(frozen=True)
class SectionView:
    id: str
    title: str
    text: str
    questions: tuple[QuestionView, ...]
    score: float
    max_score: float
    bonus: bool


def _question_views(result: SubmissionResult, assignment: Assignment) -> list[QuestionView]:
    views, seen = [], set()
    for question in assignment.questions:
        seen.add(question.id)
        views.append(_question_view(question, result.questions.get(question.id)))
    for qid, qr in result.questions.items():
        if qid not in seen:
            views.append(_question_view(None, qr, qid))
    return views


def _question_view(question: Question | None, qr: QuestionResult | None, qid: str = "") -> QuestionView:
    qid = question.id if question else qid
    title = question.title if question else (qr.title if qr else qid)
    if qr is None:
        return QuestionView(question, qid, title, None, "ungraded", 0.0, question.points if question else 0.0, (), ())
    failing = tuple(c for c in qr.cases if c.status != Status.PASSED)
    passing = tuple(c for c in qr.cases if c.status == Status.PASSED)
    max_score = qr.max_score or (question.points if question else 0.0)
    return QuestionView(question, qid, title, qr, qr.status.value, qr.score, max_score, failing, passing)


def _sections(result: SubmissionResult, assignment: Assignment) -> list[SectionView]:
    views = _question_views(result, assignment)
    grouped: dict[str, list[QuestionView]] = defaultdict(list)
    for view in views:
        grouped[view.question.section if view.question else ""].append(view)
    order = [(s.id, s.title, s.text) for s in assignment.sections]
    known = {s[0] for s in order}
    order += [(sid, "Other questions" if sid == "" and order else "Questions" if sid == "" else sid, "")
              for sid in grouped if sid not in known]
    sections = []
    for sid, title, text in order:
        qs = grouped.get(sid, [])
        if not qs:
            continue
        sections.append(SectionView(
            sid, title, text, tuple(qs), sum(q.score for q in qs), sum(q.max_score for q in qs),
            any(q.question is not None and q.question.bonus for q in qs),
        ))
    return sections


def _submission_view(result: SubmissionResult, assignment: Assignment) -> dict:
    sections = _sections(result, assignment)
    max_score = result.max_score or sum(s.max_score for s in sections)
    return {
        "sections": sections,
        "max_score": max_score,
        "percent": 0 if not max_score else max(0.0, min(100.0, 100.0 * result.score / max_score)),
        "bonus": bonus_sentence(result),
        "bonus_word": bonus_word(result),
        "status": overall_status(result),
        "cell_problems": [c for c in result.cells if c.status != "ok" or c.notes],  # notes: skipped imports, shell lines
        "isolation_ok": result.isolation == "namespaces",
        "counts": Counter(q.status for s in sections for q in s.questions),
    }


def _flags(result: SubmissionResult) -> list[tuple[str, str]]:
    """(kind, text) reasons to look at a submission before anything else."""
    flags = []
    if result.error:
        flags.append(("error", f"could not be graded: {result.error.splitlines()[0] if result.error else ''}"))
    timed_out = [q for q, r in result.questions.items() if r.status == Status.TIMEOUT]
    timed_out += [f"cell {c.index + 1}" for c in result.cells if c.status == "timeout"]
    if timed_out:
        flags.append(("timeout", "timed out in " + ", ".join(timed_out)))
    errored = [q for q, r in result.questions.items() if r.status == Status.ERROR]
    crashed = [f"cell {c.index + 1}" for c in result.cells if c.status == "crashed"]
    if errored or crashed:
        flags.append(("error", "errors in " + ", ".join(errored + crashed)))
    if result.isolation != "namespaces":
        flags.append(("isolation", f"ran with reduced isolation ({result.isolation or 'unknown'})"))
    public_only = [q for q, r in result.questions.items() if r.flag]
    if public_only:
        flags.append(("public-only", "passes only the published cases (a lookup table?) in " + ", ".join(public_only)))
    return flags


def _index_view(results: list[SubmissionResult], assignment: Assignment, similar: Sequence[SimilarPair]) -> dict:
    questions = list(assignment.questions)
    max_score = max([r.max_score for r in results if r.max_score] or [sum(q.points for q in questions)])
    rows, flagged = [], []
    mistakes: dict[str, Counter] = defaultdict(Counter)
    hints: dict[tuple[str, str], str] = {}
    tallies: dict[str, Counter] = {q.id: Counter() for q in questions}
    for result in results:
        status = overall_status(result)
        cells = []
        for question in questions:
            qr = result.questions.get(question.id)
            qstatus = qr.status.value if qr else "ungraded"
            tallies[question.id][qstatus] += 1
            cells.append((question.id, qstatus, qr.score if qr else None, qr.max_score if qr else question.points))
            if qr is None:
                continue
            seen = set()
            for case in qr.cases:
                if case.hint and case.matched and case.matched not in seen:
                    seen.add(case.matched)
                    mistakes[question.id][case.matched] += 1
                    hints.setdefault((question.id, case.matched), case.hint)
        flags = _flags(result)
        rows.append({"result": result, "file": safe_filename(result.student) + ".html", "status": status,
                     "cells": cells, "bonus": bonus_word(result), "flagged": bool(flags)})
        if flags:
            flagged.append({"result": result, "file": safe_filename(result.student) + ".html", "flags": flags})
    scores = [r.score for r in results]
    return {
        "rows": rows,
        "questions": questions,
        "flagged": flagged,
        "max_score": max_score,
        "n": len(results),
        "mean": sum(scores) / len(scores) if scores else 0.0,
        "median": _median(scores),
        "bonus_counts": Counter(bonus_word(r) for r in results),
        "status_counts": Counter(row["status"] for row in rows),
        "pass_chart": _pass_chart(questions, tallies, len(results)),
        "histogram": _histogram(scores, max_score),
        "mistakes": [(q, [(name, count, hints[(q.id, name)]) for name, count in mistakes[q.id].most_common(5)])
                     for q in questions if mistakes.get(q.id)],
        "similar": sorted(similar, key=lambda p: -p.similarity),
        "files": {r.student: safe_filename(r.student) + ".html" for r in results},
    }


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


CHART_SEGMENTS = (("passed", "Passed"), ("pending", "Awaiting review"), ("failed", "Wrong"),
                  ("error", "Error"), ("timeout", "Timed out"), ("missing", "Missing"), ("ungraded", "Not graded"))


def _pass_chart(questions: Iterable[Question], tallies: dict[str, Counter], n: int) -> dict:
    """Geometry of a horizontal stacked bar per question (viewBox units)."""
    label_w, bar_w, row_h, pct_w = 64, 440, 26, 56
    bars = []
    for i, question in enumerate(questions):
        tally = tallies[question.id]
        x: float = label_w
        segments: list[dict] = []
        for key, label in CHART_SEGMENTS:
            count = tally.get(key, 0)
            if not count or not n:
                continue
            width = bar_w * count / n
            segments.append({"key": key, "label": label, "x": round(x, 2), "w": round(width, 2), "count": count})
            x += width
        rate = tally.get("passed", 0) / n if n else 0.0
        bars.append({"id": question.id, "title": question.title, "y": i * row_h, "segments": segments,
                     "rate": rate, "passed": tally.get("passed", 0)})
    return {"bars": bars, "width": label_w + bar_w + pct_w, "height": max(1, len(bars)) * row_h,
            "label_w": label_w, "bar_w": bar_w, "row_h": row_h, "legend": CHART_SEGMENTS[:6]}


def _histogram(scores: list[float], max_score: float) -> dict:
    bins = 10 if max_score > 0 else 1
    width = (max_score / bins) if max_score > 0 else 1.0
    counts = [0] * bins
    for score in scores:
        index = min(bins - 1, max(0, int(score / width))) if width else 0
        counts[index] += 1
    peak = max(counts) if counts else 0
    chart_w, chart_h, pad_b, pad_t = 560, 180, 34, 18
    bar_w = chart_w / bins
    bars = []
    for i, count in enumerate(counts):
        h = 0 if not peak else (chart_h - pad_b - pad_t) * count / peak
        low, high = i * width, (i + 1) * width
        bars.append({"x": round(i * bar_w + 3, 2), "w": round(bar_w - 6, 2), "y": round(chart_h - pad_b - h, 2),
                     "h": round(h, 2), "count": count, "low": low, "high": high,
                     "label": f"{points(low)}–{points(high)}"})
    return {"bars": bars, "width": chart_w, "height": chart_h, "base": chart_h - pad_b}

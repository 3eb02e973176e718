"""Exports for other platforms: gradebook CSV, Moodle's offline grading worksheet, Gradescope
``results.json``, JUnit XML for CI test reporters, and the GitHub Actions step summary.

All functions are pure (results in, text or data out) except :func:`write_exports`, which writes them.
Text a student controls (error messages, file names) is neutralised where a consumer could misread it:
spreadsheet formulas in CSV cells, control characters in XML, table syntax in Markdown.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from ..assignment import Assignment
from ..results import QuestionResult, Status, SubmissionResult
from .html import bonus_sentence, bonus_word, overall_status, points, safe_filename

MOODLE_HEADER = (
    "Identifier", "Full name", "Email address", "Status", "Grade", "Maximum grade", "Grade can be changed",
    "Last modified (submission)", "Last modified (grade)", "Feedback comments",
)
STEP_SUMMARY_LIMIT = 1_000_000  # GitHub allows 1 MiB per step; stay below it
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ICONS = {"passed": "✅", "failed": "❌", "error": "⚠️", "timeout": "⏱️", "missing": "➖", "pending": "⏳",
          "ungraded": "➖"}


# --------------------------------------------------------------------------- CSV


def grades_csv(results: Iterable[SubmissionResult], assignment: Assignment) -> str:
    """The gradebook: student, file, points per question (column = question id), total, max, bonus, error."""
    qids = [q.id for q in assignment.questions]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student", "file", *qids, "total", "max", "bonus", "error"])
    for result in results:
        row = [_cell(result.student), _cell(result.file)]
        for qid in qids:
            qr = result.questions.get(qid)
            row.append(points(qr.score) if qr else "")
        row += [points(result.score), points(_max_score(result, assignment)), bonus_word(result),
                _cell((result.error or "").splitlines()[0] if result.error else "")]
        writer.writerow(row)
    return out.getvalue()


def moodle_worksheet_csv(results: Iterable[SubmissionResult], assignment: Assignment,
                         identities: dict[str, tuple[str, str]]) -> str:
    """Moodle's offline grading worksheet (Assignment → "Upload grading worksheet").

    ``identities`` maps a student id to (identifier, full name), e.g. ("Participant 1234", "Anna K").
    Students without an identity are left out: Moodle could not match them. Moodle reads Identifier,
    Grade and Feedback comments (stored as HTML, so the text is escaped); "Last modified (grade)" is
    the grading time, so a newer grade entered in Moodle is not overwritten unless the teacher allows
    it on import. The headers are an English Moodle 4.x's: a worksheet downloaded from Moodle and
    filled by :mod:`grader.course.worksheet` is the one that works in every language.
    """
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(MOODLE_HEADER)
    for result in results:
        identity = identities.get(result.student)
        if identity is None:
            continue
        identifier, full_name = identity
        writer.writerow([
            identifier, _cell(full_name), "", "Submitted for grading",
            f"{result.score:.2f}", f"{_max_score(result, assignment):.2f}", "Yes", "-",
            _moodle_time(result.graded_at), _cell(html.escape(_moodle_feedback(result, assignment), quote=False)),
        ])
    return out.getvalue()


def _moodle_feedback(result: SubmissionResult, assignment: Assignment) -> str:
    if result.error:
        return f"Could not be graded: {result.error.splitlines()[0]}"
    parts = [bonus_sentence(result)]
    for question in assignment.questions:
        qr = result.questions.get(question.id)
        if qr is not None and qr.status != Status.PASSED:
            parts.append(f"{question.id}: {_first_line(qr.feedback) or qr.status.value}")
    return " | ".join(parts)


def _moodle_time(iso: str) -> str:
    """Moodle's worksheet date format ("Friday, 14 June 2024, 10:05 AM"), or "-" when unknown."""
    if not iso:
        return "-"
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    return moment.strftime("%A, %d %B %Y, %I:%M %p").replace(" 0", " ")


def _cell(text: str) -> str:
    """Keep spreadsheets from running a cell as a formula (CSV injection)."""
    text = text.replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


# --------------------------------------------------------------------------- Gradescope


def gradescope_results(result: SubmissionResult, assignment: Assignment) -> dict:
    """Gradescope's autograder ``results.json`` for one submission, keys exactly as its specification has them.

    Each question is a test named ``<id> <title>`` (stable across runs: no score in the name). A code
    question with hidden cases is two tests: its public cases (visible, with their feedback) and its
    hidden cases (``after_published``, with a count only: neither their inputs nor what the student's
    code printed for them). A question's points are split between the two by its cases, as grader
    scores them: the maximum by the number of cases, the points earned by the cases passed. The top-level
    ``score`` is the authoritative total.
    """
    tests = []
    for question in assignment.questions:
        qr = result.questions.get(question.id)
        name = f"{question.id} {question.title}"
        max_score = qr.max_score if qr and qr.max_score else question.points
        hidden = [c for c in qr.cases if not c.public] if qr else []
        public = [c for c in qr.cases if c.public] if qr else []
        if qr is None or not hidden or qr.manual:
            test = {"name": name, "number": question.id, "score": qr.score if qr else 0.0, "max_score": max_score,
                    "output": _question_output(qr, public_only=True) if qr else
                    "Not graded: the submission could not be read.", "visibility": "visible"}
            if qr is None or qr.status != Status.PENDING:
                test["status"] = "passed" if qr is not None and qr.status == Status.PASSED else "failed"
            tests.append(test)
            continue
        total = len(qr.cases)
        passed_all = sum(c.status == Status.PASSED for c in qr.cases)
        for part, cases, visibility in (("", public, "visible"), (" (hidden cases)", hidden, "after_published")):
            if not cases:
                continue
            passed = sum(c.status == Status.PASSED for c in cases)
            share = passed / passed_all if passed_all else (0.0 if part else 1.0)
            summary = f"{passed} of {len(cases)} {'hidden' if part else 'public'} test cases passed."
            output = summary if part else "\n".join(  # the question's feedback may quote a hidden case: not here
                [summary, *_question_output(replace(qr, feedback="", cases=tuple(cases))).splitlines()])
            tests.append({"name": name + part, "number": question.id + ("h" if part else ""),
                          "score": round(qr.score * share, 4),
                          "max_score": round(max_score * len(cases) / total, 4),
                          "status": "passed" if passed == len(cases) else "failed",
                          "output": output, "visibility": visibility})
    output = bonus_sentence(result)
    if result.error:
        output = f"This submission could not be graded: {result.error}\n\n{output}"
    if result.isolation != "namespaces":
        output += f"\n(Ran with reduced isolation: {result.isolation}.)"
    return {
        "score": result.score,
        "execution_time": round(result.duration, 3),
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"student": result.student, "bonus": bonus_word(result), "mode": result.mode,
                       "isolation": result.isolation, "max_score": _max_score(result, assignment)},
    }


def _question_output(qr: QuestionResult, public_only: bool = False) -> str:
    lines = [qr.feedback.strip()] if qr.feedback.strip() else []
    for case in qr.cases:
        if case.status == Status.PASSED or (public_only and not case.public):
            continue
        lines.append(f"- {case.case_id} ({case.status.value}): {case.message}")
        if case.hint:
            lines.append(f"  Likely mistake: {case.hint}")
    if qr.comment:
        lines.append(f"Reviewer: {qr.comment}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- JUnit XML


def junit_xml(results: Iterable[SubmissionResult], assignment: Assignment) -> str:
    """JUnit XML valid against the Jenkins xUnit schema (junit-10.xsd): one <testsuite> per submission, one
    <testcase> per question.

    Test names are stable across runs (``<id> <title>``; a consumer tracks a test by its name), so the
    points go into the suite's properties (``points <id>`` = ``x/y``) and the failure message. A
    missing function or answer is a failure; only a written answer awaiting review is skipped. The
    suite's ``time`` is the submission's real grading time (there is no per-question time to report,
    so test cases carry none rather than an invented one).
    """
    root = ET.Element("testsuites", name=_x(assignment.title))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for result in results:
        suite = ET.SubElement(root, "testsuite", name=_x(result.student))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        classname = _x(f"{assignment.id}.{result.student}")
        properties = ET.SubElement(suite, "properties")
        if result.error:
            case = ET.SubElement(suite, "testcase", name="submission is readable", classname=classname)
            error = ET.SubElement(case, "error", message=_x(_first_line(result.error)), type="submission")
            error.text = _x(result.error)
            counts["tests"] += 1
            counts["errors"] += 1
        question_points = []
        for question in assignment.questions:
            qr = result.questions.get(question.id)
            score = qr.score if qr else 0.0
            max_score = qr.max_score if qr and qr.max_score else question.points
            question_points.append((question.id, f"{points(score)}/{points(max_score)}"))
            case = ET.SubElement(suite, "testcase", classname=classname, name=_x(f"{question.id} {question.title}"))
            counts["tests"] += 1
            status = qr.status if qr else Status.MISSING
            text = _x(_question_output(qr) if qr else "not graded")
            first = _first_line(qr.feedback) if qr else "not graded"
            message = _x(f"{points(score)}/{points(max_score)} points: {first or status.value}")
            if status in (Status.FAILED, Status.MISSING):
                ET.SubElement(case, "failure", message=message, type=status.value).text = text
                counts["failures"] += 1
            elif status in (Status.ERROR, Status.TIMEOUT):
                ET.SubElement(case, "error", message=message, type=status.value).text = text
                counts["errors"] += 1
            elif status == Status.PENDING:
                ET.SubElement(case, "skipped", message=message, type="pending review")
                counts["skipped"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
            if key in totals:
                totals[key] += value
        suite.set("time", f"{max(result.duration, 0.0):.3f}")
        total_time += max(result.duration, 0.0)
        if result.graded_at:
            suite.set("timestamp", _x(result.graded_at.replace("Z", "")[:19]))
        for name, text in (("score", points(result.score)), ("max_score", points(_max_score(result, assignment))),
                           ("bonus", bonus_word(result)), ("isolation", str(result.isolation)),
                           *((f"points {qid}", value) for qid, value in question_points)):
            ET.SubElement(properties, "property", name=name, value=_x(text))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _x(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (a student's output may contain any byte)."""
    return _XML_INVALID.sub("�", text or "")


# --------------------------------------------------------------------------- GitHub step summary


def step_summary(results: Iterable[SubmissionResult], assignment: Assignment,
                 limit_bytes: int = STEP_SUMMARY_LIMIT) -> str:
    """A Markdown summary for ``$GITHUB_STEP_SUMMARY``; always shorter than ``limit_bytes`` (UTF-8)."""
    results = list(results)
    parts = [f"## {_md(assignment.title)}\n"]
    if len(results) == 1:
        parts += _single_summary(results[0], assignment)
    else:
        passed = sum(overall_status(r) == "passed" for r in results)
        bonus = sum(r.bonus.awarded is True for r in results)
        parts.append(f"{len(results)} submissions · {passed} passed everything · {bonus} with bonus\n")
        parts.append("| Student | Points | Bonus | Status |\n|---|---:|---|---|\n")
        parts += [f"| {_md(r.student)} | {points(r.score)} / {points(_max_score(r, assignment))} | "
                  f"{bonus_word(r)} | {_ICONS.get(overall_status(r), '')} {overall_status(r)} |\n" for r in results]
    return _fit(parts, limit_bytes)


def _single_summary(result: SubmissionResult, assignment: Assignment) -> list[str]:
    total = f"{points(result.score)} / {points(_max_score(result, assignment))}"
    parts = [f"**{_md(result.student)}**: {total} points. {_md(bonus_sentence(result))}\n\n"]
    if result.error:
        parts.append(f"> ❌ This submission could not be graded: {_md(_first_line(result.error))}\n\n")
    if result.isolation != "namespaces":
        parts.append(f"> ⚠️ Ran with reduced isolation ({_md(result.isolation)}).\n\n")
    parts.append("| | Question | Points | Feedback |\n|---|---|---:|---|\n")
    for question in assignment.questions:
        qr = result.questions.get(question.id)
        status = qr.status.value if qr else "ungraded"
        score = points(qr.score) if qr else "–"
        parts.append(f"| {_ICONS[status]} | {_md(question.id)} {_md(question.title)} | {score} / {points(question.points)} "
                     f"| {_md(_first_line(qr.feedback) if qr else 'not graded')} |\n")
    return parts


def _fit(parts: list[str], limit_bytes: int) -> str:
    """Join parts, dropping the tail (with a note saying so) when the whole would reach the limit."""
    note = "\n_… {n} more rows not shown: the summary is kept under {kb} kB. The HTML report has everything._\n"
    budget = limit_bytes - len(note.format(n=10**9, kb=limit_bytes // 1000).encode()) - 1
    out, used = [], 0
    for i, part in enumerate(parts):
        size = len(part.encode())
        if used + size > budget:
            out.append(note.format(n=len(parts) - i, kb=limit_bytes // 1000))
            break
        out.append(part)
        used += size
    text = "".join(out)
    while len(text.encode()) >= limit_bytes:  # tiny limits: cut hard, on a character boundary
        text = text.encode()[: max(0, limit_bytes - 1)].decode(errors="ignore")
    return text


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes, no raw HTML."""
    text = " ".join((text or "").split())
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return text[:300] + "…" if len(text) > 300 else text


# --------------------------------------------------------------------------- files


def write_exports(results: list[SubmissionResult], assignment: Assignment, out_dir: Path,
                  identities: dict[str, tuple[str, str]] | None = None) -> list[Path]:
    """grades.csv, junit.xml, gradescope/<student>.json and, with identities, the Moodle worksheet."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        written.append(path)

    write(out_dir / "grades.csv", grades_csv(results, assignment))
    write(out_dir / "junit.xml", junit_xml(results, assignment))
    for result in results:
        document = gradescope_results(result, assignment)
        write(out_dir / "gradescope" / f"{safe_filename(result.student)}.json",
              json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if identities is not None:
        write(out_dir / "moodle_grading_worksheet.csv", moodle_worksheet_csv(results, assignment, identities))
    return written


def _max_score(result: SubmissionResult, assignment: Assignment) -> float:
    return result.max_score or sum(q.points for q in assignment.questions)


def _first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""

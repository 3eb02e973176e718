"""Moodle out: filling the grading worksheet the instructor downloaded from Moodle.

Moodle's "Upload grading worksheet" (``mod/assign/feedback/offline``) finds its columns by their
headers *in the teacher's interface language* ("Identifier", "Grade", "Last modified (grade)" in
English; "ID", "Bewertung", "Zuletzt geändert (Bewertung)" in German), reads the participant id from the
end of the identifier ("Participant 1234", "Teilnehmer/in1234"), parses the grade with the site's
decimal separator, skips a grade above the assignment's maximum, and skips a row whose "Last modified
(grade)" is older than the grade in its database (unless "ignore modified" is ticked). A worksheet
made up from scratch cannot get all of that right; the one Moodle itself wrote can. So grader copies
the downloaded file byte for byte -- header, column order, identifiers, timestamps, byte-order mark,
delimiter, line endings, quoting -- and rewrites only two cells of the rows it has a result for: the
grade (scaled to the row's own "Maximum grade", with the file's decimal separator) and the feedback
comments (plain text, escaped for the HTML Moodle stores).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GraderError
from ..results import Status, SubmissionResult
from .outputs import RESULTS_FILE, read_moodle

# Column headers as mod_assign writes them, per language (get_string of the strings named).
_IDENTIFIER = {"identifier", "id"}  # recordid
_GRADE = {"grade", "bewertung"}  # core 'grade'
_MAXIMUM = {"maximum grade", "bestwertung", "bestmögliche bewertung"}  # maxgrade
_SCALE = {"scale", "skala"}
_MODIFIED = {"last modified (grade)", "zuletzt geändert (bewertung)"}  # lastmodifiedgrade
_FEEDBACK = {"feedback comments", "feedback als kommentar"}  # assignfeedback_comments pluginname
_GROUP = {"group", "gruppe"}  # submissionteam
_CHANGEABLE = {"grade can be changed", "bewertung kann geändert werden"}  # gradecanbechanged
_FULL_NAME = {"full name", "vollständiger name"}
_NO = {"no", "nein"}
_GERMAN_MARKERS = {"bewertung", "zuletzt geändert (bewertung)"}


@dataclass
class FilledWorksheet:
    """What :func:`fill_worksheet` did, for the instructor to read."""

    path: Path
    filled: int = 0
    left_empty: int = 0  # rows of students without a graded submission
    unmatched: list[str] = field(default_factory=list)  # "who: why" for results that found no row
    warnings: list[str] = field(default_factory=list)
    german: bool = False
    rows_with_grades: int = 0  # rows that already carried a grade in Moodle


class WorksheetError(GraderError):
    """The file is not a grading worksheet grader can fill."""


# --------------------------------------------------------------------------- reading the file as written


@dataclass
class _Layout:
    bom: bytes
    encoding: str
    delimiter: str
    quote_all: bool
    records: list[tuple[list[str], str]]  # raw fields (as written, quotes included) and the line ending


def _decode(data: bytes, path: Path) -> tuple[bytes, str, str]:
    bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
    body = data[len(bom):]
    try:
        return bom, "utf-8", body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:  # re-saved by a spreadsheet program in Windows' encoding: written back the same way
        return bom, "cp1252", body.decode("cp1252")
    except UnicodeDecodeError:
        raise WorksheetError(f"{path}: neither UTF-8 nor Windows-1252 text; download the worksheet from Moodle "
                             "again") from None


def _delimiter(first_line: str) -> str:
    counts = {d: 0 for d in (",", ";", "\t")}
    quoted = False
    for ch in first_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _records(text: str, delimiter: str, path: Path) -> list[tuple[list[str], str]]:
    """Split into records of raw fields, keeping each field exactly as written."""
    records: list[tuple[list[str], str]] = []
    fields: list[str] = []
    i, n = 0, len(text)
    while i <= n:
        end = i
        if i < n and text[i] == '"':
            j = i + 1
            while True:
                k = text.find('"', j)
                if k == -1:
                    raise WorksheetError(f"{path}: a quoted field is never closed (row {len(records) + 1}); "
                                         "download the worksheet from Moodle again")
                if text.startswith('""', k):
                    j = k + 2
                    continue
                end = k + 1
                break
        while end < n and text[end] not in (delimiter, "\r", "\n"):
            end += 1
        fields.append(text[i:end])
        if end >= n:
            if fields != [""] or not records:
                records.append((fields, ""))
            break
        if text[end] == delimiter:
            i = end + 1
            continue
        newline = "\r\n" if text.startswith("\r\n", end) else text[end]
        records.append((fields, newline))
        fields = []
        i = end + len(newline)
        if i == n:
            break
    return records


def _value(raw: str) -> str:
    raw = raw.strip() if not raw.startswith('"') else raw
    if raw.startswith('"'):
        closing = raw.rfind('"')
        return raw[1:closing].replace('""', '"') if closing > 0 else raw[1:]
    return raw


def _field(value: str, layout: _Layout) -> str:
    """A new cell as Moodle's CSV writer (PHP's fputcsv) would write it, or quoted like the rest."""
    if layout.quote_all or any(ch in value for ch in (layout.delimiter, '"', " ", "\t", "\n", "\r", "\\")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _read(path: Path) -> _Layout:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WorksheetError(f"cannot read {path} ({error.strerror or error})") from None
    bom, encoding, text = _decode(data, path)
    first_line = text.split("\n", 1)[0]
    delimiter = _delimiter(first_line)
    records = _records(text, delimiter, path)
    header = records[0][0] if records else []
    quote_all = bool(header) and all(f.startswith('"') for f in header)
    return _Layout(bom, encoding, delimiter, quote_all, records)


# --------------------------------------------------------------------------- grades and feedback


def _number(text: str) -> tuple[float, str, int] | None:
    """(value, decimal separator, decimals) of a number as Moodle's format_float wrote it."""
    text = text.strip().replace("\xa0", "").replace(" ", "")
    match = re.fullmatch(r"(\d+)(?:([.,])(\d+))?", text)
    if not match:
        return None
    separator, decimals = match.group(2) or "", match.group(3) or ""
    return float(f"{match.group(1)}.{decimals or 0}"), separator, len(decimals)


def _format(value: float, separator: str, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.replace(".", separator) if separator else text


def grade_for(result: SubmissionResult, row_maximum: float) -> float:
    """The result's points scaled to the worksheet's maximum grade, never above it."""
    if not result.max_score:
        return 0.0
    return max(0.0, min(row_maximum, result.score / result.max_score * row_maximum))


def feedback_html(result: SubmissionResult) -> str:
    """The feedback comment as Moodle stores it (HTML): plain text escaped, one line per point."""
    lines = [f"{_points(result.score)} of {_points(result.max_score)} points. {result.bonus.reason}".strip()]
    if result.error:
        lines = [f"Could not be graded: {result.error.splitlines()[0]}"]
    for question in result.questions.values():
        if question.status is Status.PASSED:
            continue
        first = question.feedback.strip().splitlines()[0] if question.feedback.strip() else question.status.value
        lines.append(f"{question.question_id}: {_points(question.score)}/{_points(question.max_score)} – {first}")
    return "<br>".join(html.escape(line, quote=False) for line in lines if line)


def _points(value: float) -> str:
    return f"{value:g}"


# --------------------------------------------------------------------------- filling


def fill_worksheet(downloaded: Path, out_dir: Path) -> FilledWorksheet:
    """Write a filled copy of the downloaded worksheet into ``out_dir`` from the course's results there."""
    downloaded, out_dir = Path(downloaded), Path(out_dir)
    results = _results(out_dir)
    moodle = read_moodle(out_dir)
    layout = _read(downloaded)
    if not layout.records:
        raise WorksheetError(f"{downloaded} is empty; download the grading worksheet from Moodle again")
    header = [_value(f).strip() for f in layout.records[0][0]]
    columns = _columns(header, downloaded)
    target = out_dir / f"{downloaded.stem}-filled{downloaded.suffix or '.csv'}"
    report = FilledWorksheet(target, german=bool({h.casefold() for h in header} & _GERMAN_MARKERS))

    by_participant: dict[str, SubmissionResult] = {}
    by_group: dict[str, SubmissionResult] = {}
    for result in results:
        info = moodle.get(result.student, {})
        participant = result.participant_id or str(info.get("participant") or "")
        if info.get("group"):
            by_group[_group_key(str(info["group"]))] = result
        elif participant:
            by_participant[participant] = result
        else:
            report.unmatched.append(f"{result.student}: not from a Moodle download, so it has no participant id "
                                    "(grade the Moodle zip, or enter this grade by hand)")
    teams = columns.group is not None
    if by_group and not teams:
        report.warnings.append("the download held team submissions, but this worksheet has no group column: "
                               "download the worksheet of the same assignment")
    used: set[str] = set()
    out_records = [layout.records[0]]
    for number, (fields, newline) in enumerate(layout.records[1:], start=2):
        values = [_value(f) for f in fields]
        if len(values) <= max(columns.identifier, columns.grade):
            out_records.append((fields, newline))
            continue
        matched, key = _match(values, columns, by_participant, by_group, teams)
        if matched is None:
            report.left_empty += 1
            out_records.append((fields, newline))
            continue
        result = matched
        used.add(key)
        who = values[columns.full_name] if columns.full_name is not None else values[columns.identifier]
        if columns.changeable is not None and values[columns.changeable].strip().casefold() in _NO:
            report.unmatched.append(f"{who} ({values[columns.identifier]}): the grade is locked in Moodle "
                                    "(\"Grade can be changed\" is No), so Moodle would skip it")
            out_records.append((fields, newline))
            continue
        maximum = _number(values[columns.maximum]) if columns.maximum is not None else None
        if maximum is None:
            column = columns.maximum
            shown = f"{values[column]!r} in column {header[column]!r}" if column is not None else "no such column"
            report.unmatched.append(f"{who} ({values[columns.identifier]}): row {number} has no maximum grade "
                                    f"({shown})")
            out_records.append((fields, newline))
            continue
        if values[columns.grade].strip():
            report.rows_with_grades += 1
        top, separator, decimals = maximum
        separator = separator or ("," if report.german else ".")
        new = list(fields)
        new[columns.grade] = _field(_format(grade_for(result, top), separator, max(decimals, 2)), layout)
        if columns.feedback is not None and columns.feedback < len(new):
            new[columns.feedback] = _field(feedback_html(result), layout)
        out_records.append((new, newline))
        report.filled += 1
    for result in results:
        info = moodle.get(result.student, {})
        group = _group_key(str(info.get("group") or ""))
        participant = result.participant_id or str(info.get("participant") or "")
        key = f"g:{group}" if group and teams else f"p:{participant}"
        if (group or participant) and key not in used and not (group and not teams):
            name = info.get("name") or result.student
            what = f"group {info.get('group')!r}" if group else f"participant {participant}"
            report.unmatched.append(f"{name} ({what}): no row in the worksheet; was it downloaded from the same "
                                    "assignment, with all participants shown?")
    if columns.feedback is None:
        report.warnings.append("the worksheet has no feedback-comments column (feedback comments are off in this "
                               "assignment): only grades were filled")
    _write(target, layout, out_records)
    return report


@dataclass
class _Columns:
    identifier: int
    grade: int
    modified: int
    maximum: int | None
    feedback: int | None
    group: int | None
    changeable: int | None
    full_name: int | None


def _columns(header: list[str], path: Path) -> _Columns:
    def find(names: set[str]) -> int | None:
        return next((i for i, h in enumerate(header) if h.casefold() in names), None)

    identifier, grade, modified = find(_IDENTIFIER), find(_GRADE), find(_MODIFIED)
    if identifier is None or grade is None or modified is None:
        raise WorksheetError(
            f"{path} is not a Moodle grading worksheet: Moodle's importer needs the columns Identifier, Grade and "
            "Last modified (grade) (German: ID, Bewertung, Zuletzt geändert (Bewertung)); this file has "
            + ", ".join(repr(h) for h in header[:12]) + ". Download it from the assignment: View all submissions "
            "→ Grading action → Download grading worksheet")
    maximum = find(_MAXIMUM)
    if maximum is None and find(_SCALE) is not None:
        raise WorksheetError(f"{path}: this assignment is graded on a scale, not in points; grader fills points "
                             "only (set the assignment's grade type to Point)")
    return _Columns(identifier, grade, modified, maximum, find(_FEEDBACK), find(_GROUP), find(_CHANGEABLE),
                    find(_FULL_NAME))


def _match(values: list[str], columns: _Columns, by_participant: dict, by_group: dict,
           teams: bool) -> tuple[SubmissionResult | None, str]:
    if teams:
        group = _group_key(values[columns.group]) if columns.group is not None and columns.group < len(values) \
            else ""
        if group in by_group:
            return by_group[group], f"g:{group}"
    digits = re.search(r"(\d+)\s*$", values[columns.identifier])
    participant = digits.group(1) if digits else ""
    if participant in by_participant:
        return by_participant[participant], f"p:{participant}"
    return None, ""


def _group_key(name: str) -> str:
    """A group as the download names its folder: '_' became a space, file-name characters dropped."""
    return re.sub(r'[\x00-\x1f/\\:*?"<>|]', "", name.replace("_", " ")).strip().casefold()


def _results(out_dir: Path) -> list[SubmissionResult]:
    path = out_dir / RESULTS_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [SubmissionResult.from_dict(s) for s in document["submissions"]]
    except FileNotFoundError:
        raise WorksheetError(f"no {RESULTS_FILE} in {out_dir}: grade the course first (grader grade --out "
                             f"{out_dir}), or pass the course's reports folder with --out") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WorksheetError(f"cannot read {path} ({error}); run grader grade again") from None


def _write(target: Path, layout: _Layout, records: list[tuple[list[str], str]]) -> None:
    text = "".join(layout.delimiter.join(fields) + newline for fields, newline in records)
    try:
        data = layout.bom + text.encode(layout.encoding)
    except UnicodeEncodeError:  # a name or comment the file's old encoding cannot hold
        raise WorksheetError(f"the feedback holds characters {layout.encoding} cannot store; save the "
                             "worksheet as UTF-8 and try again") from None
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)

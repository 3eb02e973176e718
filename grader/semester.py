"""The semester: every sheet of a course side by side, and the course's bonus rule on top of the sheets'.

``reference/course.toml`` names the course, its sheets in order and the course rule::

    title = "Multilingual NLP, summer 2024"
    sheets = ["ex01", "ex02", "ex03"]
    [bonus]
    min_sheets = 2        # the exam bonus needs at least this many sheets with their bonus
    [reports]             # optional: where a sheet was graded, when not in <--out>/<sheet>/
    ex01 = "/srv/grading/ex01"

``grader semester --out reports/`` reads each sheet's gradebook (``reports/<sheet>/gradebook.sqlite``,
where ``grader grade`` keeps it) with the decisions of its reviews applied, so reviewing a sheet
changes the overview on the next run. It writes ``reports/index.html`` (students × sheets, each cell
linking to that student's report of the sheet) and ``reports/semester.csv``.

Students are matched across sheets by name, because Moodle numbers participants per assignment: the
name is the one in the Moodle download (the ``Full Name`` in ``… → Full Name/file``), else the student
id, compared without case, accents or extra spaces. Two students of one sheet with the same name are
not merged with anyone (they keep their sheet's id) and the page says so.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .assignment import DEFINITION_FILE, load_assignment, resolve_assignment
from .errors import AssignmentError, ConfigError
from .results import SubmissionResult

COURSE_FILE = "course.toml"
INDEX_FILE = "index.html"
CSV_FILE = "semester.csv"
GRADEBOOK_FILE = "gradebook.sqlite"


@dataclass(frozen=True)
class Course:
    title: str
    sheets: tuple[str, ...]
    min_sheets: int  # sheets with their bonus the course's bonus needs
    path: Path  # course.toml
    reference: Path  # the folder holding the sheets' assignment folders
    folders: dict = field(default_factory=dict)  # sheet -> its reports folder, where not <reports>/<sheet>/

    def folder(self, sheet_id: str, reports: Path) -> Path:
        """Where a sheet was graded: ``[reports]`` in course.toml, else ``<reports>/<sheet>/``."""
        return Path(self.folders[sheet_id]) if sheet_id in self.folders else Path(reports) / sheet_id


@dataclass(frozen=True)
class Sheet:
    id: str
    title: str
    graded: bool  # a gradebook with results exists
    results: tuple[SubmissionResult, ...] = ()


@dataclass(frozen=True)
class Cell:
    """One student's result on one sheet."""

    state: str  # "graded", "absent" (sheet graded, nothing from this student), "ungraded" (sheet not graded yet)
    student: str = ""  # the sheet's own id for the student
    score: float = 0.0
    max_score: float = 0.0
    bonus: bool | None = None
    link: str = ""  # the student's report of the sheet, relative to the overview

    @property
    def bonus_word(self) -> str:
        if self.state != "graded":
            return {"absent": "not submitted", "ungraded": "not graded"}[self.state]
        return {True: "yes", False: "no", None: "pending"}[self.bonus]


@dataclass(frozen=True)
class Row:
    name: str
    cells: tuple[Cell, ...]
    status: str  # "qualifies", "one-short", "open", "out"
    reason: str

    @property
    def points(self) -> float:
        return sum(c.score for c in self.cells if c.state == "graded")

    @property
    def bonus_sheets(self) -> int:
        return sum(1 for c in self.cells if c.bonus is True)


@dataclass
class Overview:
    course: Course
    reports: Path
    sheets: list[Sheet]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)  # e.g. names that could not be matched
    files: list[Path] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    def summary_line(self) -> str:
        graded = sum(1 for s in self.sheets if s.graded)
        return (f"{len(self.rows)} students, {graded} of {len(self.sheets)} sheets graded: "
                f"{self.count('qualifies')} qualify for the course bonus (at least {self.course.min_sheets} sheets), "
                f"{self.count('one-short')} {'is' if self.count('one-short') == 1 else 'are'} one sheet short")


STATUS_TEXT = {"qualifies": "qualifies", "one-short": "one sheet short", "open": "open", "out": "does not qualify"}


# --------------------------------------------------------------------------- the course definition


def load_course(path: Path | str) -> Course:
    """Read ``course.toml``; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no course definition at {path}: write one (title, sheets, [bonus] min_sheets; see the "
                          "README's semester section) or pass --course FILE")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise AssignmentError(f"not valid TOML: {error}", path=path) from None
    unknown = sorted(set(raw) - {"title", "sheets", "bonus", "reports"})
    if unknown:
        raise AssignmentError("unknown key; known: title, sheets, bonus, reports", path=path, field=unknown[0])
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise AssignmentError("is required: the course's title", path=path, field="title")
    sheets = raw.get("sheets")
    if not isinstance(sheets, list) or not sheets or not all(isinstance(s, str) and s for s in sheets):
        raise AssignmentError('expected a list of assignment ids, e.g. ["ex01", "ex02"]', path=path, field="sheets")
    if len(set(sheets)) != len(sheets):
        raise AssignmentError("names a sheet twice", path=path, field="sheets")
    bonus = raw.get("bonus", {})
    if not isinstance(bonus, dict):
        raise AssignmentError("expected a table", path=path, field="bonus")
    unknown = sorted(set(bonus) - {"min_sheets"})
    if unknown:
        raise AssignmentError(f"unknown key {unknown[0]!r}; known: min_sheets", path=path, field="bonus")
    min_sheets = bonus.get("min_sheets", len(sheets))
    if not isinstance(min_sheets, int) or isinstance(min_sheets, bool) or not 0 <= min_sheets <= len(sheets):
        raise AssignmentError(f"expected a whole number from 0 to {len(sheets)} (the number of sheets), "
                              f"got {min_sheets!r}", path=path, field="bonus.min_sheets")
    reference = path.parent
    for sheet in sheets:
        resolve_assignment(sheet, reference)  # a misspelt sheet is an error now, not an empty column
    folders = raw.get("reports", {})
    if not isinstance(folders, dict) or not all(isinstance(v, str) and v for v in folders.values()):
        raise AssignmentError('expected a table of sheet = "folder", e.g. ex01 = "/srv/grading/ex01"', path=path,
                              field="reports")
    stray = sorted(set(folders) - set(sheets))
    if stray:
        raise AssignmentError(f"{stray[0]!r} is not one of the sheets", path=path, field=f"reports.{stray[0]}")
    return Course(title.strip(), tuple(sheets), min_sheets, path, reference, dict(folders))


# --------------------------------------------------------------------------- reading the sheets


def read_sheet(course: Course, sheet_id: str, reports: Path) -> Sheet:
    """A sheet's latest results with the reviews' decisions applied; ungraded when there is no gradebook."""
    from .score import apply_decisions
    from .store import Gradebook

    folder = resolve_assignment(sheet_id, course.reference)
    gradebook = course.folder(sheet_id, reports) / GRADEBOOK_FILE
    title = _title(folder) or sheet_id
    if not gradebook.is_file():
        return Sheet(sheet_id, title, graded=False)
    with Gradebook(gradebook) as book:
        stored = book.latest_results(sheet_id)
        decisions = book.all_decisions(sheet_id)
    if not stored:
        return Sheet(sheet_id, title, graded=False)
    assignment = load_assignment(folder)
    results = tuple(apply_decisions(r, assignment, decisions.get(r.student, {})) for r in stored)
    return Sheet(sheet_id, assignment.title, graded=True, results=results)


def _title(folder: Path) -> str:
    try:
        title = tomllib.loads((folder / DEFINITION_FILE).read_text(encoding="utf-8")).get("title")
    except (OSError, ValueError):
        return ""
    return title if isinstance(title, str) else ""


def display_name(result: SubmissionResult) -> str:
    """The student's name: from a Moodle download's ``… → Full Name/file`` label, else the student id."""
    if " → " in result.file:
        inner = result.file.rsplit(" → ", 1)[1]
        name = inner.rsplit("/", 1)[0] if "/" in inner else inner
        if name.strip():
            return name.strip()
    return result.student


def name_key(name: str) -> str:
    """Names compared without case, accents, punctuation or extra spaces: "Jörg  Groß" = "jorg gross"."""
    text = unicodedata.normalize("NFKD", name.casefold().replace("ß", "ss"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


# --------------------------------------------------------------------------- the overview


def build_overview(course: Course, reports: Path) -> Overview:
    from .report import safe_filename

    sheets = [read_sheet(course, sheet_id, Path(reports)) for sheet_id in course.sheets]
    links = {sheet_id: _relative(course.folder(sheet_id, reports), Path(reports)) for sheet_id in course.sheets}
    people: dict[str, dict[int, SubmissionResult]] = {}
    names: dict[str, str] = {}
    notes = []
    for index, sheet in enumerate(sheets):
        by_key: dict[str, list[SubmissionResult]] = {}
        for graded in sheet.results:
            by_key.setdefault(name_key(display_name(graded)), []).append(graded)
        for key, results in by_key.items():
            if len(results) > 1:  # two people with one name on one sheet: match neither
                ids = ", ".join(r.student for r in results)
                notes.append(f"{sheet.id}: {len(results)} students named {display_name(results[0])!r} ({ids}) are "
                             "shown separately and not matched with other sheets")
                for each in results:
                    own = f"{key} [{sheet.id}:{each.student}]"
                    people.setdefault(own, {})[index] = each
                    names[own] = f"{display_name(each)} ({each.student})"
                continue
            people.setdefault(key, {})[index] = results[0]
            names.setdefault(key, display_name(results[0]))
    rows = []
    for key in sorted(people, key=lambda k: (names[k].casefold(), k)):
        cells = []
        for index, sheet in enumerate(sheets):
            result: SubmissionResult | None = people[key].get(index)
            if not sheet.graded:
                cells.append(Cell("ungraded"))
            elif result is None:
                cells.append(Cell("absent"))
            else:
                cells.append(Cell("graded", result.student, result.score, result.max_score, result.bonus.awarded,
                                  f"{links[sheet.id]}/{safe_filename(result.student)}.html"))
        status, reason = course_decision(course, sheets, cells)
        rows.append(Row(names[key], tuple(cells), status, reason))
    return Overview(course, Path(reports), sheets, rows, notes)


def _relative(folder: Path, reports: Path) -> str:
    """A sheet's folder as a link from the overview in ``reports``."""
    import os

    return Path(os.path.relpath(Path(folder).resolve(), Path(reports).resolve())).as_posix()


def course_decision(course: Course, sheets: list[Sheet], cells: list[Cell]) -> tuple[str, str]:
    """The course rule for one student: (status, the reason in one sentence)."""
    need = course.min_sheets
    won = [s.id for s, c in zip(sheets, cells) if c.bonus is True]
    pending = [s.id for s, c in zip(sheets, cells) if c.state == "graded" and c.bonus is None]
    ungraded = [s.id for s, c in zip(sheets, cells) if c.state == "ungraded"]
    have = f"bonus on {_count(len(won), 'sheet')}" + (f" ({', '.join(won)})" if won else "")
    if len(won) >= need:
        return "qualifies", f"{have}; the course needs {need}"
    still = [*(f"{s} awaits review" for s in pending), *(f"{s} is not graded yet" for s in ungraded)]
    later = f"; {', '.join(still)}" if still else ""
    if len(won) == need - 1:
        return "one-short", f"{have}; the course needs {need}: one sheet short{later}"
    if len(won) + len(pending) + len(ungraded) >= need:
        return "open", f"{have}; the course needs {need}{later}"
    return "out", f"{have}; the course needs {need}, and too few sheets are left"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def semester_csv(overview: Overview) -> str:
    """One row per student: per sheet the student's id there, points and bonus; the course verdict."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["student"]
    for sheet in overview.sheets:
        header += [f"{sheet.id} id", f"{sheet.id} points", f"{sheet.id} bonus"]
    writer.writerow(header + ["points", "sheets with bonus", "course bonus", "reason"])
    for row in overview.rows:
        values = [_csv_safe(row.name)]
        for cell in row.cells:
            values += [_csv_safe(cell.student), f"{cell.score:g}" if cell.state == "graded" else "", cell.bonus_word]
        writer.writerow(values + [f"{row.points:g}", row.bonus_sheets, STATUS_TEXT[row.status], row.reason])
    return out.getvalue()


def _csv_safe(text: str) -> str:
    """No spreadsheet formula from a name: a leading = + - @ is quoted away."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_semester(overview: Overview) -> str:
    from .report.html import _csp, _env

    sheets = overview.sheets
    stats = []
    for index, sheet in enumerate(sheets):
        cells = [r.cells[index] for r in overview.rows]
        stats.append({"sheet": sheet, "link": _relative(overview.course.folder(sheet.id, overview.reports),
                                                        overview.reports) + "/index.html",
                      "submitted": sum(1 for c in cells if c.state == "graded"),
                      "bonus": sum(1 for c in cells if c.bonus is True),
                      "pending": sum(1 for c in cells if c.state == "graded" and c.bonus is None)})
    return _env().get_template("semester.html.j2").render(
        o=overview, course=overview.course, stats=stats, status_text=STATUS_TEXT, csp=_csp(script=None))


def write_semester(course: Course, reports: Path | str) -> Overview:
    """Write ``index.html`` and ``semester.csv`` into ``reports``; return the overview."""
    reports = Path(reports)
    overview = build_overview(course, reports)
    reports.mkdir(parents=True, exist_ok=True)
    for name, text in ((INDEX_FILE, render_semester(overview)), (CSV_FILE, semester_csv(overview))):
        path = reports / name
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
        overview.files.append(path)
    return overview

"""The gradebook: one SQLite file holding every grading run, its results, and the people's decisions.

Results are stored as the JSON of :meth:`SubmissionResult.to_dict` (the one source every report and
export is rendered from) plus one row per question for queries. Manual decisions live in their own
table keyed by (assignment, student, question), so they survive any number of regrades; grader.score
applies them on top of the recorded results. Every change of a decision is also appended to
``decision_log`` (what it was before, what it became, who, from where, when): the review app shows
what a change replaced and undoes a change only while nobody has changed that answer since. Each
change is one ``BEGIN IMMEDIATE`` transaction, so concurrent reviewers -- threads of one review app or
two apps on one file -- never lose each other's updates. Handed-in notebooks are kept (compressed,
once per content hash) so a reviewer can read an answer in its notebook after the upload is gone.

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` is applied in order, each step
in one transaction, so an older gradebook is upgraded when it is opened.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
import zlib
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .assignment import Assignment
from .errors import GradebookError, GraderError
from .results import ManualDecision, SubmissionResult

GRADEBOOK_FILE = "gradebook.sqlite"


def default_path(reports_dir: Path, assignment_id: str) -> Path:
    """``reports/<assignment>/gradebook.sqlite``."""
    return Path(reports_dir) / assignment_id / GRADEBOOK_FILE


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- schema and migrations

_V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    assignment TEXT NOT NULL,
    assignment_version TEXT NOT NULL,
    mode TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL,
    source_path TEXT NOT NULL,
    student TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE results (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    assignment_version TEXT NOT NULL,
    mode TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX results_cache ON results (content_hash, assignment_version, mode);
CREATE TABLE decisions (
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    question_id TEXT NOT NULL,
    accepted INTEGER,
    score REAL,
    comment TEXT,
    reviewer TEXT NOT NULL DEFAULT '',
    decided_at TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (assignment, student, question_id)
);
"""

_V2 = """
CREATE TABLE question_results (
    result_id INTEGER NOT NULL REFERENCES results(id),
    question_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    PRIMARY KEY (result_id, question_id)
);
ALTER TABLE results ADD COLUMN score REAL NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN max_score REAL NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN bonus_awarded INTEGER;
ALTER TABLE results ADD COLUMN graded_at TEXT NOT NULL DEFAULT '';
CREATE INDEX results_latest ON results (assignment, student, id);
"""


def _v2_backfill(db: sqlite3.Connection) -> None:
    """Version 1 kept only the JSON: fill the new columns and per-question rows from it."""
    rows = db.execute("SELECT id, document FROM results").fetchall()
    for result_id, document in rows:
        result = SubmissionResult.from_dict(json.loads(document))
        _write_summary(db, result_id, result)


Migration = Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Migration:
    def apply(db: sqlite3.Connection) -> None:
        for statement in filter(str.strip, sql.split(";")):
            db.execute(statement)

    return apply


_V3 = """
CREATE TABLE decision_log (
    id INTEGER PRIMARY KEY,
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    question_id TEXT NOT NULL,
    before TEXT,
    after TEXT,
    reviewer TEXT NOT NULL,
    source TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX decision_log_answer ON decision_log (assignment, student, question_id, id);
CREATE TABLE handed_in (
    content_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    data BLOB NOT NULL
)
"""

# MIGRATIONS[i] takes a gradebook from user_version i to i + 1. Append; never edit a released step.
MIGRATIONS: list[list[Migration]] = [
    [_script(_V1)],
    [_script(_V2), _v2_backfill],
    [_script(_V3)],
]
SCHEMA_VERSION = len(MIGRATIONS)


def _write_summary(db: sqlite3.Connection, result_id: int, result: SubmissionResult) -> None:
    db.execute(
        "UPDATE results SET score = ?, max_score = ?, bonus_awarded = ?, graded_at = ? WHERE id = ?",
        (result.score, result.max_score, _flag(result.bonus.awarded), result.graded_at, result_id),
    )
    db.executemany(
        "INSERT OR REPLACE INTO question_results VALUES (?, ?, ?, ?, ?, ?)",
        [(result_id, q.question_id, q.kind, q.status.value, q.score, q.max_score)
         for q in result.questions.values()],
    )


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


# --------------------------------------------------------------------------- the gradebook


class Gradebook:
    """A gradebook file; use as a context manager. Safe to share between threads (one lock)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA busy_timeout = 30000")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; one fsync per checkpoint
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise GradebookError(f"{self.path}: cannot open the gradebook ({error}); is it a gradebook "
                                 "file? Move it aside to start a new one") from None

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise GradebookError(f"{self.path}: written by a newer grader (schema {version}, this grader "
                                     f"knows up to {SCHEMA_VERSION}); upgrade grader")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for step in MIGRATIONS[target - 1]:
                        step(self._db)
                    self._db.execute(f"PRAGMA user_version = {target}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def _transaction(self):
        return _Transaction(self)

    # ----------------------------------------------------------------------- runs and results

    def start_run(self, assignment_id: str, assignment_version: str, mode: str) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (assignment, assignment_version, mode, started_at) VALUES (?, ?, ?, ?)",
                (assignment_id, assignment_version, mode, _now()))
            return cursor.lastrowid

    def finish_run(self, run_id: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE runs SET finished_at = ? WHERE id = ?", (_now(), run_id))

    def cached(self, content_hash: str, assignment_version: str, mode: str) -> SubmissionResult | None:
        """The newest result for these exact bytes under this exact assignment version and mode.

        The result is returned as recorded: when two students handed in identical bytes it names the
        student recorded first, so the caller sets ``student`` and ``file`` (``dataclasses.replace``).
        """
        if not content_hash:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT document FROM results WHERE content_hash = ? AND assignment_version = ? AND mode = ? "
                "ORDER BY id DESC LIMIT 1", (content_hash, assignment_version, mode)).fetchone()
        return None if row is None else SubmissionResult.from_dict(json.loads(row[0]))

    def record(self, run_id: int, result: SubmissionResult, document: str | None = None) -> None:
        """Store one result; ``document`` is its JSON text when the caller already has it."""
        with self._transaction() as db:
            submission_id = db.execute(
                "INSERT INTO submissions (content_hash, source_path, student, received_at) VALUES (?, ?, ?, ?)",
                (result.content_hash, result.file, result.student, _now())).lastrowid
            result_id = db.execute(
                "INSERT INTO results (run_id, submission_id, assignment, student, assignment_version, mode, "
                "content_hash, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, submission_id, result.assignment, result.student, result.assignment_version,
                 result.mode, result.content_hash,
                 document if document is not None else json.dumps(result.to_dict(), ensure_ascii=False))).lastrowid
            _write_summary(db, result_id, result)

    def latest_results(self, assignment_id: str) -> list[SubmissionResult]:
        """The newest recorded result of every student, ordered by student."""
        with self._lock:
            rows = self._db.execute(
                "SELECT document FROM results WHERE id IN "
                "(SELECT MAX(id) FROM results WHERE assignment = ? GROUP BY student) ORDER BY student",
                (assignment_id,)).fetchall()
        return [SubmissionResult.from_dict(json.loads(row[0])) for row in rows]

    def runs(self, assignment_id: str) -> list[dict]:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM runs WHERE assignment = ? ORDER BY id", (assignment_id,))
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    # ----------------------------------------------------------------------- decisions

    def set_decision(self, assignment_id: str, student: str, decision: ManualDecision,
                     source: str = "api") -> DecisionChange:
        """Store (replace) the decision on one question of one student; committed at once, logged."""
        stored = replace(decision, decided_at=decision.decided_at or _now())
        return self.change_decision(assignment_id, student, decision.question_id, lambda _: stored,
                                    reviewer=decision.reviewer, source=source)

    def change_decision(self, assignment_id: str, student: str, question_id: str,
                        change: Callable[[ManualDecision | None], ManualDecision | None], *, reviewer: str,
                        source: str) -> DecisionChange:
        """Read, change and write one decision in one transaction (``change(None)`` for an open answer;
        returning None reopens it). Concurrent changes, also from another process, are serialised."""
        with self._transaction() as db:
            before = _read_decision(db, assignment_id, student, question_id)
            after = change(before)
            if after is before:  # nothing to change
                return DecisionChange(0, student, question_id, before, after, reviewer, source, _now())
            return _write_decision(db, assignment_id, student, question_id, before, after, reviewer, source)

    def undo(self, assignment_id: str, student: str, question_id: str, log_id: int, reviewer: str) -> DecisionChange:
        """Undo logged change ``log_id``: restore what the answer was before it, but only while the answer
        is still as that change left it. Otherwise raise :class:`DecisionConflict` naming the newer change."""
        with self._transaction() as db:
            row = db.execute("SELECT before, after FROM decision_log WHERE id = ? AND assignment = ? AND student = ? "
                             "AND question_id = ?", (log_id, assignment_id, student, question_id)).fetchone()
            if row is None:
                raise DecisionConflict(f"no change {log_id} on {student}'s answer to {question_id}")
            current = _read_decision(db, assignment_id, student, question_id)
            if _decision_json(current) != row[1]:
                newest = _newest_change(db, assignment_id, student, question_id)
                by = f" by {newest.reviewer} ({newest.source}, {newest.at})" if newest else ""
                raise DecisionConflict(f"{student}'s answer to {question_id} was changed since{by}; not undone")
            return _write_decision(db, assignment_id, student, question_id, current, _decision_from_json(row[0]),
                                   reviewer, "undo")

    def last_changes(self, assignment_id: str) -> dict[str, dict[str, DecisionChange]]:
        """student -> question id -> the newest logged change of that answer."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM decision_log WHERE id IN (SELECT MAX(id) FROM decision_log WHERE assignment = ? "
                "GROUP BY student, question_id)", (assignment_id,)).fetchall()
        found: dict[str, dict[str, DecisionChange]] = {}
        for row in rows:
            change = _change_from_row(row)
            found.setdefault(change.student, {})[change.question_id] = change
        return found

    def history(self, assignment_id: str, student: str, question_id: str) -> list[DecisionChange]:
        """Every logged change of one answer, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM decision_log WHERE assignment = ? AND student = ? AND "
                                    "question_id = ? ORDER BY id", (assignment_id, student, question_id)).fetchall()
        return [_change_from_row(row) for row in rows]

    def decisions(self, assignment_id: str, student: str) -> dict[str, ManualDecision]:
        """question id -> decision, for one student."""
        return self._decisions(assignment_id, student).get(student, {})

    def all_decisions(self, assignment_id: str) -> dict[str, dict[str, ManualDecision]]:
        """student -> question id -> decision."""
        return self._decisions(assignment_id, None)

    def _decisions(self, assignment_id: str, student: str | None) -> dict[str, dict[str, ManualDecision]]:
        query = ("SELECT student, question_id, accepted, score, comment, reviewer, decided_at FROM decisions "
                 "WHERE assignment = ?")
        params: tuple = (assignment_id,)
        if student is not None:
            query += " AND student = ?"
            params += (student,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY student, question_id", params).fetchall()
        found: dict[str, dict[str, ManualDecision]] = {}
        for student, question_id, *values in rows:
            found.setdefault(student, {})[question_id] = _decision_from_row(question_id, values)
        return found

    # ----------------------------------------------------------------------- handed-in notebooks

    def keep_handed_in(self, content_hash: str | None, path: Path) -> bool:
        """Keep the notebook a submission hands in (once per content hash), for the review app's notebook
        view: a file, or the notebook chosen from a folder or zip. Python modules are not kept.
        Returns whether a notebook for this hash is kept."""
        from .submission import _read_submission_bytes

        if not content_hash:
            return False
        with self._lock:
            if self._db.execute("SELECT 1 FROM handed_in WHERE content_hash = ?", (content_hash,)).fetchone():
                return True
        try:
            name, data = _read_submission_bytes(Path(path))
        except (GraderError, OSError, ValueError):
            return False
        if not name.lower().endswith(".ipynb"):
            return False
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO handed_in VALUES (?, ?, ?)",
                       (content_hash, Path(name).name, zlib.compress(data, 6)))
        return True

    def handed_in(self, content_hash: str) -> tuple[str, bytes] | None:
        """(file name, bytes) of a kept notebook, or None."""
        with self._lock:
            row = self._db.execute("SELECT name, data FROM handed_in WHERE content_hash = ?",
                                   (content_hash,)).fetchone()
        return None if row is None else (row[0], zlib.decompress(row[1]))


@dataclass(frozen=True)
class DecisionChange:
    """One logged change of a decision: ``before``/``after`` are None for an open answer."""

    id: int
    student: str
    question_id: str
    before: ManualDecision | None
    after: ManualDecision | None
    reviewer: str
    source: str  # "review", "import", "undo", "api"
    at: str


class DecisionConflict(GradebookError):
    """An undo that would overwrite a newer change by someone else."""


def _decision_from_row(question_id: str, values) -> ManualDecision:
    accepted, score, comment, reviewer, decided_at = values
    return ManualDecision(question_id=question_id, accepted=None if accepted is None else bool(accepted),
                          score=score, comment=comment, reviewer=reviewer, decided_at=decided_at)


def _read_decision(db: sqlite3.Connection, assignment_id: str, student: str, question_id: str) -> ManualDecision | None:
    row = db.execute("SELECT accepted, score, comment, reviewer, decided_at FROM decisions WHERE assignment = ? "
                     "AND student = ? AND question_id = ?", (assignment_id, student, question_id)).fetchone()
    return None if row is None else _decision_from_row(question_id, row)


def _decision_json(decision: ManualDecision | None) -> str | None:
    if decision is None:
        return None
    return json.dumps([None if decision.accepted is None else bool(decision.accepted),
                       None if decision.score is None else float(decision.score), decision.comment,
                       decision.reviewer, decision.decided_at])


def _decision_from_json(text: str | None, question_id: str = "") -> ManualDecision | None:
    return None if text is None else _decision_from_row(question_id, json.loads(text))


def _write_decision(db: sqlite3.Connection, assignment_id: str, student: str, question_id: str,
                    before: ManualDecision | None, after: ManualDecision | None, reviewer: str,
                    source: str) -> DecisionChange:
    if after is None:
        db.execute("DELETE FROM decisions WHERE assignment = ? AND student = ? AND question_id = ?",
                   (assignment_id, student, question_id))
    else:
        after = replace(after, question_id=question_id, decided_at=after.decided_at or _now())
        db.execute("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (assignment_id, student, question_id, _flag(after.accepted), after.score, after.comment,
                    after.reviewer, after.decided_at))
    at = _now()
    log_id = db.execute("INSERT INTO decision_log (assignment, student, question_id, before, after, reviewer, source, "
                        "at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (assignment_id, student, question_id,
                                                                _decision_json(before), _decision_json(after),
                                                                reviewer, source, at)).lastrowid
    return DecisionChange(log_id or 0, student, question_id, before, after, reviewer, source, at)


def _change_from_row(row) -> DecisionChange:
    log_id, _, student, question_id, before, after, reviewer, source, at = row
    return DecisionChange(log_id, student, question_id, _decision_from_json(before, question_id),
                          _decision_from_json(after, question_id), reviewer, source, at)


def _newest_change(db: sqlite3.Connection, assignment_id: str, student: str, question_id: str) -> DecisionChange | None:
    row = db.execute("SELECT * FROM decision_log WHERE assignment = ? AND student = ? AND question_id = ? "
                     "ORDER BY id DESC LIMIT 1", (assignment_id, student, question_id)).fetchone()
    return None if row is None else _change_from_row(row)


class _Transaction:
    """``with gradebook._transaction() as db``: one locked, committed-or-rolled-back transaction."""

    def __init__(self, gradebook: Gradebook):
        self.gradebook = gradebook

    def __enter__(self) -> sqlite3.Connection:
        self.gradebook._lock.acquire()
        self.gradebook._db.execute("BEGIN IMMEDIATE")
        return self.gradebook._db

    def __exit__(self, exc_type, *_: object) -> None:
        try:
            self.gradebook._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self.gradebook._lock.release()


# --------------------------------------------------------------------------- CSV import

_YES = {"yes", "y", "1", "true", "ja", "j", "accepted", "accept", "x"}
_NO = {"no", "n", "0", "false", "nein", "rejected", "reject"}


@dataclass(frozen=True)
class _Row:
    number: int
    student: str
    decision: ManualDecision


@dataclass(frozen=True)
class Imported:
    """What an import did: changes stored (``before`` shows a decision it replaced), and rows not stored
    because the gradebook holds a newer decision for that answer (newest wins)."""

    stored: list[DecisionChange]
    kept: list[tuple[int, ManualDecision, ManualDecision]]  # (line, the row's decision, the newer one kept)

    @property
    def overwritten(self) -> list[DecisionChange]:
        return [c for c in self.stored if c.before is not None and _decision_json(c.before) != _decision_json(c.after)]


def import_decisions_csv(gradebook: Gradebook, assignment: Assignment, csv_path: Path, reviewer: str = "csv") -> int:
    """Read manual decisions from a spreadsheet export; returns how many were stored (see :func:`import_decisions`)."""
    return len(import_decisions(gradebook, assignment, csv_path, reviewer).stored)


def import_decisions(gradebook: Gradebook, assignment: Assignment, csv_path: Path, reviewer: str = "csv") -> Imported:
    """Read manual decisions from a spreadsheet export into the gradebook.

    Columns (header row, any order, case-insensitive): ``student``, ``question``, and at least one of
    ``accepted`` (yes/no/1/0/true/false), ``score``, ``comment``; optionally ``decided_at`` (ISO 8601
    date or time, UTC when no zone is given; without it a row is decided at the time of the import).
    Comma or semicolon separated (German spreadsheets write ``;`` and decimal commas, both understood).
    Every row is checked first; when any is bad nothing is stored and the error lists each bad row by
    its line number.

    Which decision wins -- this import or one made in the review app -- is the same rule everywhere:
    the newest. A row newer than the gradebook's decision replaces it (the replaced decision is in
    ``Imported.overwritten`` and in the decision log, shown on the review card); a row older than it
    is not stored and is listed in ``Imported.kept``.
    """
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise GradebookError(f"{csv_path}: cannot read the CSV file ({error}); save it as UTF-8 CSV") from None
    lines = text.splitlines()
    if not lines:
        raise GradebookError(f"{csv_path}: the file is empty; expected a header row: student,question,accepted,score,comment")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(lines, delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in ("student", "question") if c not in header]
    if missing:
        raise GradebookError(f"{csv_path}: the header row lacks the column(s) {', '.join(missing)} "
                             f"(found: {', '.join(header) or 'nothing'})")
    if not {"accepted", "score", "comment"} & set(header):
        raise GradebookError(f"{csv_path}: no column to import: add at least one of accepted, score, comment")
    questions = {q.id: q for q in assignment.questions}
    known_students = {r.student for r in gradebook.latest_results(assignment.id)}
    rows, problems = [], []
    now = _now()
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
        try:
            rows.append(_parse_row(number, values, questions, known_students, reviewer, now))
        except ValueError as problem:
            problems.append(f"line {number}: {problem}")
    if problems:
        shown = "\n  ".join(problems[:20]) + ("\n  …" if len(problems) > 20 else "")
        raise GradebookError(f"{csv_path}: {len(problems)} bad row(s), nothing imported:\n  {shown}")
    stored, kept = [], []
    for row in rows:
        newer: list[ManualDecision] = []

        def newest_wins(current: ManualDecision | None, row: _Row = row, newer: list = newer) -> ManualDecision | None:
            if current is not None and _instant(current.decided_at) > _instant(row.decision.decided_at):
                newer.append(current)
                return current
            return row.decision

        change = gradebook.change_decision(assignment.id, row.student, row.decision.question_id, newest_wins,
                                           reviewer=reviewer, source="import")
        if newer:
            kept.append((row.number, row.decision, newer[0]))
        else:
            stored.append(change)
    return Imported(stored, kept)


def _instant(stamp: str) -> datetime:
    """An ISO 8601 time (or date) as an aware UTC datetime; naive ones are UTC; unreadable ones the oldest."""
    try:
        moment = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parse_row(number: int, values: dict[str, str], questions: dict, known_students: set[str],
               reviewer: str, now: str) -> _Row:
    student, question_id = values.get("student", ""), values.get("question", "")
    if not student:
        raise ValueError("the student is empty")
    if known_students and student not in known_students:
        raise ValueError(f"student {student!r} has no result in the gradebook (check the spelling)")
    if question_id not in questions:
        raise ValueError(f"question {question_id!r} is not one of {', '.join(questions)}")
    question = questions[question_id]
    accepted_text = values.get("accepted", "").lower()
    if not accepted_text:
        accepted = None
    elif accepted_text in _YES:
        accepted = True
    elif accepted_text in _NO:
        accepted = False
    else:
        raise ValueError(f"accepted must be yes/no/1/0/true/false, got {values['accepted']!r}")
    score_text = values.get("score", "").replace(",", ".")
    score = None
    if score_text:
        try:
            score = float(score_text)
        except ValueError:
            raise ValueError(f"score must be a number, got {values['score']!r}") from None
        if not 0 <= score <= question.points:
            raise ValueError(f"score {score:g} is outside 0..{question.points:g} for question {question_id}")
    comment = values.get("comment") or None
    if accepted is None and score is None and comment is None:
        raise ValueError("nothing to import: accepted, score and comment are all empty")
    decided_at = now
    if values.get("decided_at"):
        try:
            moment = datetime.fromisoformat(values["decided_at"].replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"decided_at must be an ISO 8601 date or time such as 2024-06-27T14:30, "
                             f"got {values['decided_at']!r}") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        decided_at = moment.astimezone(timezone.utc).isoformat(timespec="seconds")
    return _Row(number, student, ManualDecision(question_id, accepted, score, comment, reviewer, decided_at))

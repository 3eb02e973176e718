"""The gradebook: caching, results across runs, decisions surviving regrades, migrations, CSV import."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import pytest
import review_fixtures as fx

from grader.results import ManualDecision
from grader.store import SCHEMA_VERSION, Gradebook, GradebookError, default_path, import_decisions_csv

A = fx.ASSIGNMENT_ID


@pytest.fixture(scope="module")
def course():
    return fx.build_course(120)


def _run(book: Gradebook, results, version="v1", mode="grade") -> int:
    run = book.start_run(A, version, mode)
    for result in results:
        book.record(run, result)
    book.finish_run(run)
    return run


def test_default_path(tmp_path):
    assert default_path(tmp_path / "reports", "exercise-01") == tmp_path / "reports/exercise-01/gradebook.sqlite"


def test_record_and_cached_round_trip(tmp_path, course):
    with Gradebook(tmp_path / "gb.sqlite") as book:
        _run(book, course.results[:5])
        first = course.results[0]
        assert book.cached(first.content_hash, "v1", "grade") == first
        assert book.schema_version == SCHEMA_VERSION


@pytest.mark.parametrize("change", ["hash", "version", "mode"])
def test_cached_misses_when_anything_differs(tmp_path, course, change):
    with Gradebook(tmp_path / "gb.sqlite") as book:
        _run(book, course.results[:3])
        first = course.results[0]
        key = {"content_hash": first.content_hash, "assignment_version": "v1", "mode": "grade"}
        key[{"hash": "content_hash", "version": "assignment_version", "mode": "mode"}[change]] = "other"
        assert book.cached(**key) is None


def test_cached_empty_hash_is_never_a_hit(tmp_path, course):
    with Gradebook(tmp_path / "gb.sqlite") as book:
        _run(book, [replace(course.results[0], content_hash="")])
        assert book.cached("", "v1", "grade") is None


def test_two_runs_of_a_course(tmp_path, course):
    """120 students, a regrade a week later with 25 new submissions: cache hits, newest per student."""
    path = tmp_path / "gb.sqlite"
    with Gradebook(path) as book:
        _run(book, course.results)
        second = fx.second_run(course, changed=25)
        hits = sum(book.cached(r.content_hash, "v1", "grade") is not None for r in second)
        assert hits == len(second) - 25
        _run(book, second)
    with Gradebook(path) as book:  # reopened: everything is on disk
        latest = book.latest_results(A)
        assert [r.student for r in latest] == sorted(r.student for r in course.results)
        assert {r.student: r for r in latest} == {r.student: r for r in second}
        assert all(r.graded_at.startswith("2024-06-27") for r in latest)
        assert len(book.runs(A)) == 2 and all(run["finished_at"] for run in book.runs(A))
        assert book.latest_results("another-assignment") == []


def test_decisions_survive_a_regrade(tmp_path, course):
    path = tmp_path / "gb.sqlite"
    student = course.results[3].student
    with Gradebook(path) as book:
        _run(book, course.results)
        book.set_decision(A, student, ManualDecision("2.1", True, None, "good", "ms"))
        book.set_decision(A, student, ManualDecision("2.2", None, 1.5, None, "ms"))
    with Gradebook(path) as book:
        _run(book, fx.second_run(course), version="v2")
        decisions = book.decisions(A, student)
        assert set(decisions) == {"2.1", "2.2"}
        assert decisions["2.1"].accepted is True and decisions["2.1"].comment == "good"
        assert decisions["2.1"].decided_at  # stamped when not given
        assert decisions["2.2"].accepted is None and decisions["2.2"].score == 1.5
        book.set_decision(A, student, ManualDecision("2.1", False, 0.0, "on second thought", "ms"))
        assert book.decisions(A, student)["2.1"].accepted is False
        assert book.all_decisions(A) == {student: book.decisions(A, student)}
        assert book.decisions(A, "nobody") == {}


def test_decision_is_committed_at_once(tmp_path, course):
    path = tmp_path / "gb.sqlite"
    writer = Gradebook(path)
    reader = Gradebook(path)
    try:
        writer.set_decision(A, "s1", ManualDecision("2.1", True, None))
        assert reader.decisions(A, "s1")["2.1"].accepted is True
    finally:
        writer.close()
        reader.close()


def _v1_database(path, results) -> None:
    """A gradebook as version 1 wrote it: results kept only as JSON, no per-question rows."""
    from grader.store import _V1

    db = sqlite3.connect(path)
    db.executescript(_V1)
    db.execute("INSERT INTO runs VALUES (1, ?, 'v1', 'grade', '2024-06-20T10:00:00+00:00', NULL)", (A,))
    for i, result in enumerate(results, start=1):
        db.execute("INSERT INTO submissions VALUES (?, ?, ?, ?, '2024-06-20')",
                   (i, result.content_hash, result.file, result.student))
        db.execute("INSERT INTO results VALUES (?, 1, ?, ?, ?, 'v1', 'grade', ?, ?)",
                   (i, i, A, result.student, result.content_hash, json.dumps(result.to_dict())))
    db.execute("INSERT INTO decisions VALUES (?, ?, '2.1', 1, NULL, 'ok', 'ms', '2024-06-21')",
               (A, results[0].student))
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_migration_from_version_1(tmp_path, course):
    path = tmp_path / "old.sqlite"
    _v1_database(path, course.results[:10])
    with Gradebook(path) as book:
        assert book.schema_version == SCHEMA_VERSION
        assert book.latest_results(A) == sorted(course.results[:10], key=lambda r: r.student)
        assert book.decisions(A, course.results[0].student)["2.1"].comment == "ok"
        assert book.cached(course.results[1].content_hash, "v1", "grade") == course.results[1]
    db = sqlite3.connect(path)
    rows = db.execute("SELECT COUNT(*) FROM question_results").fetchone()[0]
    score = db.execute("SELECT score FROM results WHERE id = 1").fetchone()[0]
    db.close()
    assert rows == 10 * len(course.assignment.questions)  # backfilled from the JSON
    assert score == course.results[0].score


def test_migration_from_empty_version_0(tmp_path):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    with Gradebook(path) as book:
        assert book.schema_version == SCHEMA_VERSION


def test_newer_or_foreign_files_are_refused(tmp_path):
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(GradebookError, match="newer grader"):
        Gradebook(newer)
    foreign = tmp_path / "notes.sqlite"
    foreign.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(GradebookError, match="cannot open the gradebook"):
        Gradebook(foreign)


# --------------------------------------------------------------------------- CSV import


def test_csv_import_good_rows(tmp_path, course):
    s1, s2, s3 = (r.student for r in course.results[:3])
    csv_file = tmp_path / "scores.csv"
    csv_file.write_text(
        "Student,Question,Accepted,Score,Comment\n"
        f"{s1},2.1,yes,,well argued\n"
        f"{s1},2.2,0,,\n"
        f"{s2},3.1,,1.5,\"partly, misses adapters\"\n"
        "\n"
        f"{s3},2.3,TRUE,2,\n", encoding="utf-8")
    with Gradebook(tmp_path / "gb.sqlite") as book:
        _run(book, course.results)
        assert import_decisions_csv(book, course.assignment, csv_file) == 4
        assert book.decisions(A, s1)["2.1"] == replace(book.decisions(A, s1)["2.1"], accepted=True, score=None,
                                                       comment="well argued", reviewer="csv")
        assert book.decisions(A, s1)["2.2"].accepted is False
        assert book.decisions(A, s2)["3.1"].score == 1.5 and book.decisions(A, s2)["3.1"].comment == "partly, misses adapters"
        assert book.decisions(A, s3)["2.3"].accepted is True and book.decisions(A, s3)["2.3"].score == 2.0


def test_csv_import_german_spreadsheet(tmp_path, course):
    """Excel in German: a BOM, semicolons, decimal commas, 'ja'/'nein'."""
    s1 = course.results[0].student
    csv_file = tmp_path / "noten.csv"
    csv_file.write_text(f"\ufeffstudent;question;accepted;score\n{s1};3.3;ja;1,5\n", encoding="utf-8")
    with Gradebook(tmp_path / "gb.sqlite") as book:
        _run(book, course.results[:5])
        assert import_decisions_csv(book, course.assignment, csv_file, reviewer="ms") == 1
        decision = book.decisions(A, s1)["3.3"]
        assert (decision.accepted, decision.score, decision.reviewer) == (True, 1.5, "ms")


def test_csv_import_bad_rows_name_each_row_and_store_nothing(tmp_path, course):
    s1 = course.results[0].student
    csv_file = tmp_path / "scores.csv"
    csv_file.write_text(
        "student,question,accepted,score,comment\n"
        f"{s1},2.1,yes,,fine\n"
        f"{s1},9.9,yes,,\n"
        f"{s1},2.2,maybe,,\n"
        f"{s1},2.3,,lots,\n"
        f"{s1},3.1,,7,\n"
        "ghost-1,2.1,yes,,\n"
        f"{s1},3.2,,,\n"
        ",2.1,yes,,\n", encoding="utf-8")
    with Gradebook(tmp_path / "gb.sqlite") as book:
        _run(book, course.results[:5])
        with pytest.raises(GradebookError) as caught:
            import_decisions_csv(book, course.assignment, csv_file)
        message = str(caught.value)
        for expected in ["7 bad row(s), nothing imported", "line 3: question '9.9' is not one of",
                         "line 4: accepted must be yes/no", "line 5: score must be a number, got 'lots'",
                         "line 6: score 7 is outside 0..2", "line 7: student 'ghost-1' has no result",
                         "line 8: nothing to import", "line 9: the student is empty"]:
            assert expected in message
        assert book.all_decisions(A) == {}


@pytest.mark.parametrize("content, expected", [
    ("", "the file is empty"),
    ("name,question,score\nx,2.1,1\n", "lacks the column(s) student"),
    ("student,question\nx,2.1\n", "no column to import"),
])
def test_csv_import_bad_files(tmp_path, course, content, expected):
    csv_file = tmp_path / "scores.csv"
    csv_file.write_text(content, encoding="utf-8")
    with Gradebook(tmp_path / "gb.sqlite") as book:
        with pytest.raises(GradebookError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            import_decisions_csv(book, course.assignment, csv_file)
    with Gradebook(tmp_path / "gb.sqlite") as book, pytest.raises(GradebookError, match="cannot read"):
        import_decisions_csv(book, course.assignment, tmp_path / "missing.csv")

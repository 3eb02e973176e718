"""Filling the grading worksheet downloaded from Moodle, checked against the rules of Moodle's importer.

The worksheets are written as Moodle writes them (tests/moodle_fixtures.py); the filled copy is read
back the way ``assignfeedback_offline_grade_importer`` and ``assign_feedback_offline::process_import_grades``
read it: headers matched exactly against the language's strings, the participant id taken from the end
of the identifier, the grade through ``unformat_float`` (the language's decimal separator), grades above
the row's maximum or below zero skipped, "Last modified (grade)" kept so that ``strtotime`` still sees
the time Moodle wrote.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import report_fixtures as fx
from moodle_fixtures import HEADERS, PARTICIPANT, worksheet_bytes

from grader.cli import ExitCode, main
from grader.course.worksheet import WorksheetError, fill_worksheet
from grader.results import results_document

STRINGS = {  # what the importer compares headers with, per language (mod_assign, core, assignfeedback_comments)
    "en": {"id": "Identifier", "grade": "Grade", "modified": "Last modified (grade)",
           "feedback": "Feedback comments", "decsep": "."},
    "de": {"id": "ID", "grade": "Bewertung", "modified": "Zuletzt geändert (Bewertung)",
           "feedback": "Feedback als Kommentar", "decsep": ","},
}
WHEN = {"en": "Tuesday, 2 December 2025, 10:37 AM", "de": "Dienstag, 2. Dezember 2025, 10:37"}


def _reports(tmp_path: Path) -> Path:
    """A graded course's reports folder: three Moodle students (one with every point), one plain file."""
    out = tmp_path / "reports"
    out.mkdir()
    results = [replace(fx.perfect("anna-koenig-1234"), participant_id="1234"),
               replace(fx.wrong_matrix("ben-maier-1235"), participant_id="1235"),
               replace(fx.missing_function("dora-pohl-77"), participant_id="77"),
               fx.pending("emil")]
    (out / "results.json").write_text(json.dumps(results_document("ex01", results)), encoding="utf-8")
    moodle = {"anna-koenig-1234": {"name": "Anna König", "participant": "1234", "group": ""},
              "ben-maier-1235": {"name": "Ben Maier", "participant": "1235", "group": ""},
              "dora-pohl-77": {"name": "Dora Pohl", "participant": "77", "group": ""}}
    (out / "moodle.json").write_text(json.dumps(moodle), encoding="utf-8")
    return out


def _rows(language: str, maximum: str) -> list[list[str]]:
    hidden = PARTICIPANT[language]
    status = "Submitted for grading" if language == "en" else "Zur Bewertung abgegeben"
    yes = "Yes" if language == "en" else "Ja"
    return [
        [f"{hidden}1234", "Anna König", "anna@uni.example", status, "", maximum, yes, WHEN[language], "", "-", ""],
        [f"{hidden}1235", "Ben Maier", "ben@uni.example", status, "", maximum, yes, WHEN[language], "", WHEN[language],
         ""],
        [f"{hidden}1300", "Cem Yıldız", "cem@uni.example", "No submission", "", maximum, yes, "-", "", "-", ""],
        [f"{hidden}77", "Dora Pohl", "dora@uni.example", status, "", maximum, yes, WHEN[language], "", "-", ""],
    ]


def moodle_import(data: bytes, language: str) -> dict[str, dict]:
    """The filled worksheet as Moodle's offline-grading importer sees it: participant id -> row."""
    strings = STRINGS[language]
    text = data.decode("utf-8")
    text = text[1:] if text.startswith("\ufeff") else text  # csv_import_reader trims the BOM
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    grade, ident, modified = header.index(strings["grade"]), header.index(strings["id"]), header.index(strings["modified"])
    feedback = header.index(strings["feedback"])
    maximum = header.index(HEADERS[language][5])
    imported = {}
    for row in rows[1:]:
        participant = row[ident][len(PARTICIPANT[language]):]  # substr($idstr, strlen(hiddenuser))
        value = row[grade]
        if value == "":
            continue  # "grade has no value": skipped
        number = float(value.replace(strings["decsep"], "."))  # unformat_float
        top = float(row[maximum].replace(strings["decsep"], "."))
        assert 0 <= number <= top, f"Moodle would skip {row[ident]}: grade {value} outside 0..{row[maximum]}"
        imported[participant] = {"grade": number, "feedback": row[feedback], "modified": row[modified]}
    return imported


@pytest.mark.parametrize("language, maximum", [("en", "10.00"), ("de", "20,00")])
def test_fill_a_downloaded_worksheet(tmp_path, language, maximum):
    out = _reports(tmp_path)
    downloaded = tmp_path / f"Kurs-Aufgabe 1-{language}.csv"
    original = worksheet_bytes(_rows(language, maximum), language)
    downloaded.write_bytes(original)
    report = fill_worksheet(downloaded, out)
    assert report.path.parent == out and report.filled == 3 and report.left_empty == 1
    assert report.german == (language == "de")
    assert report.unmatched == ["emil: not from a Moodle download, so it has no participant id (grade the Moodle "
                                "zip, or enter this grade by hand)"]
    filled = report.path.read_bytes()
    assert filled.startswith(b"\xef\xbb\xbf") and filled.count(b"\r") == 0
    assert filled.split(b"\n")[0] == original.split(b"\n")[0]  # the header, byte for byte
    assert filled.split(b"\n")[3] == original.split(b"\n")[3]  # the row without a submission, untouched
    imported = moodle_import(filled, language)
    top = float(maximum.replace(",", "."))
    anna, ben, dora = fx.perfect(), fx.wrong_matrix(), fx.missing_function()
    assert imported["1234"]["grade"] == top
    assert imported["1235"]["grade"] == pytest.approx(ben.score / ben.max_score * top, abs=0.005)
    assert imported["77"]["grade"] == pytest.approx(dora.score / dora.max_score * top, abs=0.005)
    assert "1300" not in imported
    if language == "de":
        assert b",00" in filled.split(b"\n")[1] or b",0" in filled.split(b"\n")[1]
    assert imported["1235"]["modified"] == WHEN[language]  # Moodle's own timestamp, kept
    if language == "en":  # strtotime reads Moodle's English format; this is it
        datetime.strptime(WHEN["en"], "%A, %d %B %Y, %I:%M %p")
    feedback = imported["1235"]["feedback"]
    assert feedback.startswith(f"{ben.score:g} of {ben.max_score:g} points.") and "<br>" in feedback
    assert "<" not in feedback.replace("<br>", "")  # student text is escaped for Moodle's HTML
    assert anna.score == anna.max_score


def test_delimiter_quoting_and_line_endings_are_kept(tmp_path):
    out = _reports(tmp_path)
    downloaded = tmp_path / "semicolon.csv"
    downloaded.write_bytes(worksheet_bytes(_rows("de", "10,00"), "de", delimiter=";", bom=False, newline="\r\n"))
    report = fill_worksheet(downloaded, out)
    filled = report.path.read_bytes()
    assert not filled.startswith(b"\xef\xbb\xbf") and filled.count(b"\r\n") == 5
    rows = list(csv.reader(io.StringIO(filled.decode()), delimiter=";"))
    assert rows[0] == HEADERS["de"] and rows[1][4] == "10,00"


def test_feedback_is_escaped_html(tmp_path):
    out = _reports(tmp_path)
    results = json.loads((out / "results.json").read_text())
    ben = results["submissions"][1]
    ben["questions"]["4.2d"]["feedback"] = "<script>alert(1)</script> & more"
    (out / "results.json").write_text(json.dumps(results))
    downloaded = tmp_path / "w.csv"
    downloaded.write_bytes(worksheet_bytes(_rows("en", "10.00"), "en"))
    imported = moodle_import(fill_worksheet(downloaded, out).path.read_bytes(), "en")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in imported["1235"]["feedback"]


def test_students_without_a_row_are_reported(tmp_path):
    out = _reports(tmp_path)
    downloaded = tmp_path / "w.csv"
    downloaded.write_bytes(worksheet_bytes(_rows("en", "10.00")[:2], "en"))
    report = fill_worksheet(downloaded, out)
    assert report.filled == 2
    assert any(line.startswith("Dora Pohl (participant 77): no row in the worksheet") for line in report.unmatched)


def test_team_worksheet_matches_groups(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    team = replace(fx.perfect("team-rocket"), participant_id="")
    (out / "results.json").write_text(json.dumps(results_document("ex01", [team])), encoding="utf-8")
    (out / "moodle.json").write_text(json.dumps({"team-rocket": {"name": "Team Rocket", "participant": "",
                                                                 "group": "Team Rocket"}}))
    header = ["Identifier", "Full name", "Email address", "Status", "Group", "Grade", "Maximum grade",
              "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
    rows = [header, ["Participant 5", "Ann", "a@x", "Submitted", "Team_Rocket", "", "10.00", "Yes", "-", "-", ""],
            ["Participant 6", "Bob", "b@x", "Submitted", "Team_Rocket", "", "10.00", "Yes", "-", "-", ""],
            ["Participant 7", "Cy", "c@x", "No submission", "Default group", "", "10.00", "Yes", "-", "-", ""]]
    downloaded = tmp_path / "team.csv"
    downloaded.write_text("\n".join(",".join(f'"{v}"' if " " in v else v for v in r) for r in rows) + "\n")
    report = fill_worksheet(downloaded, out)
    assert report.filled == 2 and report.left_empty == 1 and not report.unmatched
    filled = list(csv.reader(io.StringIO(report.path.read_text())))
    assert [r[5] for r in filled[1:]] == ["10.00", "10.00", ""]


@pytest.mark.parametrize("content, message", [
    ("Name,Points\nAnna,3\n", "not a Moodle grading worksheet"),
    ("Identifier,Grade,Scale,Last modified (grade)\nParticipant 1,,\"a\nb\",-\n", "graded on a scale"),
])
def test_not_a_worksheet_is_a_clear_error(tmp_path, content, message):
    out = _reports(tmp_path)
    downloaded = tmp_path / "other.csv"
    downloaded.write_text(content)
    with pytest.raises(WorksheetError, match=message):
        fill_worksheet(downloaded, out)


def test_the_command_prints_path_count_and_who_was_not_matched(tmp_path, capsys):
    out = _reports(tmp_path)
    downloaded = tmp_path / "Bewertungen.csv"
    rows = _rows("de", "10,00")
    rows[0][4] = "5,00"  # already graded in Moodle
    downloaded.write_bytes(worksheet_bytes(rows, "de"))
    assert main(["moodle-worksheet", str(downloaded), "--out", str(out)]) == ExitCode.OK
    printed = capsys.readouterr().out
    assert f"filled worksheet: {out / 'Bewertungen-filled.csv'}" in printed
    assert "rows filled: 3; rows left empty (no graded submission): 1" in printed
    assert "not filled: emil: not from a Moodle download" in printed
    assert "ignore modified" in printed
    assert main(["moodle-worksheet", str(downloaded), "--out", str(tmp_path / "nowhere")]) == ExitCode.GRADER_ERROR
    assert "grade the course first" in capsys.readouterr().err


def test_a_worksheet_resaved_by_a_spreadsheet_program(tmp_path):
    """Excel in German saves Windows-1252 with semicolons and CRLF; the filled copy keeps all three."""
    out = _reports(tmp_path)
    rows = [[v.replace("ı", "i") for v in r[:10]] for r in _rows("de", "10,00")]  # no feedback column either
    header = HEADERS["de"][:10]
    text = "\r\n".join(";".join(row) for row in [header, *rows]) + "\r\n"
    downloaded = tmp_path / "excel.csv"
    downloaded.write_bytes(text.encode("cp1252"))
    report = fill_worksheet(downloaded, out)
    assert report.filled == 3 and any("no feedback-comments column" in w for w in report.warnings)
    filled = report.path.read_bytes()
    lines = filled.decode("cp1252").split("\r\n")
    assert lines[0] == ";".join(header) and lines[1].split(";")[4] == "10,00"
    assert "Anna König".encode("cp1252") in filled
    assert filled.split(b"\r\n")[3] == text.encode("cp1252").split(b"\r\n")[3]

"""Moodle archives, built as real zips: layouts, online text, nested zips, and hostile archives."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from grader.course.moodle import extract_moodle, html_to_text, is_moodle_archive, moodle_identities, student_id
from grader.errors import SubmissionError

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _zip(path: Path, entries: dict[str, bytes | str], wrap: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(wrap + name, data)
    return path


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def _nothing_outside(tmp_path: Path, dest: Path, before: set[Path]) -> None:
    """Every new file is under dest."""
    new = _files_under(tmp_path) - before
    assert all(p == dest or dest in p.parents for p in new), sorted(new)


def test_student_id_is_filename_safe_and_readable():
    assert student_id("Jörg Groß", "42") == "joerg-gross-42"
    assert student_id("Zoë Øst / ../etc", "7") == "zoe-ost-etc-7"
    assert student_id("李雷", "8") == "student-8"


def test_folder_layout(tmp_path):
    archive = _zip(tmp_path / "all.zip", {
        "Anna Müller_1234_assignsubmission_file_/exercise-01.ipynb": NOTEBOOK,
        "Anna Müller_1234_assignsubmission_file_/notes.txt": "scratch",
        "Anna Müller_1234_assignsubmission_file_/.ipynb_checkpoints/exercise-01-checkpoint.ipynb": NOTEBOOK,
        "Ben Ng_1235_assignsubmission_file_/solution.py": "ANSWER_2_1 = 'x'",
        "Ben Ng_1235_assignsubmission_file_/sub/other.ipynb": NOTEBOOK,
    })
    assert is_moodle_archive(archive)
    entries = extract_moodle(archive, tmp_path / "out")
    by_student = {e.student: e for e in entries}
    assert set(by_student) == {"anna-mueller-1234", "ben-ng-1235"}
    anna = by_student["anna-mueller-1234"]
    assert (anna.full_name, anna.participant_id, anna.online_text) == ("Anna Müller", "1234", None)
    assert anna.path == (tmp_path / "out/anna-mueller-1234/exercise-01.ipynb").resolve()
    assert anna.path.read_text() == NOTEBOOK
    assert not (tmp_path / "out/anna-mueller-1234/.ipynb_checkpoints").exists()
    assert by_student["ben-ng-1235"].path.name == "other.ipynb"  # a notebook wins over a module
    assert moodle_identities(entries) == {"anna-mueller-1234": ("Participant 1234", "Anna Müller"),
                                          "ben-ng-1235": ("Participant 1235", "Ben Ng")}


def test_flat_layout_and_a_wrapping_folder(tmp_path):
    archive = _zip(tmp_path / "flat.zip", {
        "Clara Weiß_77_assignsubmission_file_ex1.py": "x = 1",
        "Clara Weiß_77_assignsubmission_file_ex1.ipynb": NOTEBOOK,
        "David O'Neil_78_assignsubmission_file_solution.py": "y = 2",
    }, wrap="MNLP-Exercise 1-123/")
    entries = extract_moodle(archive, tmp_path / "out")
    assert [(e.student, e.path.name) for e in entries] == [("clara-weiss-77", "ex1.ipynb"),
                                                          ("david-o-neil-78", "solution.py")]
    assert entries[1].full_name == "David O'Neil"


def test_online_text(tmp_path):
    archive = _zip(tmp_path / "text.zip", {
        "Eva Roth_90_assignsubmission_onlinetext_/onlinetext.html":
            "<p>PEFT keeps the model <b>frozen</b>.</p><p>Only&nbsp;adapters train.<script>alert(1)</script></p>",
        "Eva Roth_90_assignsubmission_file_/ex.ipynb": NOTEBOOK,
        "Finn Lo_91_assignsubmission_onlinetext_/onlinetext.html": "<p>Just text</p>",
    })
    entries = {e.student: e for e in extract_moodle(archive, tmp_path / "out")}
    assert entries["eva-roth-90"].online_text == "PEFT keeps the model frozen.\n\nOnly adapters train."
    assert entries["eva-roth-90"].path.name == "ex.ipynb"
    assert entries["finn-lo-91"].online_text == "Just text"
    assert entries["finn-lo-91"].path.name == "onlinetext.html"  # nothing else handed in


def test_html_to_text_drops_tags_and_keeps_paragraphs():
    assert html_to_text("<div>a<br>b</div><style>x{}</style><ul><li>c</li></ul>") == "a\nb\n\nc"


def test_a_zip_handed_in_is_unpacked(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("project/exercise.ipynb", NOTEBOOK)
        archive.writestr("../escape.py", "bad")  # skipped, never written
    archive = _zip(tmp_path / "nested.zip", {"Gül Ak_5_assignsubmission_file_/handin.zip": inner.getvalue()})
    before = _files_under(tmp_path)
    [entry] = extract_moodle(archive, tmp_path / "out")
    assert entry.path.name == "exercise.ipynb" and entry.path.read_text() == NOTEBOOK
    assert (tmp_path / "out").resolve() in entry.path.parents
    _nothing_outside(tmp_path, (tmp_path / "out").resolve(), before)
    assert not list(tmp_path.rglob("escape.py"))


def test_a_broken_zip_handed_in_costs_only_that_student(tmp_path):
    archive = _zip(tmp_path / "nested.zip", {
        "Hao Li_6_assignsubmission_file_/handin.zip": b"PK\x03\x04 this is not really a zip",
        "Ida Berg_7_assignsubmission_file_/ex.ipynb": NOTEBOOK,
    })
    entries = {e.student: e for e in extract_moodle(archive, tmp_path / "out")}
    assert entries["hao-li-6"].path.name == "handin.zip"  # the pipeline reports it as that student's problem
    assert entries["ida-berg-7"].path.name == "ex.ipynb"


@pytest.mark.parametrize("name, why", [
    ("../evil.py", "climbs out"),
    ("Jo Do_8_assignsubmission_file_/../../evil.py", "climbs out"),
    ("/abs.py", "absolute path"),
    ("C:/Windows/evil.py", "absolute path"),
    ("..\\..\\evil.py", "climbs out"),
])
def test_path_traversal_is_refused(tmp_path, name, why):
    archive = _zip(tmp_path / "evil.zip", {"Jo Do_8_assignsubmission_file_/ex.ipynb": NOTEBOOK, name: "import os"})
    before = _files_under(tmp_path)
    with pytest.raises(SubmissionError, match=why) as caught:
        extract_moodle(archive, tmp_path / "out")
    assert "archive was altered" in str(caught.value) and str(archive) in str(caught.value)
    _nothing_outside(tmp_path, tmp_path / "out", before)
    assert not list(tmp_path.parent.glob("evil.py")) and not Path("/abs.py").exists()


def test_symlink_entry_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Jo Do_8_assignsubmission_file_/ex.ipynb", NOTEBOOK)
        link = zipfile.ZipInfo("Jo Do_8_assignsubmission_file_/passwd")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(SubmissionError, match="symbolic link"):
        extract_moodle(archive, tmp_path / "out")
    assert not os.path.lexists(tmp_path / "out/jo-do-8/passwd")


def _lying_zip(path: Path, actual: int, declared: int) -> Path:
    """A deflated entry of `actual` zero bytes whose headers claim `declared` bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Kim Su_9_assignsubmission_file_/bomb.ipynb", b"\0" * actual)
    data = bytearray(path.read_bytes())
    real = struct.pack("<I", actual)
    fake = struct.pack("<I", declared)
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    assert data[local + 22:local + 26] == real and data[central + 24:central + 28] == real
    data[local + 22:local + 26] = fake
    data[central + 24:central + 28] = fake
    path.write_bytes(bytes(data))
    return path


def test_zip_bomb_lying_about_its_size(tmp_path):
    archive = _lying_zip(tmp_path / "bomb.zip", actual=20 * 2**20, declared=1000)
    assert archive.stat().st_size < 100_000
    with pytest.raises(SubmissionError, match="zip bomb|corrupt"):
        extract_moodle(archive, tmp_path / "out", max_file_bytes=2**20, max_total_bytes=4 * 2**20)
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written <= 2**20


def test_zip_bomb_declaring_its_size(tmp_path):
    archive = _zip(tmp_path / "big.zip", {"Kim Su_9_assignsubmission_file_/big.ipynb": b"\0" * (3 * 2**20)})
    with pytest.raises(SubmissionError, match="more than the limit of 2 MiB per file"):
        extract_moodle(archive, tmp_path / "out", max_file_bytes=2 * 2**20)
    with pytest.raises(SubmissionError, match="would unpack to 3 MiB, more than the limit of 1 MiB"):
        extract_moodle(archive, tmp_path / "out", max_total_bytes=2**20)
    assert not list((tmp_path / "out").rglob("big.ipynb"))


def test_zip_bomb_of_many_files(tmp_path):
    archive = _zip(tmp_path / "many.zip", {f"Kim Su_9_assignsubmission_file_/f{i}.py": "" for i in range(300)})
    with pytest.raises(SubmissionError, match="holds 300 entries, more than the limit of 100"):
        extract_moodle(archive, tmp_path / "out", max_files=100)


def test_nested_zips_share_the_budget(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.ipynb", b"\0" * (3 * 2**20))
    archive = _zip(tmp_path / "nested.zip", {"Lu Xi_3_assignsubmission_file_/handin.zip": inner.getvalue()})
    [entry] = extract_moodle(archive, tmp_path / "out", max_total_bytes=2**20)
    assert entry.path.name == "handin.zip"  # the inner bomb was refused; that student's file stays the zip
    assert not list((tmp_path / "out").rglob("big.ipynb"))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04garbage" * 10, b"not a zip at all"])
def test_corrupt_archive_gives_a_clear_error(tmp_path, content):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(content)
    with pytest.raises(SubmissionError, match="not a readable zip archive.*download it from Moodle again"):
        extract_moodle(archive, tmp_path / "out")


def test_truncated_archive(tmp_path):
    good = _zip(tmp_path / "good.zip", {"Mo Ra_1_assignsubmission_file_/ex.ipynb": NOTEBOOK * 100})
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(SubmissionError, match="not a readable zip"):
        is_moodle_archive(truncated)


def test_is_moodle_archive(tmp_path):
    assert not is_moodle_archive(_zip(tmp_path / "plain.zip", {"exercise.ipynb": NOTEBOOK}))
    text = tmp_path / "notebook.ipynb"
    text.write_text(NOTEBOOK)
    assert not is_moodle_archive(text)
    assert is_moodle_archive(_zip(tmp_path / "m.zip", {"A B_1_assignsubmission_onlinetext_/onlinetext.html": "x"}))

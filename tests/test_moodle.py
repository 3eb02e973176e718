"""Moodle archives, built as real zips: layouts, online text, nested zips, and hostile archives."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import skip_or_fail
from moodle_fixtures import entry_name, moodle_zip, onlinetext

from grader.course.moodle import (
    extract_moodle,
    html_to_text,
    is_moodle_archive,
    moodle_identities,
    online_answers,
    student_id,
)
from grader.course.sources import collect_sources
from grader.errors import SubmissionError
from grader.submission import load_submission

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
def test_a_tampered_entry_is_skipped_and_reported_and_the_rest_extracted(tmp_path, name, why):
    archive = _zip(tmp_path / "evil.zip", {"Jo Do_8_assignsubmission_file_/ex.ipynb": NOTEBOOK,
                                           "Al Bo_9_assignsubmission_file/ex.ipynb": NOTEBOOK, name: "import os"})
    before = _files_under(tmp_path)
    extraction = extract_moodle(archive, tmp_path / "out")
    assert [e.path.name for e in extraction] == ["ex.ipynb", "ex.ipynb"]  # both students graded
    reported = list(extraction.skipped) + [n for e in extraction for n in e.notes]
    assert len(reported) == 1 and why in reported[0] and repr(name) in reported[0]
    _nothing_outside(tmp_path, (tmp_path / "out").resolve(), before)
    assert not list(tmp_path.parent.glob("evil.py")) and not Path("/abs.py").exists()


def test_a_symlink_entry_is_skipped_and_reported(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Jo Do_8_assignsubmission_file_/ex.ipynb", NOTEBOOK)
        link = zipfile.ZipInfo("Jo Do_8_assignsubmission_file_/passwd")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    [entry] = extract_moodle(archive, tmp_path / "out")
    assert entry.path.name == "ex.ipynb" and "symbolic link" in " ".join(entry.notes)
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
    [entry] = extract_moodle(archive, tmp_path / "out", max_file_bytes=2**20, max_total_bytes=4 * 2**20)
    assert "corrupt" in " ".join(entry.notes) and entry.problem  # the lie is caught: that entry is refused
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


# --------------------------------------------------------------------------- as Moodle's download code names entries


STUDENTS = [("Anna_Lena Graf", 4711), ("Jörg Groß", 4712), ("Zoë O'Neil", 4713)]


@pytest.mark.parametrize("layout", ["4.1", "pre-4.1", "flat"])
def test_every_layout_of_the_download_code(tmp_path, layout):
    files = []
    for name, unique in STUDENTS:
        files.append((entry_name(name, unique, "ex01.ipynb", layout=layout), NOTEBOOK))
        files.append((entry_name(name, unique, "notes.txt", layout=layout), "scratch"))
    files.append((entry_name("Jörg Groß", 4712, "helper.py", layout=layout, filepath="/lib/"), "x = 1"))
    assert files[0][0] == {"4.1": "Anna Lena Graf_4711_assignsubmission_file/ex01.ipynb",
                           "pre-4.1": "Anna Lena Graf_4711_assignsubmission_file_/ex01.ipynb",
                           "flat": "Anna Lena Graf_4711_assignsubmission_file_ex01.ipynb"}[layout]
    extraction = extract_moodle(moodle_zip(tmp_path / "all.zip", files), tmp_path / "out")
    got = {(e.student, e.full_name, e.participant_id, e.path.name) for e in extraction}
    assert got == {("anna-lena-graf-4711", "Anna Lena Graf", "4711", "ex01.ipynb"),
                   ("joerg-gross-4712", "Jörg Groß", "4712", "ex01.ipynb"),
                   ("zoe-o-neil-4713", "Zoë O'Neil", "4713", "ex01.ipynb")}
    assert not extraction.teams and not extraction.skipped
    assert moodle_identities(extraction)["joerg-gross-4712"] == ("Participant 4712", "Jörg Groß")


def test_blind_marking(tmp_path):
    files = [(entry_name("Participant", 90001, "ex01.ipynb"), NOTEBOOK),
             (entry_name("Participant", 90002, "ex01.ipynb"), NOTEBOOK)]
    extraction = extract_moodle(moodle_zip(tmp_path / "blind.zip", files), tmp_path / "out")
    assert [(e.student, e.participant_id) for e in extraction] == [("participant-90001", "90001"),
                                                                   ("participant-90002", "90002")]
    assert moodle_identities(extraction) == {"participant-90001": ("Participant 90001", "Participant"),
                                             "participant-90002": ("Participant 90002", "Participant")}


def test_team_submissions_never_give_a_group_id_as_a_participant(tmp_path):
    files = [(entry_name("Team_Rocket", 42, "ex01.ipynb"), NOTEBOOK),  # group "Team_Rocket", id 42
             (entry_name("Default group", None, "ex01.ipynb"), NOTEBOOK)]
    assert files[1][0] == "Default group_assignsubmission_file/ex01.ipynb"
    extraction = extract_moodle(moodle_zip(tmp_path / "team.zip", files), tmp_path / "out")
    assert extraction.teams
    by = {e.full_name: e for e in extraction}
    assert by["Team Rocket"].group_id == "42" and by["Team Rocket"].participant_id == ""
    assert by["Default group"].group_id == "" and by["Default group"].participant_id == ""
    assert moodle_identities(extraction) == {}  # the generated worksheet gets no "Participant 42"


def _notebook_with_answer(question: str | None) -> str:
    cells = [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [], "execution_count": None}]
    if question:
        cells.append({"cell_type": "markdown", "metadata": {}, "source": f"### Answer {question}\n\nMine."})
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_online_text_answers_are_merged_where_the_notebook_has_none(tmp_path):
    text = onlinetext("<h3>Answer 2.1</h3><p>Adapters train, the model stays frozen.</p>"
                      "<p>### Answer 2.2</p><p>Scaling keeps the softmax away from saturation.</p>"
                      "<h3>Answer 3.1</h3><p>From the online text.</p>")
    files = [(entry_name("Eva Roth", 90, "ex01.ipynb"), _notebook_with_answer("3.1")),
             (entry_name("Eva Roth", 90, "onlinetext.html", plugin="onlinetext"), text),
             (entry_name("Finn Lo", 91, "onlinetext.html", plugin="onlinetext"), text)]
    assert files[1][0] == "Eva Roth_90_assignsubmission_onlinetext/onlinetext.html"
    entries = {e.student: e for e in extract_moodle(moodle_zip(tmp_path / "text.zip", files), tmp_path / "out")}
    eva = load_submission(entries["eva-roth-90"].path, ("2.1", "2.2", "3.1"))
    assert eva.answers == {"2.1": "Adapters train, the model stays frozen.",
                           "2.2": "Scaling keeps the softmax away from saturation.", "3.1": "Mine."}
    assert eva.code.strip() == "x = 1"
    assert "answers to 2.1, 2.2 taken from the online text" in entries["eva-roth-90"].notes
    finn = load_submission(entries["finn-lo-91"].path, ("2.1", "2.2", "3.1"))  # online text only
    assert set(finn.answers) == {"2.1", "2.2", "3.1"} and not finn.cells


def test_online_answers_markers():
    assert online_answers("<h2>Answer 4.3d:</h2><p>a</p><p>b</p><h4>Other</h4>") == {"4.3d": "a\n\nb"}
    assert online_answers("<p>no answers here</p>") == {}


def test_several_notebooks_the_template_name_wins_else_the_newest(tmp_path):
    early, late = (2026, 11, 1, 9, 0, 0), (2026, 11, 2, 9, 0, 0)
    files = [(entry_name("Ann Ax", 1, "ex01.ipynb"), NOTEBOOK), (entry_name("Ann Ax", 1, "copy.ipynb"), NOTEBOOK),
             (entry_name("Bo Bu", 2, "draft.ipynb"), NOTEBOOK), (entry_name("Bo Bu", 2, "final.ipynb"), NOTEBOOK)]
    dates = {files[0][0]: early, files[1][0]: late, files[2][0]: early, files[3][0]: late}
    archive = moodle_zip(tmp_path / "several.zip", files, dates=dates)
    entries = {e.student: e for e in extract_moodle(archive, tmp_path / "out", template_name="ex01.ipynb")}
    assert entries["ann-ax-1"].path.name == "ex01.ipynb"
    assert "graded ex01.ipynb, the one named like the assignment's template" in entries["ann-ax-1"].notes[0]
    assert entries["bo-bu-2"].path.name == "final.ipynb"
    assert "graded final.ipynb, the newest (2026-11-02 09:00)" in entries["bo-bu-2"].notes[0]


def _encrypted_zip(tmp_path: Path, members: dict[str, str]) -> bytes:
    if not shutil.which("zip"):
        skip_or_fail("the zip command is missing (apt-get install zip)")
    folder = tmp_path / "plain"
    for name, text in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    target = tmp_path / "encrypted.zip"
    subprocess.run(["zip", "-q", "-P", "secret", "-r", str(target), *members], cwd=folder, check=True)
    return target.read_bytes()


def _broken_deflate(data: bytes, name: str) -> bytes:
    """The archive with the compressed bytes of one member overwritten (headers intact)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
    broken = bytearray(data)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    local_extra = struct.unpack("<H", broken[info.header_offset + 28:info.header_offset + 30])[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + local_extra
    broken[start:start + info.compress_size] = bytes([0xFF]) * info.compress_size
    return bytes(broken)


def test_encrypted_and_corrupt_members_cost_only_that_entry(tmp_path):
    encrypted = _encrypted_zip(tmp_path, {"work/ex01.ipynb": NOTEBOOK})
    good = entry_name("Ida Berg", 7, "ex01.ipynb")
    files = [(good, NOTEBOOK), (entry_name("Hao Li", 6, "handin.zip"), encrypted),
             (entry_name("Kai Ng", 8, "ex01.ipynb"), NOTEBOOK * 20), (entry_name("Kai Ng", 8, "solution.py"), "x = 1"),
             (entry_name("Lea Uhl", 9, "ex01.ipynb"), NOTEBOOK * 20)]
    data = moodle_zip(tmp_path / "m.zip", files).read_bytes()
    for member in (files[2][0], files[4][0]):
        data = _broken_deflate(data, member)
    archive = tmp_path / "broken-members.zip"
    archive.write_bytes(data)
    entries = {e.student: e for e in extract_moodle(archive, tmp_path / "out")}
    assert entries["ida-berg-7"].path.name == "ex01.ipynb" and not entries["ida-berg-7"].notes
    assert "encrypted" in " ".join(entries["hao-li-6"].notes)  # the nested zip's member
    assert entries["kai-ng-8"].path.name == "solution.py"  # the notebook was corrupt: the module is graded
    assert "is corrupt" in " ".join(entries["kai-ng-8"].notes)
    assert entries["lea-uhl-9"].problem and "is corrupt" in entries["lea-uhl-9"].problem


def test_a_single_zip_submission_with_encrypted_or_corrupt_members(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "mia.zip").write_bytes(_encrypted_zip(tmp_path, {"mia/ex01.ipynb": NOTEBOOK}))
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("noa/ex01.ipynb", NOTEBOOK * 20)
        zf.writestr("noa/extra.py", "y = 2")
    (folder / "noa.zip").write_bytes(_broken_deflate(plain.getvalue(), "noa/ex01.ipynb"))
    (folder / "ola.ipynb").write_text(NOTEBOOK)
    sources = collect_sources([folder], tmp_path / "scratch", template_name="ex01.ipynb")
    assert [s for _, s in sources.pairs] == ["mia", "noa", "ola"]
    assert "encrypted" in sources.problems["mia"]
    paths = dict((s, p) for p, s in sources.pairs)
    assert paths["noa"].name == "extra.py" and "is corrupt" in sources.labels["noa"]
    assert paths["ola"] == folder / "ola.ipynb"


def test_a_zip_holding_a_file_and_a_folder_of_the_same_name(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("work", "a file called work")
        zf.writestr("work/ex01.ipynb", NOTEBOOK)
        zf.writestr("other/ex01.ipynb", NOTEBOOK)
    archive = moodle_zip(tmp_path / "clash.zip", [(entry_name("Pia Qu", 3, "handin.zip"), inner.getvalue())])
    [entry] = extract_moodle(archive, tmp_path / "out")
    assert entry.path.name == "ex01.ipynb" and entry.path.parent.name == "other"
    assert "'work/ex01.ipynb'" in " ".join(entry.notes) and "also uses for a file" in " ".join(entry.notes)


def test_a_file_name_longer_than_the_file_system_allows(tmp_path):
    long_name = "ä" * 150 + ".ipynb"  # 306 bytes: more than the 255 a Linux file name may have
    archive = moodle_zip(tmp_path / "long.zip", [(entry_name("Rui Sa", 4, long_name), NOTEBOOK)])
    [entry] = extract_moodle(archive, tmp_path / "out")
    assert entry.path.suffix == ".ipynb" and len(entry.path.name.encode()) <= 200
    assert entry.path.read_text() == NOTEBOOK and not entry.notes


def test_several_notebooks_in_a_folder_follow_the_same_rule(tmp_path):
    folder = tmp_path / "subs" / "sam"
    folder.mkdir(parents=True)
    for name, when in (("ex01.ipynb", 1_000_000), ("later.ipynb", 2_000_000)):
        (folder / name).write_text(NOTEBOOK)
        os.utime(folder / name, (when, when))
    sources = collect_sources([tmp_path / "subs"], tmp_path / "scratch", template_name="ex01.ipynb")
    assert sources.pairs == [(folder / "ex01.ipynb", "sam")]
    assert "named like the assignment's template" in sources.labels["sam"]
    newest = collect_sources([tmp_path / "subs"], tmp_path / "scratch2", template_name="ex02.ipynb")
    assert newest.pairs == [(folder / "later.ipynb", "sam")] and "the newest" in newest.labels["sam"]


# --------------------------------------------------------------------------- a whole course from a Moodle 4.1+ download

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def namespaces():
    from grader.sandbox import available_isolation

    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")


def test_a_moodle_41_download_graded_end_to_end(tmp_path, namespaces, capsys, monkeypatch):
    from grader.cli import ExitCode, main

    monkeypatch.chdir(ROOT)
    alice = (ROOT / "submissions" / "alice.ipynb").read_bytes()
    files = [(entry_name("Alice Example", 1001, "ex01.ipynb"), alice),
             (entry_name("Bob Beispiel", 1002, "solution.py"), (ROOT / "submissions" / "bob.py").read_text()),
             (entry_name("Cleo Dorn", 1003, "ex01.ipynb"), NOTEBOOK * 50),
             (entry_name("Dan Eck", 1004, "draft.ipynb"), NOTEBOOK), (entry_name("Dan Eck", 1004, "ex01.ipynb"), alice),
             ("../evil.py", "import os")]
    data = moodle_zip(tmp_path / "m.zip", files).read_bytes()
    archive = tmp_path / "Course-Exercise 1-42.zip"
    archive.write_bytes(_broken_deflate(data, files[2][0]))
    out = tmp_path / "out"
    assert main(["grade", str(archive), "--out", str(out)]) == ExitCode.OK
    printed = capsys.readouterr().out
    assert "warning:" in printed and "skipped entry '../evil.py'" in printed and "climbs out" in printed
    document = json.loads((out / "results.json").read_text())
    by = {s["student"]: s for s in document["submissions"]}
    assert {s: r["participant_id"] for s, r in by.items()} == {
        "alice-example-1001": "1001", "bob-beispiel-1002": "1002", "cleo-dorn-1003": "1003", "dan-eck-1004": "1004"}
    assert by["dan-eck-1004"]["questions"]["4.2d"]["status"] == "passed"  # ex01.ipynb, not draft.ipynb
    page = (out / "dan-eck-1004.html").read_text()
    assert "graded ex01.ipynb, the one named like the assignment" in page  # the choice, said in the report
    assert by["alice-example-1001"]["questions"]["4.2d"]["status"] == "passed"
    assert "is corrupt" in by["cleo-dorn-1003"]["error"] and "Cleo Dorn" in by["cleo-dorn-1003"]["file"]

    def worksheet() -> dict[str, dict]:
        import csv

        rows = csv.DictReader(io.StringIO((out / "moodle_grading_worksheet.csv").read_text(encoding="utf-8")))
        return {row["Identifier"]: row for row in rows}

    before = worksheet()["Participant 1001"]["Grade"]
    scores = tmp_path / "scores.csv"
    scores.write_text("student,question,accepted\nalice-example-1001,2.1,yes\nalice-example-1001,2.2,yes\n")
    assert main(["import-scores", str(scores), "--out", str(out)]) == ExitCode.OK
    after = worksheet()["Participant 1001"]["Grade"]
    assert float(after) > float(before)  # the generated worksheet follows the manual decisions
    assert json.loads((out / "results.json").read_text())["submissions"][0]["participant_id"] == "1001"


def test_grader_check_on_a_zip_with_an_encrypted_or_corrupt_member(tmp_path):
    from grader.errors import SubmissionError as Refused
    from grader.submission import load_submission as load

    encrypted = tmp_path / "enc.zip"
    encrypted.write_bytes(_encrypted_zip(tmp_path, {"ex01.ipynb": NOTEBOOK}))
    with pytest.raises(Refused, match="not a readable zip"):
        load(encrypted)
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ex01.ipynb", NOTEBOOK * 20)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(_broken_deflate(plain.getvalue(), "ex01.ipynb"))
    with pytest.raises(Refused, match="not a readable zip"):
        load(broken)

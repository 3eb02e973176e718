"""Moodle in: reading "Download all submissions" archives safely.

Moodle's download code (``mod/assign/classes/downloader.php``) names every entry after a prefix: the
student's full name with ``_`` replaced by spaces, then ``_<participant id>`` (the id the grading
worksheet calls ``Participant <id>``). With team submissions the prefix is the group's name and the
*group's* id, and the "Default group" has no id at all. Under blind marking the name is "Participant".
Then comes the plugin:

- Moodle 4.1+, in folders (the default): ``<prefix>_assignsubmission_file/<path>`` and
  ``<prefix>_assignsubmission_onlinetext/onlinetext.html``;
- before 4.1, in folders: the same with a trailing ``_`` (``<prefix>_assignsubmission_file_/<path>``);
- "download submissions in folders" off (any version): flat ``<prefix>_assignsubmission_file_<name>``.

An archive re-zipped by hand may wrap all of it in one more folder; that is understood too.

The archive is untrusted input (and so is any zip a student handed in inside it). Like ``unzip``,
extraction skips an entry it must not write -- an absolute path, ``..``, a symbolic link, an encrypted
or corrupt member, a name clash between a file and a folder -- reports it, and goes on with the rest:
a problem costs that entry (or, when it was the student's only file, that student), never the batch.
Limits (number of entries, bytes per file and in total) are checked against the sizes the archive
declares *and* against the bytes actually produced while streaming (a zip bomb lies about the first);
a whole archive over a limit is refused.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import re
import shutil
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import SubmissionError

_ENTRY = re.compile(
    r"^(?P<name>.+?)(?:_(?P<id>\d+))?_assignsubmission_(?P<plugin>file|onlinetext)(?:_(?P<rest>.*))?$")
_SUBMISSION_SUFFIXES = (".ipynb", ".py")
_CHUNK = 1 << 16
_MAX_NAME_BYTES = 200  # a path component longer than this is shortened (file systems allow 255 bytes)
_ANSWER_LINE = re.compile(r"^\s*#{1,6}\s*answer\s+([0-9]+(?:\.[0-9]+)*[a-z]?)\b[\s:.\-–—]*(.*)$", re.I)
_MERGED_FOLDER = "_merged"


@dataclass(frozen=True)
class MoodleEntry:
    """One student's (or, with team submissions, one group's) submission as found in the archive."""

    student: str  # filename-safe id from name and id, e.g. "max-mueller-12345"
    full_name: str  # the student's name, "Participant" under blind marking, or the group's name
    participant_id: str  # the worksheet's "Participant <id>"; "" for a group (a group id is no participant)
    path: Path  # what is graded: the chosen notebook or module (answers from online text merged in)
    online_text: str | None  # the online-text submission as plain text, when there is one
    group_id: str = ""  # team submissions: the group's id ("" for the "Default group")
    notes: tuple[str, ...] = ()  # what the report should say: skipped entries, which file was chosen
    problem: str | None = None  # why nothing could be graded (every file of this student was unusable)

    @property
    def is_group(self) -> bool:
        return bool(self.group_id) or not self.participant_id


@dataclass
class Extraction:
    """What :func:`extract_moodle` found: the submissions and the archive's skipped entries."""

    entries: list[MoodleEntry]
    skipped: list[str] = field(default_factory=list)  # entries that belong to no submission, and why
    teams: bool = False  # team submissions (the archive has a group without an id)

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> MoodleEntry:
        return self.entries[index]


def student_id(full_name: str, participant_id: str) -> str:
    """A filename-safe, readable id: ``Jörg Groß`` + 42 -> ``joerg-gross-42``."""
    folds: dict[str, str | int | None] = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ø": "o", "æ": "ae", "ł": "l",
                                          "đ": "d", "ı": "i"}
    text = full_name.casefold().translate(str.maketrans(folds))
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60] or "student"
    return f"{slug}-{participant_id}" if participant_id else slug


def is_moodle_archive(zip_path: Path) -> bool:
    """True when the file is a zip with Moodle submission entries; False for anything not a zip.

    A file that starts like a zip but cannot be read raises :class:`SubmissionError` saying so, rather
    than quietly being treated as something else.
    """
    zip_path = Path(zip_path)
    try:
        with open(zip_path, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04" and not zipfile.is_zipfile(zip_path):
                return False
    except OSError as error:
        raise SubmissionError(f"cannot read the file ({error.strerror})", path=zip_path) from None
    with _open_zip(zip_path) as archive:
        return any(_split(info.filename) for info in archive.infolist())


def _open_zip(zip_path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise SubmissionError(f"not a readable zip archive ({error}); download it from Moodle again",
                              path=zip_path) from None


def _split(name: str) -> tuple[str, str, str, str] | None:
    """(name, id or "", plugin, path inside the submission) or None for other entries."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    for depth, part in enumerate(parts[:2]):  # the submission's part, possibly inside one wrapping folder
        match = _ENTRY.match(part)
        if not match:
            continue
        inner = "/".join(parts[depth + 1:])
        rest = match["rest"] or ""
        if rest and inner:
            inner = f"{rest}/{inner}"
        elif rest:
            inner = rest  # flat variant: the file name follows the marker
        return match["name"].strip(), match["id"] or "", match["plugin"], inner
    return None


def unsafe_entry(name: str) -> str | None:
    """Why an entry name must not be extracted, or None when it is safe."""
    if "\x00" in name:
        return "contains a NUL byte"
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return "is an absolute path"
    if any(part == ".." for part in normalised.split("/")):
        return "climbs out of the folder with '..'"
    return None


def _is_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


class _EntryProblem(Exception):
    """One entry could not be extracted; the others can."""


class _Budget:
    """The limits shared by the archive and the zips nested in it."""

    def __init__(self, max_files: int, max_total_bytes: int, max_file_bytes: int):
        self.max_files, self.max_total, self.max_file = max_files, max_total_bytes, max_file_bytes
        self.files = 0
        self.total = 0

    def check_declared(self, archive: zipfile.ZipFile, where: Path) -> None:
        infos = archive.infolist()
        if self.files + len(infos) > self.max_files:
            raise SubmissionError(f"holds {len(infos)} entries, more than the limit of {self.max_files}; "
                                  "refusing it as a possible zip bomb", path=where)
        declared = sum(i.file_size for i in infos)
        if self.total + declared > self.max_total:
            raise SubmissionError(f"would unpack to {declared / 2**20:.0f} MiB, more than the limit of "
                                  f"{self.max_total / 2**20:.0f} MiB; refusing it as a possible zip bomb", path=where)
        for info in infos:
            if info.file_size > self.max_file:
                raise SubmissionError(f"entry {info.filename!r} would unpack to {info.file_size / 2**20:.0f} MiB, "
                                      f"more than the limit of {self.max_file / 2**20:.0f} MiB per file", path=where)

    def copy(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, where: Path) -> None:
        """Stream one entry to target, counting the bytes actually produced.

        A lie about the size refuses the whole archive (SubmissionError); an entry that cannot be
        read or written (encrypted, corrupt, a name clash) raises :class:`_EntryProblem`.
        """
        self.files += 1
        written = 0
        if info.flag_bits & 0x1:
            raise _EntryProblem("is encrypted (password-protected); grader does not guess passwords")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                raise _EntryProblem("has the name of a folder the archive also holds")
        except (NotADirectoryError, FileExistsError):
            raise _EntryProblem("would go into a folder whose name the archive also uses for a file") from None
        try:
            with archive.open(info) as source, open(target, "wb") as sink:
                while chunk := source.read(_CHUNK):
                    written += len(chunk)
                    self.total += len(chunk)
                    if written > max(info.file_size, 0) or written > self.max_file or self.total > self.max_total:
                        raise SubmissionError(
                            f"entry {info.filename!r} unpacks to more bytes than it declares or than the limits "
                            "allow; refusing it as a possible zip bomb", path=where)
                    sink.write(chunk)
        except SubmissionError:
            target.unlink(missing_ok=True)
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError) as error:
            _remove_file(target)
            raise _EntryProblem(f"is corrupt or cannot be unpacked ({error})") from None
        except OSError as error:
            _remove_file(target)
            raise _EntryProblem(f"cannot be written here ({error.strerror or error})") from None


def _remove_file(path: Path) -> None:
    try:
        if path.is_file() and not path.is_symlink():
            path.unlink()
    except OSError:
        pass


def extract_moodle(zip_path: Path, dest: Path, *, template_name: str | None = None, max_files: int = 5000,
                   max_total_bytes: int = 512 * 2**20, max_file_bytes: int = 64 * 2**20) -> Extraction:
    """Extract a Moodle archive into ``dest/<student>/`` and choose each student's submission file.

    ``template_name`` (e.g. ``ex01.ipynb``) decides between several notebooks: the one of that name,
    else the newest (see :func:`choose_file`). An unreadable archive or one over a limit raises
    :class:`SubmissionError`; a bad entry is skipped and reported (in the student's ``notes``, or in
    ``skipped`` when it belongs to no student). Nothing is ever written outside ``dest``.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    budget = _Budget(max_files, max_total_bytes, max_file_bytes)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    found: dict[str, dict] = {}
    skipped: list[str] = []
    with _open_zip(zip_path) as archive:
        budget.check_declared(archive, zip_path)
        for info in archive.infolist():
            split = _split(info.filename)
            problem = unsafe_entry(info.filename) or ("is a symbolic link" if _is_link(info) else None)
            if problem:
                message = f"skipped entry {info.filename!r}: it {problem} (Moodle never writes such entries)"
                if split is None:
                    skipped.append(message)
                else:
                    _slot(found, split)["notes"].append(message)
                continue
            if split is None or info.is_dir():
                continue
            name, number, plugin, inner = split
            if not inner or _ignored(inner):
                continue
            slot = _slot(found, split)
            target = _inside(root, root / slot["sid"] / safe_relative(inner))
            try:
                budget.copy(archive, info, target, zip_path)
            except _EntryProblem as error:
                slot["notes"].append(f"skipped entry {info.filename!r}: it {error}")
                continue
            if plugin == "onlinetext" and target.suffix.lower() in (".html", ".htm"):
                slot["html"] = target
            else:
                slot["files"].append((target, info.date_time))
    teams = any(not slot["id"] for slot in found.values())
    entries = [_entry(slot, root, budget, template_name, teams) for _, slot in sorted(found.items())]
    return Extraction(entries, skipped, teams)


def _slot(found: dict[str, dict], split: tuple[str, str, str, str]) -> dict:
    name, number = split[0], split[1]
    sid = student_id(name, number)
    return found.setdefault(sid, {"sid": sid, "name": name, "id": number, "files": [], "html": None, "notes": []})


def _entry(slot: dict, root: Path, budget: _Budget, template_name: str | None, teams: bool) -> MoodleEntry:
    sid, notes = slot["sid"], list(slot["notes"])
    files = slot["files"]
    chosen, why = choose_file(files, template_name)
    if why:
        notes.append(why)
    if chosen is not None and chosen.suffix.lower() == ".zip":
        inner, inner_notes = unpack_nested(chosen, root / sid / "_unpacked", root, budget, template_name)
        notes += inner_notes
        chosen = inner or chosen
    text = html_markup = None
    if slot["html"] is not None:
        html_markup = slot["html"].read_text(encoding="utf-8", errors="replace")
        text = html_to_text(html_markup)
    path, problem = chosen, None
    answers = online_answers(html_markup) if html_markup else {}
    if answers and (chosen is None or chosen.suffix.lower() in _SUBMISSION_SUFFIXES):
        path, merged_note = merge_online_answers(chosen, answers, root / sid / _MERGED_FOLDER)
        if merged_note:
            notes.append(merged_note)
    if path is None:
        path = slot["html"] or root / sid
        if not files and slot["html"] is None and slot["notes"]:
            problem = "nothing in the Moodle download could be used: " + "; ".join(slot["notes"])
    group_id = slot["id"] if teams else ""
    participant = "" if teams else slot["id"]
    return MoodleEntry(sid, slot["name"], participant, path, text, group_id, tuple(notes), problem)


def moodle_identities(entries) -> dict[str, tuple[str, str]]:
    """student -> (worksheet identifier ``Participant <id>``, full name), for the grading worksheet.

    Groups (team submissions) have no participant id and are left out: a group id is not a participant.
    """
    return {e.student: (f"Participant {e.participant_id}", e.full_name) for e in entries if e.participant_id}


def _ignored(inner: str) -> bool:
    parts = inner.split("/")
    return any(p == "__MACOSX" or p == ".ipynb_checkpoints" or p.startswith("._") or p == ".DS_Store" for p in parts)


def safe_relative(inner: str) -> PurePosixPath:
    """A relative path from an entry name: odd characters replaced, every part short enough to write."""
    parts = [_short(re.sub(r"[^\w.\- ]", "_", p).strip(" .") or "_") for p in inner.split("/") if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath("_")


def _short(part: str) -> str:
    """A name the file system accepts: over 200 bytes, cut (keeping the suffix) and made unique by a hash."""
    if len(part.encode()) <= _MAX_NAME_BYTES:
        return part
    suffix = PurePosixPath(part).suffix
    suffix = suffix if len(suffix.encode()) <= 20 else ""
    digest = hashlib.sha256(part.encode()).hexdigest()[:10]
    stem = part.encode()[: _MAX_NAME_BYTES - len(suffix.encode()) - 12].decode(errors="ignore")
    return f"{stem}-{digest}{suffix}"


def _inside(root: Path, target: Path) -> Path:
    resolved = target.resolve()
    if not resolved.is_relative_to(root):  # belt and braces: names were checked already
        raise SubmissionError(f"refusing to write {target} outside {root}")
    return resolved


# --------------------------------------------------------------------------- which file is graded


def choose_file(files: list[tuple[Path, tuple]], template_name: str | None = None) -> tuple[Path | None, str]:
    """The file to grade among a submission's files, and a sentence saying why when there was a choice.

    The rule: notebooks before modules before zips. Among several of the same kind, the one named like
    the assignment's template (e.g. ``ex01.ipynb``), else the newest (by the time stored for it), else
    the first by name. ``files`` holds (path, (year, month, day, hour, minute, second)) pairs.
    """
    for suffixes in ((".ipynb",), (".py",), (".zip",)):
        pool = [(p, t) for p, t in files if p.suffix.lower() in suffixes]
        if not pool:
            continue
        if len(pool) == 1:
            return pool[0][0], ""
        names = ", ".join(sorted(p.name for p, _ in pool)[:5])
        if template_name:
            stem = PurePosixPath(template_name).stem.casefold()
            named = [p for p, _ in pool if p.stem.casefold() == stem]
            if named:
                chosen = min(named, key=lambda p: (len(p.parts), str(p)))
                return chosen, (f"{len(pool)} candidate files ({names}): graded {chosen.name}, the one named "
                                "like the assignment's template")
        newest = max(t for _, t in pool)
        chosen = sorted((p for p, t in pool if t == newest), key=lambda p: (len(p.parts), str(p)))[0]
        return chosen, (f"{len(pool)} candidate files ({names}): graded {chosen.name}, the newest "
                        f"({_when(newest)}); none is named {template_name or 'like the template'}")
    return None, ""


def _when(stamp: tuple) -> str:
    try:
        return datetime(*stamp[:6]).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return "time unknown"


def unpack_nested(zip_path: Path, dest: Path, root: Path, budget: _Budget,
                  template_name: str | None = None) -> tuple[Path | None, list[str]]:
    """Unpack a student's own zip; returns (the notebook or module chosen from it, notes).

    Bad entries are skipped and noted; a zip that cannot be read at all, or breaks a limit, is noted
    and gives None (it costs only this student).
    """
    notes: list[str] = []
    files: list[tuple[Path, tuple]] = []
    try:
        with _open_zip(zip_path) as archive:
            budget.check_declared(archive, zip_path)
            for info in archive.infolist():
                if info.is_dir() or _ignored(info.filename):
                    continue
                problem = unsafe_entry(info.filename) or ("is a symbolic link" if _is_link(info) else None)
                if problem:
                    notes.append(f"skipped {info.filename!r} in {zip_path.name}: it {problem}")
                    continue
                target = _inside(root, dest / safe_relative(info.filename.replace("\\", "/")))
                try:
                    budget.copy(archive, info, target, zip_path)
                except _EntryProblem as error:
                    notes.append(f"skipped {info.filename!r} in {zip_path.name}: it {error}")
                    continue
                files.append((target, info.date_time))
    except SubmissionError as error:
        shutil.rmtree(dest, ignore_errors=True)  # a broken or oversized student zip costs only that student
        return None, [f"{zip_path.name} could not be unpacked: {_without_path(error)}"]
    chosen, why = choose_file([(p, t) for p, t in files if p.suffix.lower() in _SUBMISSION_SUFFIXES], template_name)
    return chosen, notes + ([why] if why else [])


def _without_path(error: SubmissionError) -> str:
    text = str(error)
    prefix = f"{error.path}: " if getattr(error, "path", None) else ""
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


# --------------------------------------------------------------------------- online text


class _Text(html.parser.HTMLParser):
    _BREAKS = {"p", "br", "div", "li", "tr", "pre"}
    _HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self, mark_headings: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self.mark_headings = mark_headings

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._HEADINGS:
            self.parts.append("\n" + ("#" * int(tag[1]) + " " if self.mark_headings else ""))
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BREAKS or tag in self._HEADINGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data.replace("\n", " ") if self.mark_headings else data)


def html_to_text(markup: str, mark_headings: bool = False) -> str:
    """Moodle's online-text HTML as plain text (paragraphs kept, tags and scripts dropped).

    With ``mark_headings``, an HTML heading becomes a markdown heading line (``<h3>x</h3>`` -> ``### x``).
    """
    parser = _Text(mark_headings)
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n\s*\n+", "\n\n", "\n".join(lines)).strip()


def online_answers(markup: str) -> dict[str, str]:
    """Written answers in an online-text submission: each starts at a heading ``Answer <id>`` (an
    HTML heading, or a ``### Answer <id>`` line) and runs to the next heading."""
    answers: dict[str, list[str]] = {}
    current: str | None = None
    for line in html_to_text(markup, mark_headings=True).split("\n"):
        match = _ANSWER_LINE.match(line)
        if match:
            current = match.group(1)
            answers.setdefault(current, [])
            if match.group(2).strip():
                answers[current].append(match.group(2).strip())
        elif line.startswith("#"):
            current = None  # another heading ends the answer, as a heading cell does in a notebook
        elif current is not None:
            answers[current].append(line)
    cleaned = {q: "\n".join(lines).strip() for q, lines in answers.items()}
    return {q: re.sub(r"\n{3,}", "\n\n", text) for q, text in cleaned.items() if text}


def merge_online_answers(chosen: Path | None, answers: dict[str, str], folder: Path) -> tuple[Path, str]:
    """A copy of the chosen notebook (or module) with the online-text answers the file lacks added.

    An answer in the file wins over one in the online text. Without a file, a notebook holding only the
    answers is written (its code questions are then graded as missing).
    """
    from ..answers import answer_variable, module_answers, notebook_answers

    folder.mkdir(parents=True, exist_ok=True)
    if chosen is None or chosen.suffix.lower() not in _SUBMISSION_SUFFIXES:
        notebook: dict[str, Any] = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        target, present = folder / "onlinetext.ipynb", {}
    elif chosen.suffix.lower() == ".ipynb":
        try:
            notebook = json.loads(chosen.read_text(encoding="utf-8-sig"))
            cells = notebook["cells"]
            assert isinstance(cells, list)
            present = notebook_answers(cells, tuple(answers))
        except (OSError, ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError):
            return chosen, "the online-text answers were not merged: the notebook could not be read"
        target = folder / chosen.name
    else:
        try:
            source = chosen.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return chosen, "the online-text answers were not merged: the module could not be read"
        present = module_answers(source, tuple(answers))
        missing = {q: a for q, a in answers.items() if q not in present}
        if not missing:
            return chosen, ""
        lines = [source.rstrip("\n"), "", "# answers from the Moodle online text"]
        lines += [f"{answer_variable(q)} = {a!r}" for q, a in sorted(missing.items())]
        (folder / chosen.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder / chosen.name, f"answers to {', '.join(sorted(missing))} taken from the online text"
    missing = {q: a for q, a in answers.items() if q not in present}
    if not missing and chosen is not None:
        return chosen, ""
    for question, answer in sorted(missing.items()):
        notebook["cells"].append({"cell_type": "markdown", "id": "moodle-answer-" + re.sub(r"[^A-Za-z0-9-]", "-", question),
                                  "metadata": {"tags": [f"answer-{question}"]},
                                  "source": f"### Answer {question}\n\n{answer}"})
    target.write_text(json.dumps(notebook, ensure_ascii=False), encoding="utf-8")
    return target, f"answers to {', '.join(sorted(missing))} taken from the online text"

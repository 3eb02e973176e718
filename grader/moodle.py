"""Moodle in: reading "Download all submissions" archives safely.

Moodle names every entry after the student: ``<Full name>_<participant id>_assignsubmission_file_/<files>``
(one folder per student), ``<Full name>_<id>_assignsubmission_onlinetext_/onlinetext.html`` for online
text, or, with "download submissions in folders" switched off, the flat
``<Full name>_<id>_assignsubmission_file_<filename>``. An archive re-zipped by hand may wrap all of it in
one more folder; that is understood too.

The archive is untrusted input (and so is any zip a student handed in inside it), so extraction checks
every entry: no absolute paths, drive letters, ``..`` or symlinks; at most ``max_files`` entries; every
file and the total stay under their byte limits, checked against the sizes the archive declares *and*
against the bytes actually produced while streaming (a zip bomb lies about the first).
"""

from __future__ import annotations

import html.parser
import re
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import SubmissionError

_ENTRY = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>file|onlinetext)_(?P<rest>.*)$")
_PREFERENCE = (".ipynb", ".py", ".zip")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class MoodleEntry:
    """One student's submission as found in the archive."""

    student: str  # filename-safe id from name and participant id, e.g. "max-mueller-12345"
    full_name: str
    participant_id: str
    path: Path  # the submission file chosen (.ipynb, else .py, else what a handed-in .zip held)
    online_text: str | None  # the online-text answer as plain text, when there is one


def student_id(full_name: str, participant_id: str) -> str:
    """A filename-safe, readable id: ``Jörg Groß`` + 42 -> ``joerg-gross-42``."""
    folds: dict[str, str | int | None] = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ø": "o", "æ": "ae", "ł": "l",
                                          "đ": "d", "ı": "i"}
    text = full_name.casefold().translate(str.maketrans(folds))
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60] or "student"
    return f"{slug}-{participant_id}"


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
    """(full name, participant id, plugin, path inside the student's part) or None for other entries."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    for depth, part in enumerate(parts[:2]):  # the student's part, possibly inside one wrapping folder
        match = _ENTRY.match(part)
        if not match:
            continue
        inner = "/".join(parts[depth + 1:])
        rest = match["rest"]
        if rest and inner:
            inner = f"{rest}/{inner}"
        elif rest:
            inner = rest  # flat variant: the file name follows the marker
        return match["name"].strip(), match["id"], match["plugin"], inner
    return None


def _unsafe(name: str) -> str | None:
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
        """Stream one entry to target, counting the bytes actually produced."""
        self.files += 1
        written = 0
        target.parent.mkdir(parents=True, exist_ok=True)
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
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as error:
            target.unlink(missing_ok=True)
            raise SubmissionError(f"entry {info.filename!r} is corrupt ({error}); download the archive "
                                  "again", path=where) from None


def extract_moodle(zip_path: Path, dest: Path, *, max_files: int = 5000, max_total_bytes: int = 512 * 2**20,
                   max_file_bytes: int = 64 * 2**20) -> list[MoodleEntry]:
    """Extract a Moodle archive into ``dest/<student>/`` and choose each student's submission file.

    Raises :class:`SubmissionError` for a corrupt archive, an unsafe entry, or one over a limit; nothing
    is ever written outside ``dest``. A zip a student handed in is unpacked under the same limits; its
    unsafe entries are skipped (they cost only that student, whose file then stays the zip).
    """
    zip_path, dest = Path(zip_path), Path(dest)
    budget = _Budget(max_files, max_total_bytes, max_file_bytes)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    students: dict[str, dict] = {}
    with _open_zip(zip_path) as archive:
        budget.check_declared(archive, zip_path)
        for info in archive.infolist():
            problem = _unsafe(info.filename) or ("is a symbolic link" if _is_link(info) else None)
            if problem:
                raise SubmissionError(f"entry {info.filename!r} {problem}; Moodle never writes such entries, "
                                      "so the archive was altered: refusing to extract it", path=zip_path)
            split = _split(info.filename)
            if split is None or info.is_dir():
                continue
            full_name, participant, plugin, inner = split
            if not inner or _ignored(inner):
                continue
            sid = student_id(full_name, participant)
            entry = students.setdefault(sid, {"name": full_name, "id": participant, "files": [], "text": None})
            target = _inside(root, root / sid / _safe_relative(inner))
            budget.copy(archive, info, target, zip_path)
            if plugin == "onlinetext" and target.suffix.lower() in (".html", ".htm"):
                entry["text"] = html_to_text(target.read_text(encoding="utf-8", errors="replace"))
                entry["html"] = target
            else:
                entry["files"].append(target)
    entries = []
    for sid, entry in sorted(students.items()):
        chosen = _choose(entry["files"])
        if chosen is not None and chosen.suffix.lower() == ".zip":
            chosen = _unpack_nested(chosen, root / sid / "_unpacked", root, budget) or chosen
        path = chosen or entry.get("html") or root / sid
        entries.append(MoodleEntry(sid, entry["name"], entry["id"], path, entry["text"]))
    return entries


def moodle_identities(entries: list[MoodleEntry]) -> dict[str, tuple[str, str]]:
    """student -> (worksheet identifier ``Participant <id>``, full name), for the grading worksheet."""
    return {e.student: (f"Participant {e.participant_id}", e.full_name) for e in entries}


def _ignored(inner: str) -> bool:
    parts = inner.split("/")
    return any(p == "__MACOSX" or p == ".ipynb_checkpoints" or p.startswith("._") or p == ".DS_Store" for p in parts)


def _safe_relative(inner: str) -> PurePosixPath:
    parts = [re.sub(r"[^\w.\- ]", "_", p).strip(" .") or "_" for p in inner.split("/") if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath("_")


def _inside(root: Path, target: Path) -> Path:
    resolved = target.resolve()
    if not resolved.is_relative_to(root):  # belt and braces: names were checked already
        raise SubmissionError(f"refusing to write {target} outside {root}")
    return resolved


def _choose(files: list[Path]) -> Path | None:
    """The submission file: a notebook, else a module, else a zip; the shallowest, then by name."""
    for suffix in _PREFERENCE:
        found = sorted((f for f in files if f.suffix.lower() == suffix), key=lambda f: (len(f.parts), str(f)))
        if found:
            return found[0]
    return sorted(files, key=lambda f: (len(f.parts), str(f)))[0] if files else None


def _unpack_nested(zip_path: Path, dest: Path, root: Path, budget: _Budget) -> Path | None:
    """Unpack a student's own zip; returns the notebook or module found in it, or None."""
    try:
        with _open_zip(zip_path) as archive:
            budget.check_declared(archive, zip_path)
            files = []
            for info in archive.infolist():
                if info.is_dir() or _unsafe(info.filename) or _is_link(info) or _ignored(info.filename):
                    continue
                target = _inside(root, dest / _safe_relative(info.filename.replace("\\", "/")))
                budget.copy(archive, info, target, zip_path)
                files.append(target)
    except SubmissionError:
        shutil.rmtree(dest, ignore_errors=True)  # a broken or oversized student zip costs only that student
        return None
    chosen = _choose([f for f in files if f.suffix.lower() in (".ipynb", ".py")])
    return chosen


class _Text(html.parser.HTMLParser):
    _BREAKS = {"p", "br", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Moodle's online-text HTML as plain text (paragraphs kept, tags and scripts dropped)."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()

"""What a course run grades: submission files, folders and Moodle downloads, each named for its student.

Which file is graded when a student handed in several (in a Moodle download, a folder or a zip) follows
one documented rule (:func:`grader.course.moodle.choose_file`): a notebook before a module before a zip;
among several of a kind, the one named like the assignment's template (``<id>.ipynb``), else the newest.
The choice is written into the file label the reports show.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GraderError, SubmissionError
from ..submission import find_submissions, student_id
from .moodle import _Budget, choose_file, extract_moodle, is_moodle_archive, moodle_identities, unpack_nested

_CANDIDATES = (".ipynb", ".py")


@dataclass(frozen=True)
class Sources:
    """What a course run grades: (path, student) pairs, how to name each file, Moodle identities."""

    pairs: list[tuple[Path, str]]
    labels: dict[str, str]  # student -> the file as the instructor knows it (not a scratch copy)
    identities: dict[str, tuple[str, str]]  # student -> ("Participant <id>", full name), Moodle only
    participants: dict[str, str] = field(default_factory=dict)  # student -> Moodle participant id
    moodle: dict[str, dict] = field(default_factory=dict)  # student -> {"name", "participant", "group"}
    problems: dict[str, str] = field(default_factory=dict)  # student -> why nothing of theirs can be graded
    warnings: list[str] = field(default_factory=list)  # entries skipped that belong to no student


def collect_sources(paths: list[Path], scratch: Path, template_name: str | None = None) -> Sources:
    """Submissions from files, folders and Moodle downloads (extracted into ``scratch``)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:  # a mistyped path on the command line, not a student's broken file
        raise GraderError(f"no such file or folder: {', '.join(missing)}")
    sources = Sources([], {}, {})
    for path in find_submissions(paths):
        if path.is_file() and path.suffix.lower() == ".zip" and is_moodle_archive(path):
            _add_moodle(sources, path, scratch / f"{len(sources.labels)}-m", template_name)
        elif path.is_file() and path.suffix.lower() == ".zip":
            _add_zip(sources, path, scratch / f"{len(sources.labels)}-z", template_name)
        elif path.is_dir():
            _add_folder(sources, path, template_name)
        else:
            student = student_id(path)
            sources.pairs.append((path, student))
            sources.labels[student] = str(path)
    seen: set[str] = set()
    for _, student in sources.pairs:
        if student in seen:
            raise SubmissionError(f"two submissions share the student id '{student}'; rename one of them")
        seen.add(student)
    return sources


def _add_moodle(sources: Sources, path: Path, dest: Path, template_name: str | None) -> None:
    extraction = extract_moodle(path, dest, template_name=template_name)
    for entry in extraction.entries:
        sources.pairs.append((entry.path, entry.student))
        label = f"{path} → {entry.full_name}/{entry.path.name}"
        sources.labels[entry.student] = label + "".join(f" ({note})" for note in entry.notes)
        if entry.problem:
            sources.problems[entry.student] = entry.problem
        if entry.participant_id:
            sources.participants[entry.student] = entry.participant_id
        sources.moodle[entry.student] = {"name": entry.full_name, "participant": entry.participant_id,
                                         "group": entry.full_name if entry.is_group else ""}
    sources.identities.update(moodle_identities(extraction.entries))
    sources.warnings.extend(f"{path}: {message}" for message in extraction.skipped)


def _add_zip(sources: Sources, path: Path, dest: Path, template_name: str | None) -> None:
    """A student's own zip: unpacked safely (bad entries skipped and noted), one file chosen by the rule."""
    student = student_id(path)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    chosen, notes = unpack_nested(path, root / "files", root, _Budget(5000, 512 * 2**20, 64 * 2**20), template_name)
    if chosen is None:
        sources.problems[student] = (f"{path.name} holds no notebook (.ipynb) or Python module (.py) that could "
                                     "be read" + (": " + "; ".join(notes) if notes else ""))
        sources.pairs.append((path, student))
        sources.labels[student] = str(path)
        return
    sources.pairs.append((chosen, student))
    inner = chosen.relative_to(root / "files")
    sources.labels[student] = f"{path} → {inner}" + "".join(f" ({note})" for note in notes)


def _add_folder(sources: Sources, folder: Path, template_name: str | None) -> None:
    """A student's folder: graded as is with one candidate file; with several, the rule picks one."""
    student = student_id(folder)
    candidates = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if (path.is_file() and not path.is_symlink() and path.suffix.lower() in _CANDIDATES
                and not any(part.startswith(".") or part == "__pycache__" for part in relative)):
            candidates.append((path, _mtime(path)))
    notebooks = [c for c in candidates if c[0].suffix.lower() == ".ipynb"]
    if len(notebooks) > 1 or (not notebooks and len(candidates) > 1):
        chosen, why = choose_file(candidates, template_name)
        assert chosen is not None  # several candidates: one is chosen
        sources.pairs.append((chosen, student))
        sources.labels[student] = f"{folder} → {chosen.relative_to(folder)} ({why})"
        return
    sources.pairs.append((folder, student))
    sources.labels[student] = str(folder)


def _mtime(path: Path) -> tuple:
    import time

    try:
        return tuple(time.localtime(os.stat(path).st_mtime)[:6])
    except OSError:
        return (1980, 1, 1, 0, 0, 0)

"""What a course run grades: submission files, folders and Moodle downloads, each named for its student."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import GraderError, SubmissionError
from ..submission import find_submissions, student_id
from ..text import clean
from .moodle import extract_moodle, is_moodle_archive, moodle_identities


@dataclass(frozen=True)
class Sources:
    """What a course run grades: (path, student) pairs, how to name each file, Moodle identities."""

    pairs: list[tuple[Path, str]]
    labels: dict[str, str]  # student -> the file as the instructor knows it (not a scratch copy)
    identities: dict[str, tuple[str, str]]


def collect_sources(paths: list[Path], scratch: Path) -> Sources:
    """Submissions from files, folders and Moodle downloads (extracted into ``scratch``)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:  # a mistyped path on the command line, not a student's broken file
        raise GraderError(f"no such file or folder: {', '.join(missing)}")
    pairs: list[tuple[Path, str]] = []
    labels: dict[str, str] = {}
    identities: dict[str, tuple[str, str]] = {}
    named = set(paths)  # only an archive named on the command line may be a Moodle download; a student's
    for path in find_submissions(paths):  # own zip in a folder is that student's submission, whatever it holds
        if path in named and path.is_file() and path.suffix.lower() == ".zip" and is_moodle_archive(path):
            entries = extract_moodle(path, scratch / f"{len(labels)}-{path.stem}")
            for entry in entries:
                pairs.append((entry.path, entry.student))
                labels[entry.student] = f"{path} → {entry.full_name}/{entry.path.name}"
            identities.update(moodle_identities(entries))
        else:
            student = clean(student_id(path))  # a file name may hold bytes that are not UTF-8
            pairs.append((path, student))
            labels[student] = clean(str(path))
    seen: set[str] = set()
    for _, student in pairs:
        if student in seen:
            raise SubmissionError(f"two submissions share the student id '{student}'; rename one of them")
        seen.add(student)
    return Sources(pairs, labels, identities)

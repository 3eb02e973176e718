"""Several sheets side by side: which assignment a command is about, and what must not be mixed up.

With one assignment under ``reference/`` every command uses it. With several, the assignment is
inferred where that is unambiguous, from (strongest first):

1. ``--assignment ID`` (an id under ``reference/``, a folder, or a bundle's ``assignment.json``);
2. the ``results.json`` of the reports folder the command writes or reads (``--out``);
3. the submissions themselves: the ``grader`` metadata that ``grader release`` writes into the
   template notebook (students' notebooks keep it), or the bundle's ``assignment.json`` next to a
   notebook.

When these clues name no assignment, or disagree, the command asks for ``--assignment``. Nothing here
runs or imports submitted code: notebooks are read as JSON (capped), zips are only listed and read.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .assignment import DEFINITION_FILE, Assignment, find_assignments, resolve_assignment
from .bundle import BUNDLE_FILE, find_bundle
from .diagnose import NOT_ATTEMPTED
from .errors import AssignmentError, GraderError
from .results import Status, SubmissionResult

REFERENCE_ROOT = Path("reference")
SUBMISSIONS_ROOT = Path("submissions")
RESULTS_FILE = "results.json"
RELEASE_RECORD = Path(".grader") / "release.json"
MAX_LOOKED_AT = 40  # submissions whose metadata is read to infer the assignment: enough to be sure, cheap
MAX_METADATA_BYTES = 20 * 2**20


@dataclass(frozen=True)
class Clue:
    """Evidence that a command is about one assignment: its id and where it was seen."""

    assignment: str
    source: str


def infer_assignment(name: str | None, *, root: Path = REFERENCE_ROOT, submissions: Iterable[Path] = (),
                     out: Path | None = None) -> Path:
    """The folder of the assignment a command is about (see the module's docstring for the rules)."""
    if name is not None:
        return resolve_assignment(name, root)
    folders = find_assignments(root)
    if len(folders) <= 1:
        return resolve_assignment(None, root)
    known = {_assignment_id(f): f for f in folders}
    clues = [c for c in results_clues(out) + submission_clues(submissions) if c.assignment in known]
    named = sorted({c.assignment for c in clues})
    if len(named) == 1:
        return known[named[0]]
    choices = ", ".join(sorted(known))
    if not named:
        raise AssignmentError(f"several assignments under {root}/ ({choices}) and nothing tells which one this is "
                              "about: choose one with --assignment ID")
    evidence = "; ".join(f"{c.source} says {c.assignment}" for c in _one_per_assignment(clues))
    raise AssignmentError(f"the inputs belong to different assignments ({evidence}): choose one with "
                          "--assignment ID and pass only its submissions")


def default_submissions(assignment_id: str) -> Path:
    """``submissions/<id>/`` when it exists (one folder per sheet), else ``submissions/``."""
    own = SUBMISSIONS_ROOT / assignment_id
    return own if own.is_dir() else SUBMISSIONS_ROOT


def _assignment_id(folder: Path) -> str:
    """The id in assignment.toml, read without importing anything (the folder name when absent)."""
    import tomllib

    try:
        identifier = tomllib.loads((folder / DEFINITION_FILE).read_text(encoding="utf-8")).get("id")
    except (OSError, ValueError):
        identifier = None
    return identifier if isinstance(identifier, str) and identifier else folder.name


def _one_per_assignment(clues: list[Clue]) -> list[Clue]:
    seen: dict[str, Clue] = {}
    for clue in clues:
        seen.setdefault(clue.assignment, clue)
    return list(seen.values())


# --------------------------------------------------------------------------- clues


def results_clues(out: Path | None) -> list[Clue]:
    """The assignment of the results.json in a reports folder."""
    if out is None or not (Path(out) / RESULTS_FILE).is_file():
        return []
    try:
        with (Path(out) / RESULTS_FILE).open(encoding="utf-8") as handle:
            head = handle.read(4096)  # the header comes first; the submissions can be many megabytes
        identifier = json.loads(head[: head.index('"submissions"')].rstrip(", \n") + "}").get("assignment") \
            if '"submissions"' in head else json.loads(head).get("assignment")
    except (OSError, ValueError, AttributeError):
        return []
    return [Clue(identifier, str(Path(out) / RESULTS_FILE))] if isinstance(identifier, str) else []


def submission_clues(paths: Iterable[Path]) -> list[Clue]:
    """Assignment ids from submissions: notebook metadata written by release, or a bundle next to them."""
    from .submission import find_submissions

    existing = [Path(p) for p in paths if Path(p).exists()]
    clues: list[Clue] = []
    for path in find_submissions(existing)[:MAX_LOOKED_AT]:
        clues += _clues_of(path)
    for path in existing:  # a student's own folder: the bundle released with the notebook
        bundle = find_bundle(path, levels=0)
        if bundle is not None:
            clues += _bundle_clue(bundle)
    return clues


def notebook_clues(path: Path) -> list[Clue]:
    """For one submission (check, ci): its metadata, else the bundle next to it."""
    return _clues_of(Path(path)) or _bundle_clue(find_bundle(Path(path)))


def _clues_of(path: Path) -> list[Clue]:
    if path.is_dir():
        notebooks = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)[:3]
        return [c for p in notebooks for c in _clues_of(p)]
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        try:
            if path.stat().st_size > MAX_METADATA_BYTES:
                return []
            return _metadata_clue(path.read_bytes(), str(path))
        except OSError:
            return []
    if suffix == ".zip":
        return _zip_clues(path)
    return []


def _zip_clues(path: Path) -> list[Clue]:
    clues: list[Clue] = []
    try:
        with zipfile.ZipFile(path) as archive:
            notebooks = [i for i in archive.infolist() if i.filename.lower().endswith(".ipynb")
                         and "__MACOSX" not in i.filename and i.file_size <= MAX_METADATA_BYTES][:5]
            for info in notebooks:
                with archive.open(info) as member:
                    clues += _metadata_clue(member.read(MAX_METADATA_BYTES + 1), f"{path} → {info.filename}")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, NotImplementedError,
            RuntimeError):  # broken or encrypted: the grading itself reports it, for that student only
        return clues
    return clues


def _metadata_clue(data: bytes, source: str) -> list[Clue]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return []
    metadata = document.get("metadata") if isinstance(document, dict) else None
    grader = metadata.get("grader") if isinstance(metadata, dict) else None
    identifier = grader.get("assignment") if isinstance(grader, dict) else None
    return [Clue(identifier, f"{source} (notebook metadata)")] if isinstance(identifier, str) and identifier else []


def _bundle_clue(bundle: Path | None) -> list[Clue]:
    if bundle is None:
        return []
    try:
        identifier = json.loads(bundle.read_text(encoding="utf-8")).get("id")
    except (OSError, ValueError, AttributeError):
        return []
    return [Clue(identifier, str(bundle))] if isinstance(identifier, str) else []


def foreign_metadata(paths: Iterable[Path], assignment_id: str) -> list[Clue]:
    """Submissions whose metadata names another assignment than ``assignment_id``, when none names it."""
    clues = submission_clues(paths)
    if any(c.assignment == assignment_id for c in clues):
        return []
    return [c for c in clues if c.assignment != assignment_id]


# --------------------------------------------------------------------------- after grading


def unrelated_results(results: Iterable[SubmissionResult]) -> list[str]:
    """Students in whose submission none of the assignment's functions or answers appear."""
    unrelated = []
    for result in results:
        if result.error or not result.questions:
            continue
        nothing = True
        for question in result.questions.values():
            if question.kind == "written":
                nothing = nothing and question.status is Status.MISSING
            else:
                nothing = nothing and bool(question.cases) and all(  # a template stub counts as there
                    c.status is Status.MISSING and NOT_ATTEMPTED not in (c.message or "") for c in question.cases)
        if nothing:
            unrelated.append(result.student)
    return unrelated


# --------------------------------------------------------------------------- releasing next to students' work


def release_keeping_work(assignment: Assignment, out: Path, *, force: bool = False, wheel: bool = True) -> list[Path]:
    """:func:`grader.release.release`, refusing to overwrite a student's work in ``out`` unless ``force``."""
    import nbformat

    from .release import release, template_notebook

    notebook = Path(out) / f"{assignment.id}.ipynb"
    text = nbformat.writes(template_notebook(assignment))  # exactly what release writes (plus a final newline)
    protect_student_work(notebook, text if text.endswith("\n") else text + "\n", force)
    written = release(assignment, Path(out), wheel=wheel)
    remember_release(notebook)
    return written


def protect_student_work(notebook: Path, template_text: str, force: bool) -> None:
    """Refuse to overwrite a notebook that differs from the template release last wrote there.

    A notebook equal to the new template, or byte-identical to what the last release wrote (recorded
    in ``.grader/release.json``), is safe to replace; anything else may be a student's filled-in work.
    """
    if force or not notebook.is_file():
        return
    current = notebook.read_bytes()
    if current.decode("utf-8", "replace") == template_text:
        return
    record = _release_record(notebook.parent)
    if record.get(notebook.name) == hashlib.sha256(current).hexdigest():
        return
    raise GraderError(f"{notebook} differs from the template grader release wrote there: it may hold a student's "
                      "work. Release into another folder, or pass --force to overwrite it")


def remember_release(notebook: Path) -> None:
    """Record what release wrote, so the next release knows the notebook is still untouched."""
    path = notebook.parent / RELEASE_RECORD
    record = _release_record(notebook.parent)
    record[notebook.name] = hashlib.sha256(notebook.read_bytes()).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def _release_record(folder: Path) -> dict:
    try:
        record = json.loads((folder / RELEASE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


__all__ = ["BUNDLE_FILE", "Clue", "default_submissions", "foreign_metadata", "infer_assignment", "notebook_clues",
           "protect_student_work", "release_keeping_work", "remember_release", "submission_clues", "unrelated_results"]

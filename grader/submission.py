"""Finding and reading submissions: notebooks, modules, folders and zips of one.

Everything here runs in the trusted parent and only *reads* the student's file: code is turned into
cells for the sandbox (:mod:`grader.cells`: a notebook's cells, a module's statements), answers are
extracted as text (:mod:`grader.answers`), nothing is executed, imported or unpickled. A module runs
under its own name, not ``__main__``, so its ``if __name__ == "__main__":`` demo does not run. A file
that cannot be a submission raises SubmissionError with a message the student can act on; the batch
records it and goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .answers import (  # ANSWER_PLACEHOLDER and answer_variable are re-exported (release, tests)
    ANSWER_PLACEHOLDER,
    answer_variable,
    cell_source,
    looks_like_answer,
    module_answers,
    notebook_answers,
)
from .cells import CodeCell, Imports, module_cells, parse_module, transform_cell
from .errors import SubmissionError

__all__ = ["ANSWER_PLACEHOLDER", "CodeCell", "Submission", "answer_variable", "find_submissions", "load_submission",
           "student_id", "submission_hash", "transform_cell"]

MAX_SUBMISSION_BYTES = 50 * 2**20
SUBMISSION_SUFFIXES = (".ipynb", ".py", ".zip")
_CODE_ANSWER = re.compile(r"^[ \t]*(?:answer_\w+[ \t]*\+?=|#.*\b(?:answers?|antwort|l(?:ö|oe)sung)\b)", re.I | re.M)


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path
    kind: str  # "notebook" or "module"
    cells: tuple[CodeCell, ...]
    answers: dict[str, str]  # question id -> answer text (markdown), only answered questions
    content_hash: str
    code: str  # all code as written, for similarity checks
    # question id -> why its answer was not placed with confidence (the reviewer decides; never "missing")
    answer_notes: dict[str, str] = field(default_factory=dict)
    run_as: str = "__main__"  # the ``__name__`` the code runs under: a module's own name, not __main__
    prose: tuple[tuple[int, str], ...] = ()  # (index, source) of markdown and raw cells, for diagnostics
    unavailable: dict[str, str] = field(default_factory=dict)  # name a skipped import would bind -> package


# --------------------------------------------------------------------------- finding


def find_submissions(paths: list[Path]) -> list[Path]:
    """Expand the command line: a file is one submission; a folder holds submissions.

    Each entry of a folder (a notebook, module or zip, or a student's folder holding one) is one
    submission; hidden entries and ones starting with ``_`` are skipped.
    """
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        for entry in sorted(path.iterdir()):
            if entry.name.startswith((".", "_")):
                continue
            if entry.is_dir() or entry.suffix.lower() in SUBMISSION_SUFFIXES:
                found.append(entry)
    return found


def student_id(path: Path) -> str:
    """The student id: the file's name without its suffix, or the folder's name."""
    return path.name if path.is_dir() else path.stem


# --------------------------------------------------------------------------- reading


def load_submission(path: Path, question_ids: tuple[str, ...] = (), student: str | None = None,
                    packages: tuple[str, ...] = ("numpy",), prompts: dict[str, str] | None = None) -> Submission:
    """Read one submission (notebook, module, folder or zip holding one).

    ``packages`` are the ones the sandbox provides besides the standard library: top-level imports
    of anything else are skipped with a note. ``prompts`` (written question id → its text) let an
    answer typed into the question's own cell be found.
    """
    path = Path(path)
    student = student or student_id(path)
    name, data = _read_submission_bytes(path)
    content_hash = hashlib.sha256(data).hexdigest()
    imports = Imports(packages)
    if name.lower().endswith(".ipynb"):
        return _notebook_submission(student, path, data, content_hash, question_ids, imports, prompts)
    if name.lower().endswith(".py"):
        return _module_submission(student, path, name, data, content_hash, question_ids, imports)
    raise SubmissionError(
        f"'{name}' is neither a notebook (.ipynb) nor a Python module (.py)", path=path)


def submission_hash(path: Path) -> str | None:
    """sha256 of the bytes that would be graded, or None when the file cannot be read."""
    try:
        return hashlib.sha256(_read_submission_bytes(Path(path))[1]).hexdigest()
    except (SubmissionError, OSError):
        return None


def _read_submission_bytes(path: Path) -> tuple[str, bytes]:
    if not path.exists():
        raise SubmissionError("does not exist", path=path)
    if path.is_dir():
        return _pick_from_folder(path)
    if path.suffix.lower() == ".zip":
        return _pick_from_zip(path)
    return path.name, _read_capped(path)


def _read_capped(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_SUBMISSION_BYTES:
        raise SubmissionError(
            f"is {size / 2**20:.0f} MB, more than the {MAX_SUBMISSION_BYTES // 2**20} MB limit; clear the "
            "notebook's outputs (Kernel → Restart & Clear Output), save, and hand it in again", path=path)
    if size == 0:
        raise SubmissionError("is empty (0 bytes): it was probably not saved before it was handed in", path=path)
    with path.open("rb") as handle:
        return handle.read(MAX_SUBMISSION_BYTES + 1)


def _pick_from_folder(folder: Path) -> tuple[str, bytes]:
    candidates = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                        and ".ipynb_checkpoints" not in p.parts and p.suffix.lower() in (".ipynb", ".py"))
    chosen = _choose(folder, [str(p.relative_to(folder)) for p in candidates])
    return chosen, _read_capped(folder / chosen)


def _pick_from_zip(path: Path) -> tuple[str, bytes]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()
                       if not info.is_dir() and "__MACOSX" not in info.filename
                       and ".ipynb_checkpoints" not in info.filename
                       and info.filename.lower().endswith((".ipynb", ".py"))}
            chosen = _choose(path, list(members))
            info = members[chosen]
            if info.file_size > MAX_SUBMISSION_BYTES:
                raise SubmissionError(f"'{chosen}' in the zip is larger than the "
                                      f"{MAX_SUBMISSION_BYTES // 2**20} MB limit", path=path)
            with archive.open(info) as member:
                data = member.read(MAX_SUBMISSION_BYTES + 1)
            if len(data) > MAX_SUBMISSION_BYTES:
                raise SubmissionError(f"'{chosen}' in the zip unpacks to more than the limit", path=path)
            if not data:
                raise SubmissionError(f"'{chosen}' in the zip is empty", path=path)
            return Path(chosen).name, data
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError,
            RuntimeError, zlib.error) as error:  # RuntimeError: an encrypted member; zlib.error: corrupt data
        raise SubmissionError(f"is not a readable zip archive ({error}); pack it again", path=path) from None


def _choose(where: Path, names: list[str]) -> str:
    notebooks = [n for n in names if n.lower().endswith(".ipynb")]
    modules = [n for n in names if n.lower().endswith(".py")]
    pool = notebooks or modules
    if not pool:
        raise SubmissionError("holds no notebook (.ipynb) or Python module (.py)", path=where)
    if len(pool) > 1:
        listed = ", ".join(sorted(pool)[:5])
        raise SubmissionError(f"holds several candidate files ({listed}); hand in exactly one", path=where)
    return pool[0]


def _decode_text(data: bytes, path: Path, what: str) -> str:
    if b"\x00" in data[:8192]:
        raise SubmissionError(f"is a binary file, not a {what}", path=path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SubmissionError(f"is not UTF-8 text (byte {error.start}); save it as UTF-8", path=path) from None


# --------------------------------------------------------------------------- notebooks


def _notebook_submission(student: str, path: Path, data: bytes, content_hash: str,
                         question_ids: tuple[str, ...], imports: Imports,
                         prompts: dict[str, str] | None = None) -> Submission:
    notebook = _parse_notebook(_decode_text(data, path, "notebook"), path)
    cells, code, prose = [], [], []
    all_cells = list(notebook["cells"])
    for index, cell in enumerate(all_cells):
        source = cell_source(cell)
        if cell["cell_type"] == "code" and looks_like_answer(cell, question_ids) and parse_module(source) is None:
            # an answer cell turned into a code cell by accident: read as the answer, not run as code
            all_cells[index] = {**cell, "cell_type": "markdown"}
            note = ("not run: this cell holds a written answer, not code (a markdown cell turned into a code cell "
                    "by accident?); it was read as the answer")
            cells.append(CodeCell(index, f"cell {index + 1}", "", (note,)))
            prose.append((index, source))
        elif cell["cell_type"] == "code":
            code.append(source)
            cells.append(imports.in_cell(transform_cell(index, f"cell {index + 1}", source)))
        elif source.strip():
            prose.append((index, source))
    found = notebook_answers(all_cells, question_ids, prompts)
    if _CODE_ANSWER.search("\n".join(code)):  # answers typed into code cells, as in a module
        for index, cell in enumerate(all_cells):
            if cell["cell_type"] != "code":
                continue
            for question, answer in module_answers(cell_source(cell), question_ids).items():
                if question not in found and answer.text:
                    found[question] = type(answer)(answer.text, f"Found in code cell {index + 1}, not in a markdown "
                                                                f"answer cell; check that it answers {question}.")
    return Submission(student, path, "notebook", tuple(cells), {q: a.text for q, a in found.items()},
                      content_hash, "\n\n".join(code), answer_notes={q: a.note for q, a in found.items() if a.note},
                      prose=tuple(prose), unavailable=imports.bound)


def _parse_notebook(text: str, path: Path) -> dict:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise SubmissionError(
            f"is not a valid notebook: not JSON (line {error.lineno}, column {error.colno}: {error.msg}). "
            "Was it saved completely? Open it in Jupyter, save it again and hand it in", path=path) from None
    except RecursionError:
        raise SubmissionError("is not a valid notebook: its JSON is nested too deeply", path=path) from None
    if not isinstance(document, dict):
        raise SubmissionError("is not a valid notebook: its JSON is not an object", path=path)
    major = document.get("nbformat")
    if major == 3 or (major is None and "worksheets" in document):
        document = _upgrade_v3(text, path)
    elif major != 4:
        raise SubmissionError(f"is not a Jupyter notebook of a known version (nbformat {major!r})", path=path)
    cells = document.get("cells")
    if not isinstance(cells, list) or not all(
            isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw") for c in cells):
        raise SubmissionError("is not a valid notebook: its 'cells' list is missing or damaged", path=path)
    return document


def _upgrade_v3(text: str, path: Path) -> dict:
    import nbformat  # only for the rare old format: keep the common path fast

    try:
        return nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises many kinds for damaged v3 files
        raise SubmissionError(f"is an old (nbformat 3) notebook that cannot be upgraded: {error}", path=path) from None


# --------------------------------------------------------------------------- modules


def _module_submission(student: str, path: Path, name: str, data: bytes, content_hash: str,
                       question_ids: tuple[str, ...], imports: Imports) -> Submission:
    source = _decode_text(data, path, "Python module")
    label = Path(name).name
    stem = Path(name).stem
    run_as = stem if stem.isidentifier() and stem != "__main__" else "submission"
    tree = parse_module(source)
    cells = module_cells(source, label, imports, tree)
    found = module_answers(source, question_ids, tree)
    return Submission(student, path, "module", cells, {q: a.text for q, a in found.items()}, content_hash, source,
                      answer_notes={q: a.note for q, a in found.items() if a.note}, run_as=run_as,
                      unavailable=imports.bound)



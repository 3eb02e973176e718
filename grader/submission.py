"""Finding and reading submissions: notebooks, modules, folders and zips of one; written answers.

Everything here runs in the trusted parent and only *reads* the student's file: code is turned into
cells for the sandbox (IPython syntax neutralised), answers are extracted as text, nothing is
executed, imported or unpickled. A file that cannot be a submission raises SubmissionError with a
message the student can act on; the batch records it and goes on.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import SubmissionError
from .text import clean_tree, may_hold_surrogates

MAX_SUBMISSION_BYTES = 50 * 2**20
SUBMISSION_SUFFIXES = (".ipynb", ".py", ".zip")
ANSWER_PLACEHOLDER = "*Your answer here.*"
_ANSWER_HEADING = re.compile(r"^\s*#{1,6}\s*answer\s+([0-9]+(?:\.[0-9]+)*[a-z]?)\b[\s:.\-–—]*(.*)$", re.I)
_ANSWER_TAG = re.compile(r"^answer-(.+)$", re.I)
_CELL_MAGICS_WITH_PYTHON_BODY = {"time", "timeit", "capture", "prun", "debug"}


@dataclass(frozen=True)
class CodeCell:
    """A code cell ready for the sandbox: IPython-only lines replaced, what was skipped noted."""

    index: int  # position among all the notebook's cells
    label: str  # filename used in tracebacks, e.g. "cell 4" or "solution.py"
    source: str
    notes: tuple[str, ...] = ()
    line: int = 0  # lines of the file before the cell (a module's `# %%` cells): tracebacks count from there


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path
    kind: str  # "notebook" or "module"
    cells: tuple[CodeCell, ...]
    answers: dict[str, str]  # question id -> answer text (markdown), only answered questions
    content_hash: str
    code: str  # all code as written, for similarity checks


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


def load_submission(path: Path, question_ids: tuple[str, ...] = (), student: str | None = None) -> Submission:
    """Read one submission (notebook, module, folder or zip holding one)."""
    path = Path(path)
    student = student or student_id(path)
    name, data = _read_submission_bytes(path)
    content_hash = hashlib.sha256(data).hexdigest()
    if name.lower().endswith(".ipynb"):
        return _notebook_submission(student, path, data, content_hash, question_ids)
    if name.lower().endswith(".py"):
        return _module_submission(student, path, name, data, content_hash, question_ids)
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
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as error:
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
                         question_ids: tuple[str, ...]) -> Submission:
    notebook = _parse_notebook(_decode_text(data, path, "notebook"), path)
    cells, answers, code = [], {}, []
    all_cells = notebook["cells"]
    for index, cell in enumerate(all_cells):
        source = _cell_source(cell)
        if cell["cell_type"] == "code":
            code.append(source)
            cells.append(transform_cell(index, f"cell {index + 1}", source))
    answers = extract_notebook_answers(all_cells, question_ids)
    return Submission(student, path, "notebook", tuple(cells), answers, content_hash, "\n\n".join(code))


def _parse_notebook(text: str, path: Path) -> dict:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise SubmissionError(
            f"is not a valid notebook: not JSON (line {error.lineno}, column {error.colno}: {error.msg}). "
            "Was it saved completely? Open it in Jupyter, save it again and hand it in", path=path) from None
    except RecursionError:
        raise SubmissionError("is not a valid notebook: its JSON is nested too deeply", path=path) from None
    except ValueError as error:  # e.g. an integer of thousands of digits (Python's int conversion limit)
        raise SubmissionError(f"is not a valid notebook: its JSON holds a value Python cannot read ({error}). "
                              "Open it in Jupyter, save it again and hand it in", path=path) from None
    if may_hold_surrogates(text):  # "\ud800" escapes: text no file or terminal can hold
        document = clean_tree(document)
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


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _cell_tags(cell: dict) -> list[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def extract_notebook_answers(cells: list[dict], question_ids: tuple[str, ...] = ()) -> dict[str, str]:
    """Answers from markdown cells tagged ``answer-<id>`` or starting with ``### Answer <id>``.

    A heading cell without text takes the following markdown cells (up to the next answer or code
    cell): students often write below the heading instead of in it.
    """
    known = {q.lower(): q for q in question_ids}
    answers: dict[str, list[str]] = {}
    current: str | None = None
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            current = None
            continue
        source = _cell_source(cell)
        question, text = _answer_marker(cell, source, known)
        if question is None:
            if current is not None and source.strip() and not source.lstrip().startswith("#"):
                answers[current].append(source.strip())
            else:
                current = None
            continue
        answers.setdefault(question, []).append(text)
        current = question if not text.strip() else None  # a bare heading: the answer follows it
    cleaned = {q: _clean_answer("\n\n".join(parts)) for q, parts in answers.items()}
    return {q: text for q, text in cleaned.items() if text}


def _answer_marker(cell: dict, source: str, known: dict[str, str]) -> tuple[str | None, str]:
    lines = source.splitlines()
    heading = _ANSWER_HEADING.match(lines[0]) if lines else None
    for tag in _cell_tags(cell):
        match = _ANSWER_TAG.match(tag)
        if match:
            question = known.get(match.group(1).lower(), match.group(1))
            body = "\n".join(lines[1:]) if heading else source
            return question, body
    if heading:
        question = known.get(heading.group(1).lower(), heading.group(1))
        rest = heading.group(2).strip()
        return question, "\n".join(([rest] if rest else []) + lines[1:])
    return None, ""


def _clean_answer(text: str) -> str:
    return text.replace(ANSWER_PLACEHOLDER, "").strip()


# --------------------------------------------------------------------------- IPython syntax


def transform_cell(index: int, label: str, source: str) -> CodeCell:
    """Neutralise IPython-only syntax so the cell is plain Python; note what was skipped.

    Line magics and shell escapes become ``pass`` (or their Python payload for %time/%timeit);
    cell magics whose body is Python (%%time, %%capture, …) run their body; other cell magics
    (%%bash, %%writefile, %%html, …) skip the whole cell. Line numbers are kept.
    """
    lines = source.splitlines()
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split(maxsplit=1)[0] if len(first) > 2 else ""
        if magic not in _CELL_MAGICS_WITH_PYTHON_BODY:
            note = f"skipped the cell: the cell magic %%{magic} does not run during grading"
            return CodeCell(index, label, "", (note,))
        lines = ["pass"] + lines[1:]
    notes: list[str] = []
    out = []
    for line in lines:
        replaced, note = _transform_line(line)
        out.append(replaced)
        if note:
            notes.append(note)
    return CodeCell(index, label, "\n".join(out) + ("\n" if source.endswith("\n") else ""), tuple(notes))


_ASSIGNED_TARGET = re.compile(r"[A-Za-z_][\w.,\s]*")


def _assigned_escape(line: str) -> tuple[str, str] | None:
    """(target, "!" or "%") for ``files = !ls`` or ``t = %timeit f()``, else None.

    String operations and one linear match rather than one regex: the regex this replaces
    backtracked quadratically on a long line of spaces (a minute of CPU for one crafted cell).
    """
    equals = line.find("=")
    if equals < 0:
        return None
    payload = line[equals + 1:].lstrip()
    if not payload.startswith(("!", "%")):
        return None
    target = line[:equals].strip()
    return (target, payload[0]) if _ASSIGNED_TARGET.fullmatch(target) else None


def _transform_line(line: str) -> tuple[str, str | None]:
    stripped = line.lstrip()
    indent = line[: len(line) - len(stripped)]
    if not stripped:
        return line, None
    if stripped.startswith("!"):
        return f"{indent}pass", f"skipped shell command: {stripped[:120]} (shell commands do not run during grading)"
    if stripped.startswith("%"):
        name, _, rest = stripped[1:].partition(" ")
        if name in ("time", "timeit") and rest.strip():
            payload = re.sub(r"^(?:-[nr]\s*\d+\s+|-[a-z]+\s+)*", "", rest.strip())
            return f"{indent}{payload}", None
        return f"{indent}pass", None
    assigned = _assigned_escape(line)
    if assigned and not stripped.startswith(("#", "'", '"')):
        target, kind = assigned
        note = (f"skipped shell command: {stripped[:120]}" if kind == "!" else None)
        return f"{indent}{target} = {'[]' if kind == '!' else 'None'}", note
    if stripped.endswith("?") and re.fullmatch(r"[\w.]+\?\??", stripped):
        return f"{indent}pass", None
    return line, None


# --------------------------------------------------------------------------- modules


def _module_submission(student: str, path: Path, name: str, data: bytes, content_hash: str,
                       question_ids: tuple[str, ...]) -> Submission:
    source = _decode_text(data, path, "Python module")
    label = Path(name).name
    cells = tuple(CodeCell(i, label, chunk, line=begin)
                  for i, (begin, chunk) in enumerate(_split_percent_cells(source)))
    return Submission(student, path, "module", cells, extract_module_answers(source, question_ids),
                      content_hash, source)


def _split_percent_cells(source: str) -> list[tuple[int, str]]:
    """Split on ``# %%`` markers (the percent format editors use): (lines before the cell, its text).

    The sandbox numbers each cell's lines from its offset, so tracebacks show the file's line
    numbers without padding every cell with the lines before it (which grew quadratically).
    """
    lines = source.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("# %%")]
    if not starts:
        return [(0, source)]
    bounds = sorted({0, *starts}) + [len(lines)]
    chunks = []
    for begin, end in zip(bounds, bounds[1:]):
        body = "".join(lines[begin:end])
        if body.strip():
            chunks.append((begin, body))
    return chunks


def answer_variable(question_id: str) -> str:
    """``2.1`` → ``ANSWER_2_1``; ``4.3d`` → ``ANSWER_4_3D``."""
    return "ANSWER_" + re.sub(r"[^0-9A-Za-z]", "_", question_id).upper()


def extract_module_answers(source: str, question_ids: tuple[str, ...] = ()) -> dict[str, str]:
    """Module-level ``ANSWER_<id> = "..."`` strings, read from the syntax tree (never executed)."""
    by_variable = {answer_variable(q): q for q in question_ids}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _answers_by_pattern(source, by_variable)
    answers = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name) and target.id.upper().startswith("ANSWER_"):
                question = by_variable.get(target.id.upper(), target.id[len("ANSWER_"):].replace("_", "."))
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    text = _clean_answer(value.value)
                    if text:
                        answers[question] = text
    return answers


def _answers_by_pattern(source: str, by_variable: dict[str, str]) -> dict[str, str]:
    """Best effort for a module with a syntax error: triple-quoted ANSWER_ strings."""
    answers = {}
    unclosed: set[str] = set()  # a quote never closed after one start is not closed after a later one
    end = 0
    for match in _ANSWER_START.finditer(source):
        quote = match.group(2)
        if match.start() < end or quote in unclosed:
            continue
        close = source.find(quote, match.end())  # a plain search, linear: no backtracking regex
        if close < 0:
            unclosed.add(quote)
            continue
        end = close + 3
        question = by_variable.get(match.group(1).upper())
        text = _clean_answer(source[match.end():close])
        if question and text:
            answers[question] = text
    return answers


_ANSWER_START = re.compile(r'^(ANSWER_\w+)[ \t]*=[ \t]*("""|\'\'\')', re.M)


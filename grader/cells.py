"""Code as cells for the sandbox: a notebook's code cells, a module's top-level statements.

Runs in the trusted parent and only rewrites text, so that one failing line costs as little as it
would in Jupyter:
- IPython syntax (magics, ``!`` shell lines, nbconvert's ``get_ipython()`` calls) is neutralised, line
  numbers kept, what was skipped noted;
- a module's top-level statements become cells: definitions, imports and constants that cannot fail
  share one, every other statement (a demo call, a loop, a ``print``) gets its own, so a statement that
  raises, hangs or crashes costs only itself; a file that does not parse is cut at its top-level
  statements and only the broken piece is lost;
- a top-level import of a package the sandbox does not have (matplotlib, torch, …) is skipped and
  noted once, so the imports after it still run.
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import sys
import tokenize
from dataclasses import dataclass

_CELL_MAGICS_WITH_PYTHON_BODY = {"time", "timeit", "capture", "prun", "debug"}


@dataclass(frozen=True)
class CodeCell:
    """A code cell ready for the sandbox: IPython-only lines replaced, what was skipped noted."""

    index: int  # position among all the notebook's cells
    label: str  # filename used in tracebacks, e.g. "cell 4" or "solution.py"
    source: str
    notes: tuple[str, ...] = ()


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
    out: list[str] = []
    for line in lines:
        replaced, said = _transform_line(line)
        out.append(replaced)
        if said:
            notes.append(said)
    return CodeCell(index, label, "\n".join(out) + ("\n" if source.endswith("\n") else ""), tuple(notes))


_ASSIGNED_ESCAPE = re.compile(r"^(\s*)([A-Za-z_][\w.,\s]*?)\s*=\s*([!%])(.*)$")


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
    assigned = _ASSIGNED_ESCAPE.match(line)
    if assigned and not stripped.startswith(("#", "'", '"')):
        target, kind = assigned.group(2), assigned.group(3)
        note = (f"skipped shell command: {stripped[:120]}" if kind == "!" else None)
        return f"{assigned.group(1)}{target} = {'[]' if kind == '!' else 'None'}", note
    if stripped.endswith("?") and re.fullmatch(r"[\w.]+\?\??", stripped):
        return f"{indent}pass", None
    return line, None


# --------------------------------------------------------------------------- imports the sandbox lacks

_IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import\b|import[ \t]+([\w. \t,]+))", re.M)
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"__future__"}


class Imports:
    """Skips top-level imports of packages the sandbox does not have, so the imports after them run.

    Each package is noted once per submission, plainly; the names such an import would have bound
    are remembered so that a later ``NameError`` on them can say why.
    """

    def __init__(self, packages: tuple[str, ...]):
        self.packages = tuple(packages)
        self.available = _STDLIB | set(self.packages)
        self.bound: dict[str, str] = {}
        self.reported: set[str] = set()

    def missing(self, module: str) -> bool:
        return module.split(".")[0] not in self.available

    def sentence(self, package: str) -> str:
        names = list(self.packages) or ["the standard library"]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"{package} is not available while grading; only {listed} {'is' if len(names) == 1 else 'are'}"

    def wanted(self, source: str) -> bool:
        """Cheap test: does any import line name a missing package?"""
        for match in _IMPORT_LINE.finditer(source):
            names = [match.group(1)] if match.group(1) else [
                part.split()[0] for part in match.group(2).split(",") if part.split()]
            if any(self.missing(n) for n in names):
                return True
        return False

    def in_cell(self, cell: CodeCell) -> CodeCell:
        if not self.wanted(cell.source):
            return cell
        try:
            tree = ast.parse(cell.source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return cell
        source, notes = self.rewrite(cell.source, tree.body)
        return CodeCell(cell.index, cell.label, source, cell.notes + tuple(notes))

    def rewrite(self, source: str, body: list[ast.stmt]) -> tuple[str, list[str]]:
        """``source`` with its top-level imports of missing packages replaced, line numbers kept."""
        edits: list[tuple[ast.stmt, str]] = []
        notes: list[str] = []
        for stmt in body:
            if isinstance(stmt, ast.Import):
                dropped = [a for a in stmt.names if self.missing(a.name)]
                kept = [a for a in stmt.names if not self.missing(a.name)]
                for alias in dropped:
                    self.bound[alias.asname or alias.name.split(".")[0]] = alias.name.split(".")[0]
                packages = [a.name.split(".")[0] for a in dropped]
                replacement = "import " + ", ".join(ast.unparse(a) for a in kept) if kept else "pass"
            elif isinstance(stmt, ast.ImportFrom) and not stmt.level and stmt.module and self.missing(stmt.module):
                for alias in stmt.names:
                    if alias.name != "*":
                        self.bound[alias.asname or alias.name] = stmt.module.split(".")[0]
                packages, replacement = [stmt.module.split(".")[0]], "pass"
            else:
                continue
            for package in dict.fromkeys(packages):
                if package not in self.reported:
                    self.reported.add(package)
                    notes.append(f"{self.sentence(package)}: the import of {package} on line {stmt.lineno} was "
                                 "skipped and the code after it ran.")
            edits.append((stmt, "\n" * ((stmt.end_lineno or stmt.lineno) - stmt.lineno) + replacement))
        return _splice(source, edits), notes


def _splice(source: str, edits: list[tuple[ast.stmt, str]]) -> str:
    """Replace each statement's exact span of ``source`` by its text (ast columns are UTF-8 bytes)."""
    if not edits:
        return source
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(row: int, col: int) -> int:
        return starts[row - 1] + len(lines[row - 1].encode("utf-8")[:col].decode("utf-8", "ignore"))

    for stmt, text in sorted(edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True):
        begin = offset(stmt.lineno, stmt.col_offset)
        end = offset(stmt.end_lineno or stmt.lineno, stmt.end_col_offset or stmt.col_offset)
        source = source[:begin] + text + source[end:]
    return source


# --------------------------------------------------------------------------- modules


def module_cells(source: str, label: str, imports: Imports | None = None, tree: ast.Module | None = None
                 ) -> tuple[CodeCell, ...]:
    """A module as cells: definitions, imports and constants together; every other statement alone.

    Each cell is padded with empty lines so that tracebacks show the file's own line numbers.
    """
    imports = imports or Imports(("numpy",))
    notes: list[str] = []
    if "get_ipython()" in source:
        source, found = _rewrite_get_ipython(source)
        notes += found
        tree = None
    if tree is None:
        tree = parse_module(source)
        if tree is None:
            source, found = _neutralise_ipython(source)
            notes += found
            tree = parse_module(source)
    lines = source.splitlines(keepends=True)
    pieces = [(1, len(lines), tree)] if tree is not None else [  # still broken: only the broken piece is lost
        (begin, end, parse_module("\n" * (begin - 1) + "".join(lines[begin - 1:end])))
        for begin, end in _top_level_spans(source)]
    # a module's __future__ imports hold for the whole file: each later cell carries them on a padding line
    future = sorted({a.name for _, _, piece in pieces if piece is not None for s in piece.body
                     if isinstance(s, ast.ImportFrom) and s.module == "__future__" for a in s.names})
    chunks: list[_Chunk] = []
    inert = _Inert(imports.bound, postponed="annotations" in future)
    for begin, end, piece in pieces:
        if piece is None:
            chunks.append(_Chunk(begin, end, False))
            continue
        text = "\n" * (begin - 1) + "".join(lines[begin - 1:end])
        if imports.wanted(text):
            text, found = imports.rewrite(text, piece.body)
            notes += found
            lines[begin - 1:end] = text.splitlines(keepends=True)[begin - 1:]
        chunks += [_Chunk(_first_line(s), s.end_lineno or s.lineno, inert(s)) for s in piece.body]
    cells: list[CodeCell] = []
    for begin, end in _group(chunks):
        body = "".join(lines[begin - 1:end])
        if body.strip():
            padding = "\n" * (begin - 1)
            if future and cells and begin > 1:
                padding = f"from __future__ import {', '.join(future)}" + padding
            cells.append(CodeCell(len(cells), label, padding + body))
    if notes:
        first = cells[0] if cells else CodeCell(0, label, "")
        cells[:1] = [CodeCell(first.index, first.label, first.source, first.notes + tuple(notes))]
    return tuple(cells)


def parse_module(source: str) -> ast.Module | None:
    """The syntax tree, or None when the source does not parse."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


@dataclass(frozen=True)
class _Chunk:
    begin: int  # first line, 1-based
    end: int  # last line
    inert: bool  # cannot raise or hang in practice: may share a cell with its neighbours


def _group(chunks: list[_Chunk]) -> list[tuple[int, int]]:
    """Line spans of the cells: overlapping chunks merged, runs of inert ones together."""
    spans: list[list] = []
    for chunk in chunks:
        if spans and (chunk.begin <= spans[-1][1] or (chunk.inert and spans[-1][2])):
            spans[-1][1] = max(spans[-1][1], chunk.end)
            spans[-1][2] = spans[-1][2] and chunk.inert
        else:
            spans.append([chunk.begin, chunk.end, chunk.inert])
    return [(begin, end) for begin, end, _ in spans]


def _first_line(stmt: ast.stmt) -> int:
    decorators = getattr(stmt, "decorator_list", [])
    return min([stmt.lineno] + [d.lineno for d in decorators])


_BUILTINS = frozenset(dir(builtins))


class _Inert:
    """Decides which top-level statements cannot fail in practice, so they may share a cell.

    Imports of available packages, plain definitions and literal assignments qualify, provided every
    name their decorators, defaults and annotations use is known to exist by then (a builtin, or bound
    by an earlier statement of that kind): ``@njit`` after a skipped numba import, or an annotation
    naming ``torch``, gets a cell of its own, so its failure costs only itself.
    """

    def __init__(self, skipped: dict[str, str], postponed: bool = False) -> None:
        self.known = set(_BUILTINS)
        self.skipped = skipped  # names whose import was skipped: never known
        self.postponed = postponed  # from __future__ import annotations: annotations are not evaluated

    def __call__(self, stmt: ast.stmt) -> bool:
        inert = self._inert(stmt)
        if inert:
            self.known.update(n for n in _bound_names(stmt) if n not in self.skipped)
        return inert

    def _inert(self, stmt: ast.stmt) -> bool:
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass, ast.Global)):
            return True
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = stmt.args
            every = [*stmt.decorator_list, *args.defaults, *(d for d in args.kw_defaults if d is not None)]
            if not self.postponed:
                every += [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                                 *filter(None, [args.vararg, args.kwarg])] if a.annotation]
                every += [stmt.returns] if stmt.returns else []
            return all(self._safe(e) for e in every)
        if isinstance(stmt, ast.Assign):
            return self._safe(stmt.value) and all(isinstance(t, ast.Name) for t in stmt.targets)
        if isinstance(stmt, ast.AnnAssign):
            return stmt.value is None or self._safe(stmt.value)
        if isinstance(stmt, ast.Expr):
            return isinstance(stmt.value, ast.Constant)
        if isinstance(stmt, ast.If):
            return _is_main_guard(stmt.test) and not stmt.orelse
        return False

    def _safe(self, node: ast.expr | None) -> bool:
        if node is None or isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Name):
            return node.id in self.known
        if isinstance(node, ast.Attribute):
            return self._safe(node.value)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return all(self._safe(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(self._safe(k) and self._safe(v) for k, v in zip(node.keys, node.values))
        if isinstance(node, ast.UnaryOp):
            return self._safe(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None annotations
            return self._safe(node.left) and self._safe(node.right)
        if isinstance(node, ast.Subscript):  # list[int], Optional[np.ndarray]
            return self._safe(node.value) and self._safe(node.slice)
        if isinstance(node, ast.JoinedStr):
            return all(isinstance(v, ast.Constant) or (isinstance(v, ast.FormattedValue) and self._safe(v.value))
                       for v in node.values)
        return False


def _bound_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.Import):
        return [a.asname or a.name.split(".")[0] for a in stmt.names]
    if isinstance(stmt, ast.ImportFrom):
        return [a.asname or a.name for a in stmt.names if a.name != "*"]
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
        return [stmt.target.id]
    return []


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == "__main__")


_GET_IPYTHON = re.compile(r"^(?P<indent>[ \t]*)(?:(?P<target>[\w.]+(?:[ \t]*,[ \t]*[\w.]+)*)[ \t]*=[ \t]*)?"
                          r"get_ipython\(\)\.(?P<method>\w+)\((?P<args>.*)\)[ \t]*;?[ \t]*$")


def _rewrite_get_ipython(source: str) -> tuple[str, list[str]]:
    """nbconvert's ``get_ipython().run_line_magic(…)``/``.system(…)`` lines, as the IPython syntax they were."""
    out: list[str] = []
    notes: list[str] = []
    for line in source.splitlines():
        match = _GET_IPYTHON.match(line)
        if not match:
            out.append(line)
            continue
        try:
            args = ast.literal_eval(f"({match.group('args')},)")
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            out.append(line)
            continue
        indent, method, target = match.group("indent"), match.group("method"), match.group("target")
        strings = [a for a in args if isinstance(a, str)]
        if method == "run_cell_magic" and len(strings) >= 3:
            cell = transform_cell(0, "", f"%%{strings[0]} {strings[1]}\n{strings[2]}")
            notes += cell.notes
            body = cell.source.splitlines()[1:] if cell.source else []
            out.append(indent + "pass" + "".join(f"; {b.strip()}" for b in body if len(body) == 1))
            if len(body) > 1:  # keep it on one line where possible; several lines shift what follows
                out.extend(indent + b for b in body)
            continue
        if method == "run_line_magic" and len(strings) == 2:
            ipython = f"%{strings[0]} {strings[1]}".rstrip()
        elif method in ("system", "getoutput") and strings:
            ipython = f"!{strings[0]}"
        elif method == "magic" and strings:
            ipython = f"%{strings[0]}"
        else:
            out.append(line)
            continue
        replaced, note = _transform_line(indent + (f"{target} = " if target else "") + ipython)
        out.append(replaced)
        if note:
            notes.append(note)
    return "\n".join(out) + ("\n" if source.endswith("\n") else ""), notes


_MARKER = re.compile(r"^# ?(?:%%|In\[[\d ]*\]:)")


def _neutralise_ipython(source: str) -> tuple[str, list[str]]:
    """IPython lines in a ``.py`` file (``!pip``, ``%matplotlib``, cell magics after ``# %%``) made plain
    Python as in a notebook; lines inside multi-line strings are left alone; line numbers are kept."""
    lines = source.splitlines()
    in_string = _string_rows(source)
    out = list(lines)
    notes: list[str] = []
    start = 0
    bounds = [i for i, line in enumerate(lines) if _MARKER.match(line)] + [len(lines)]
    for end in bounds:
        chunk = [i for i in range(start, end) if i + 1 not in in_string]
        first = next((i for i in chunk if lines[i].strip() and not lines[i].lstrip().startswith("#")), None)
        if first is not None and lines[first].lstrip().startswith("%%"):
            cell = transform_cell(0, "", "\n".join(lines[first:end]))
            notes += cell.notes
            body = cell.source.splitlines() if cell.source else []
            for i in range(first, end):
                out[i] = body[i - first] if i - first < len(body) else ""
        else:
            for i in chunk:
                replaced, note = _transform_line(lines[i])
                out[i] = replaced
                if note:
                    notes.append(note)
        start = end
    return "\n".join(out) + ("\n" if source.endswith("\n") else ""), notes


def _string_rows(source: str) -> set[int]:
    """1-based rows inside multi-line strings (as far as the tokenizer gets)."""
    rows: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                rows.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return rows


_STATEMENT_START = re.compile(r"^(?![\s#)\]}])(?!(?:else|elif|except|finally)\b)")


def _top_level_spans(source: str) -> list[tuple[int, int]]:
    """(first, last) line of each top-level statement of a file that does not parse: every line that
    starts at column 0 (outside a multi-line string) starts one, so an unclosed bracket costs its piece."""
    lines = source.splitlines()
    in_string = _string_rows(source)
    starts = [n for n, line in enumerate(lines, 1) if n not in in_string and _STATEMENT_START.match(line)]
    starts = sorted({1, *starts})
    return [(begin, end - 1) for begin, end in zip(starts, starts[1:] + [len(lines) + 1])]

"""Saying what really happened when a function could not be graded.

The comparison sees one call at a time: "`softmax` is not defined" is all it can say when the name is
absent. Here, in the parent, the submission's text and its cells' outcomes are at hand, so such a
message is replaced by the real cause: the cell that stopped before reaching the ``def`` (and at which
line, with which error), the cell that timed out or crashed, the package that is not available, the
``def`` written in a markdown cell or under ``if __name__ == "__main__":``. The untouched template's
``raise NotImplementedError`` is "not attempted yet" (missing), not an error. Nothing here runs code.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from .results import CaseResult, Status
from .submission import CodeCell, Submission

_TRACE_LINE = re.compile(r'File "(?P<label>[^"]+)", line (?P<line>\d+)')
_SYNTAX_AT = re.compile(r"\((?P<label>[^()]+), line (?P<line>\d+)\)\s*$")
_NAME_ERROR = re.compile(r"name '(?P<name>\w+)' is not defined")
_NO_MODULE = re.compile(r"No module named '(?P<name>[\w.]+)'")
NOT_ATTEMPTED = "is not attempted yet"  # the untouched template's stub: the function is there, unfinished


def explain_case(case: CaseResult, call: Any, submission: Submission, cells: dict[int, Any],
                 packages: tuple[str, ...]) -> CaseResult:
    """``case`` with its message telling the real cause, where the submission shows one."""
    error = getattr(call, "error", None)
    if error is not None and getattr(call, "status", None) == "error" and error.type == "NotImplementedError":
        said = (error.message or "").strip().splitlines()[0][:200] if (error.message or "").strip() else ""
        return replace(case, status=Status.MISSING, traceback=None, message=(
            f"`{case.function}` {NOT_ATTEMPTED}: it still raises NotImplementedError"
            + (f" ({said})" if said else "") + "."))
    if case.status is Status.MISSING and getattr(call, "status", None) == "missing":
        found = why_missing(case.function, submission, cells)
        if found is not None:
            status, message = found
            return replace(case, status=status, message=message)
        return case
    if case.status is Status.ERROR and error is not None:
        extra = error_reason(f"{error.type}: {error.message}", submission, cells, packages)
        if extra:
            return replace(case, message=f"{case.message} ({extra})")
    return case


def error_reason(message: str, submission: Submission, cells: dict[int, Any], packages: tuple[str, ...]) -> str:
    """Why a NameError or ModuleNotFoundError happened, when the submission shows it: a package the
    sandbox lacks, or a definition in the file that never ran."""
    name = _NAME_ERROR.search(message)
    if name and name.group("name") in submission.unavailable:
        package = submission.unavailable[name.group("name")]
        return f"`{name.group('name')}` was never imported: {_not_available(package, packages)}"
    if name:
        found = why_missing(name.group("name"), submission, cells)
        return found[1] if found else ""
    module = _NO_MODULE.search(message)
    if module:
        return _not_available(module.group("name").split(".")[0], packages)
    return ""


def _not_available(package: str, packages: tuple[str, ...]) -> str:
    names = list(packages) or ["the standard library"]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{package} is not available while grading; only {listed} {'is' if len(names) == 1 else 'are'}"


def why_missing(function: str, submission: Submission, cells: dict[int, Any]) -> tuple[Status, str] | None:
    """(status, message) when ``function`` is written somewhere in the submission but was not defined."""
    definition = re.compile(rf"^(?P<indent>[ \t]*)(?:async[ \t]+)?(?:def|class)[ \t]+{re.escape(function)}\b"
                            rf"|^(?P<indent2>[ \t]*){re.escape(function)}[ \t]*=[^=]", re.M)
    module = submission.kind == "module"
    for cell in submission.cells:
        for match in definition.finditer(cell.source):
            line = cell.source.count("\n", 0, match.start()) + 1
            indent = match.group("indent") if match.group("indent") is not None else match.group("indent2")
            where = f"on line {line}" if module else f"in {cell.label}, line {line}"
            outcome = cells.get(cell.index)
            if indent:
                message, block = _nested(function, cell, line, where, module)
                if message:
                    return Status.MISSING, message
                if block is None:
                    continue
                if outcome is not None and outcome.status == "ok":
                    return Status.MISSING, (f"`{function}` is defined {where}, inside `{block[:60]}`, and that "
                                            "block did not define it when your code ran (a condition that was "
                                            "false, an exception that was caught): define it at the top level.")
            message = _stopped(function, cell, line, where, outcome, module, submission.unavailable)
            if message:  # the code ran and failed before the def; a def that ran but was undone is missing
                ran_fine = outcome is None or outcome.status == "ok"
                return (Status.MISSING if ran_fine else Status.ERROR), message
    for index, source in submission.prose:
        if definition.search(source):
            return Status.MISSING, (f"`{function}` is written in a markdown or raw cell (cell {index + 1}), and "
                                    "code there does not run: move it into a code cell.")
    return None


def _nested(function: str, cell: CodeCell, line: int, where: str, module: bool) -> tuple[str | None, str | None]:
    """(message, None) for a def under the ``__main__`` guard or inside a function or class;
    (None, header) for one inside another block at the top level; (None, None) otherwise."""
    lines = cell.source.splitlines()
    outer: str | None = None
    indent = len(lines[line - 1]) - len(lines[line - 1].lstrip())
    for above in range(line - 2, -1, -1):
        text = lines[above]
        if text.strip() and not text.lstrip().startswith("#") and len(text) - len(text.lstrip()) < indent:
            header = text.strip()
            indent = len(text) - len(text.lstrip())
            if re.match(r"if\s+__name__\s*==\s*['\"]__main__['\"]", header):
                return (f"`{function}` is defined under `if __name__ == \"__main__\":` {where}, which does not "
                        f"run when your {'module' if module else 'code'} is imported for grading: define it at "
                        "the top level."), None
            if re.match(r"(async\s+)?(def|class)\s", header):
                return (f"`{function}` is defined inside `{header.rstrip(':')[:60]}` {where}, not at the top "
                        "level, so it is not visible outside it: move it to the top level."), None
            if re.match(r"(if|elif|else|for|while|with|try|except|finally)\b", header):
                outer = header.rstrip(":")
            if indent == 0:
                return None, outer
    return None, outer


def _stopped(function: str, cell: CodeCell, line: int, where: str, outcome: Any, module: bool,
             skipped: dict[str, str]) -> str | None:
    if outcome is None:
        if cell.notes:
            return f"`{function}` is in {cell.label}, which was not run: {cell.notes[0]}"
        return None
    error = outcome.error
    if outcome.status == "ok" or error is None:
        return (f"`{function}` is defined {where}, but when grading calls it the name no longer holds that "
                "function: a later line deleted it or assigned something else to it.")
    what = f"{error.type}: {(error.message or '').strip().splitlines()[0][:200] if (error.message or '').strip() else ''}"
    name = _NAME_ERROR.search(what)
    if name and name.group("name") in skipped:
        what += f"; its import was skipped: {skipped[name.group('name')]} is not available while grading"
    if error.type == "NotRun":
        return f"`{function}` is defined {where}, but that code was never run: {error.message}."
    if outcome.status == "timeout":
        return (f"`{function}` is defined {where}, but the code before it did not finish within its time limit "
                f"and was stopped, so the definition never ran ({error.message or 'timeout'}).")
    if outcome.status == "crashed":
        return (f"`{function}` is defined {where}, but the code before it crashed the process running it "
                f"({error.message}), so the definition never ran.")
    stop = stop_line(error, cell.label)
    place = "the file" if module else cell.label
    if stop is not None and stop >= line and error.type != "SyntaxError":
        return (f"`{function}` is defined {where}, but running {place} failed at line {stop} "
                f"({what.strip()}), so the definition never took effect.")
    at = f" at line {stop}" if stop is not None else ""
    if error.type in ("SyntaxError", "IndentationError", "TabError"):
        return (f"`{function}` is defined {where}, but {place} has a syntax error{at} ({what.strip()}), so none "
                f"of {'that part' if module else 'that cell'} ran. Fix the syntax error.")
    return (f"`{function}` is defined {where}, but {place} stopped{at} before reaching it: {what.strip()}. "
            "Fix that line (or move the definition above it).")


def stop_line(error: Any, label: str) -> int | None:
    """The line of ``label`` that was running when ``error`` was raised (for a syntax error: its line)."""
    if error.type in ("SyntaxError", "IndentationError", "TabError"):
        found = _SYNTAX_AT.search(error.message or "")
        if found and found.group("label") == label:
            return int(found.group("line"))
    lines = [int(m.group("line")) for m in _TRACE_LINE.finditer(error.traceback or "") if m.group("label") == label]
    return lines[0] if lines else None  # the outermost frame: the cell's own line that was running

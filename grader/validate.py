"""Authoring checks: everything an instructor can get wrong in ``reference/<id>/``, found before grading.

``grader validate`` runs all of them; ``grader release`` and ``grader grade`` run the fast part
(:func:`check_before_grading`) first, so an instructor's mistake is a clear error naming the file,
question, case or variant at fault, never a traceback in the middle of grading. The checks:

1. the definition loads (``assignment.toml`` and the modules it names);
2. every known mistake and alternative has the signature of the student function it imitates;
3. every public and hidden case builds (hidden ones for several seeds), its arguments fit the
   reference function, and the reference runs on it and returns numbers;
4. every variant runs, and differs from the reference by more than the question's tolerance on at
   least one case without an earlier variant giving the same output there (else its hint or note
   can never appear: an error for a mistake, a warning for an alternative);
5. with ``written = "auto"``, every written question has enough rubric concepts to be accepted; the
   generated template defines every student function, and each stub raises NotImplementedError;
6. (full run only) the template with the reference bodies pasted in passes every public case, run
   through the real sandbox exactly as a student's notebook would be.

The reference, cases and variants are the instructor's own code and run here, in the trusted
process, as they do when grading computes expected values.
"""

from __future__ import annotations

import copy
import enum
import inspect
import os
import tempfile
import textwrap
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .assignment import Assignment, Case, Question, Variant, load_assignment
from .errors import AssignmentError, GraderError, SandboxError

EXTRA_SEEDS = 2  # hidden cases are built for the assignment's seed and this many more


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an assignment: where (file, and what in it) and what, for its author."""

    severity: Severity
    where: str  # e.g. "reference/ex02/variants.py:14 (question 1.2, mistake 'scale__squared')"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Validation:
    """The outcome of validating one assignment folder."""

    folder: Path
    assignment: Assignment | None = None
    problems: list[Problem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what was checked and found fine, for the summary

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem(Severity.ERROR, where, message))

    def warn(self, where: str, message: str) -> None:
        self.problems.append(Problem(Severity.WARNING, where, message))


def validate(folder: Path | str, *, full: bool = True, isolation: str = "auto") -> Validation:
    """Run the authoring checks on an assignment folder; never raises for the assignment's mistakes.

    ``full=False`` is the fast part (the assignment's own seed, no sandbox run), which ``release``
    and ``grade`` run before they start.
    """
    folder = Path(folder)
    report = Validation(folder)
    try:
        assignment = load_assignment(folder)
    except AssignmentError as error:
        report.error(_shown(error.path or folder), _without_path(error))
        return report
    report.assignment = assignment
    report.checked.append(f"definition ({len(assignment.questions)} questions)")
    _check_signatures(assignment, report)
    seeds = [assignment.seed] + ([assignment.seed + i for i in range(1, EXTRA_SEEDS + 1)] if full else [])
    cases = _check_cases(assignment, seeds, report)
    if cases is not None:
        _check_variants(assignment, cases, report)
    _check_written(assignment, report)
    template_ok = _check_template(assignment, cases or [], report)
    if full and template_ok and report.ok:
        _check_solved_template(assignment, report, isolation)
    return report


VALIDATED_FILE = ".validated"


def check_before_grading(assignment: Assignment, remember_in: Path | None = None) -> None:
    """The fast checks, for ``release`` and ``grade``: raise one AssignmentError listing every error.

    With ``remember_in`` (a reports folder), a version that passed once is not checked again there:
    the version covers the assignment's files and grader's own code.
    """
    if not assignment.has_reference or assignment.path is None:
        return
    marker = Path(remember_in) / VALIDATED_FILE if remember_in is not None else None
    try:
        if marker is not None and marker.read_text(encoding="utf-8").strip() == assignment.version:
            return
    except OSError:
        pass
    report = validate(assignment.path, full=False)
    if not report.errors and marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(assignment.version + "\n", encoding="utf-8")
    if report.errors:
        lines = "\n".join(f"  - {p}" for p in report.errors)
        raise AssignmentError(
            f"assignment {assignment.id} has {_plural(len(report.errors), 'error')}; nothing was graded or "
            f"written:\n{lines}\n"
            f"(grader validate --assignment {assignment.id} runs every check)", path=None)


# --------------------------------------------------------------------------- 2. signatures


def _signature(function: Callable[..., Any]) -> list[tuple[str, Any, Any]] | None:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind, repr(p.default)) for p in parameters]  # repr: an array default compares as one value


def _describe_signature(function: Callable[..., Any]) -> str:
    try:
        return f"({', '.join(str(p) for p in inspect.signature(function).parameters.values())})"
    except (TypeError, ValueError):
        return "(unknown)"


def _check_signatures(assignment: Assignment, report: Validation) -> None:
    count, errors_before = 0, len(report.errors)
    for question in assignment.questions:
        for variant in question.variants:
            reference = getattr(assignment.reference, variant.function)
            if variant.implementation is None:
                continue
            count += 1
            if _signature(variant.implementation) != _signature(reference):
                report.error(
                    _variant_where(assignment, question, variant),
                    f"{_name(variant.implementation)}{_describe_signature(variant.implementation)} does not have the "
                    f"signature of {variant.function}{_describe_signature(reference)}: the grader calls it with "
                    "the student function's arguments, so it must take exactly the same parameters "
                    "(names, order, defaults)")
    if count and len(report.errors) == errors_before:
        report.checked.append(f"signatures of {_plural(count, 'variant')}")


# --------------------------------------------------------------------------- 3. cases


@dataclass(frozen=True)
class _Checked:
    """A case that builds and on which the reference runs, with the reference's output."""

    case: Case
    expected: Any


def _check_cases(assignment: Assignment, seeds: list[int], report: Validation) -> list[_Checked] | None:
    """Build the public cases and the hidden ones for each seed; run the reference on each."""
    cases_file = _shown(Path(str(getattr(assignment.cases_module, "__file__", ""))))
    public = _build(assignment, "public_cases", assignment.seed, cases_file, report)
    if public is None:
        return None
    built: list = list(public)
    hidden_count = 0
    for seed in seeds:
        hidden = _build(replace(assignment, seed=seed), "hidden_cases", seed, cases_file, report)
        if hidden is None:
            return None
        hidden_count += len(hidden)
        built += [(c, seed) for c in hidden]
    checked, failed = [], set()
    for case, seed in [(c, None) for c in public] + built[len(public):]:
        if case.id in failed:
            continue  # the same case for another seed: one report is enough
        where = f"{cases_file}, case '{case.id}'{f' for seed {seed}' if seed else ''} (question {case.question})"
        expected = _run_reference(assignment, case, where, report)
        if expected is None:
            failed.add(case.id)
            continue
        checked.append(_Checked(case, expected))
    all_cases = public + [c for c, _ in built[len(public):]]
    _check_coverage(assignment, all_cases, report)
    if failed:
        return checked
    seed_text = ", ".join(str(s) for s in seeds)
    report.checked.append(f"{len(public)} public and {hidden_count} hidden cases (seed{'s' if len(seeds) > 1 else ''} "
                          f"{seed_text}), reference run on each")
    return checked


def _run_reference(assignment: Assignment, case: Case, where: str, report: Validation) -> np.ndarray | None:
    """The reference's output on the case, or None after reporting why there is none."""
    reference = getattr(assignment.reference, case.function)
    try:
        inspect.signature(reference).bind(*case.args, **case.kwargs)
    except TypeError as error:
        report.error(where, f"its arguments do not fit {case.function}{_describe_signature(reference)}: {error}")
        return None
    except ValueError:  # no signature to check against: the call below tells
        pass
    try:
        expected = _call(reference, case)
    except Exception as error:  # the instructor's reference: say where it broke
        report.error(where, f"the reference {case.function} raised {_exception(error, assignment)}")
        return None
    if expected is None:
        report.error(where, f"the reference {case.function} returned something that is not a number or an array "
                            "of numbers")
        return None
    if not np.all(np.isfinite(expected)):
        report.warn(where, f"the reference {case.function} returns NaN or inf here; students are compared with that")
    return expected


def _build(assignment: Assignment, builder: str, seed: int, cases_file: str, report: Validation) -> list[Case] | None:
    try:
        return assignment._build_cases(builder, public=(builder == "public_cases"))
    except AssignmentError as error:
        cause = error.__cause__
        if cause is None or isinstance(cause, AssignmentError):
            report.error(cases_file, _without_path(error))
            return None
        what = f"{builder}({seed})" if builder == "hidden_cases" else f"{builder}()"
        report.error(cases_file, f"{what} raised {_exception(cause, assignment)}")
    return None


def _check_coverage(assignment: Assignment, cases: list[Case], report: Validation) -> None:
    definition = _shown((assignment.path or Path(".")) / "assignment.toml")
    for question in assignment.questions:
        for function in question.functions:
            mine = [c for c in cases if c.question == question.id and c.function == function]
            if not any(c.public for c in mine):
                report.warn(f"{definition}, question {question.id}",
                            f"no public case calls {function}: students cannot check it before handing in")
            if not any(not c.public for c in mine):
                report.warn(f"{definition}, question {question.id}",
                            f"no hidden case calls {function}: a submission that hard-codes the public answers "
                            "passes")


def _call(function: Callable[..., Any], case: Case) -> np.ndarray | None:
    """Call trusted code on copies of the case's inputs, as grading does; None for non-numeric output."""
    result = function(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
    try:
        with np.errstate(all="ignore"):
            return np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- 4. variants


def _check_variants(assignment: Assignment, checked: list[_Checked], report: Validation) -> None:
    count, errors_before = 0, len(report.errors)
    for question in assignment.questions:
        # the order grading tries them in: alternatives first, then mistakes, each as listed
        ordered = sorted((v for v in question.variants if v.implementation is not None),
                         key=lambda v: v.kind != "alternative")
        mine = [c for c in checked if c.case.question == question.id]
        outputs: dict[str, list[Any]] = {}
        for variant in ordered:
            outputs[variant.name] = [_variant_output(variant, c) if c.case.function == variant.function else None
                                     for c in mine]
        for position, variant in enumerate(ordered):
            count += 1
            if variant.implementation is None or \
                    _signature(variant.implementation) != _signature(getattr(assignment.reference, variant.function)):
                continue  # already reported: its calls would only fail
            _judge_variant(assignment, question, variant, ordered[:position], mine, outputs, report)
    if count and len(report.errors) == errors_before:
        report.checked.append(f"{_plural(count, 'variant')} run on their cases, each can fire")


def _variant_output(variant: Variant, checked: _Checked) -> Any:
    try:
        assert variant.implementation is not None
        return _call(variant.implementation, checked.case)
    except Exception as error:
        return error


def _judge_variant(assignment: Assignment, question: Question, variant: Variant, earlier: list[Variant],
                   cases: list[_Checked], outputs: dict[str, list[Any]], report: Validation) -> None:
    where = _variant_where(assignment, question, variant)
    relevant = [i for i, c in enumerate(cases) if c.case.function == variant.function]
    if not relevant:
        report.error(where, f"no case of question {question.id} calls {variant.function}, so it can never fire")
        return
    mine = outputs[variant.name]
    errors = [mine[i] for i in relevant if isinstance(mine[i], Exception)]
    if len(errors) == len(relevant):
        report.error(where, f"raised on every one of its {len(relevant)} cases (first: "
                            f"{_exception(errors[0], assignment)}), so it can never fire")
        return
    tolerance = question.tolerance
    differs, shadowed_by = 0, set()
    for i in relevant:
        output = mine[i]
        if output is None or isinstance(output, Exception) or _close(output, cases[i].expected, tolerance):
            continue
        differs += 1
        shadow = next((v.name for v in earlier if _same(outputs[v.name][i], output, cases[i].expected, tolerance)),
                      None)
        if shadow is None:
            return  # it fires on this case: fine
        shadowed_by.add(shadow)
    what = "hint" if variant.kind == "mistake" else "note"
    add = report.error if variant.kind == "mistake" else report.warn
    if not differs:
        add(where, f"never differs from the reference {variant.function} by more than the tolerance "
                   f"(rtol={tolerance.rtol:g}, atol={tolerance.atol:g}) on any of its {len(relevant)} cases, so its "
                   f"{what} can never appear: add a case that tells them apart")
    else:
        add(where, f"wherever it differs from the reference, {_join_names(sorted(shadowed_by))} (tried before it) gives "
                   f"the same output, so its {what} can never appear: add a case that tells them apart")


def _close(a: Any, b: Any, tolerance) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(a, b, rtol=tolerance.rtol, atol=tolerance.atol))


def _same(output: Any, other: Any, expected: Any, tolerance) -> bool:
    """Would grading match ``other``'s variant for a student whose output is ``output``?"""
    if output is None or isinstance(output, Exception) or np.asarray(output).shape != np.asarray(other).shape:
        return False
    if _close(output, expected, tolerance):
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(other, output, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True))


def _check_written(assignment: Assignment, report: Validation) -> None:
    """With ``written = "auto"``, each written question needs enough rubric concepts to be accepted at all."""
    if assignment.bonus.written != "auto":
        return
    definition = _shown((assignment.path or Path(".")) / "assignment.toml")
    for question in assignment.questions:
        if question.kind == "written" and len(question.rubric) < assignment.bonus.auto_min_concepts:
            report.error(f"{definition}, question {question.id}",
                         f"with written = \"auto\" an answer must name {assignment.bonus.auto_min_concepts} rubric "
                         f"concept(s), but the question has {len(question.rubric)}: no answer can ever be accepted; "
                         "add [[questions.rubric]] entries")


# --------------------------------------------------------------------------- 5. the template


def _check_template(assignment: Assignment, checked: list[_Checked], report: Validation) -> bool:
    """The template defines each student function, and each stub raises NotImplementedError."""
    from .release import template_notebook

    solution = _shown(Path(str(getattr(assignment.reference, "__file__", ""))))
    try:
        notebook = template_notebook(assignment)
    except AssignmentError as error:
        report.error(solution, f"the template cannot be written: {_without_path(error)}")
        return False
    namespace: dict[str, Any] = {"__name__": "__template__"}
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        try:
            exec(compile(cell.source, f"<template cell {number}>", "exec"), namespace)  # noqa: S102 - generated
        except Exception as error:  # from the reference's own header lines
            report.error(solution, f"template cell {number} does not run: {type(error).__name__}: {error}")
            return False
    ok = True
    first_case: dict[str, Any] = {}
    for item in checked:
        first_case.setdefault(item.case.function, item.case)
    for name in assignment.functions:
        function = namespace.get(name)
        reference = getattr(assignment.reference, name)
        if not callable(function):
            defined = getattr(reference, "__name__", "?")
            report.error(_function_where(reference, solution, name),
                         f"the template does not define {name}: its stub is written from the reference's source, "
                         f"which defines {defined!r}. Write the reference as `def {name}(...)`")
            ok = False
            continue
        case = first_case.get(name)
        if case is None:
            continue
        try:
            function(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        except NotImplementedError:
            continue
        except Exception as error:
            report.error(_function_where(reference, solution, name),
                         f"the template's stub of {name} raises {type(error).__name__}: {error} instead of "
                         "NotImplementedError")
        else:
            report.error(_function_where(reference, solution, name),
                         f"the template's stub of {name} returns instead of raising NotImplementedError")
        ok = False
    if ok:
        report.checked.append(f"template: {_plural(len(assignment.functions), 'function')} defined, each raises "
                              "NotImplementedError")
    return ok


def solved_template(assignment: Assignment):
    """The template notebook with each stub replaced by the reference function's own source."""
    from .release import NUMPY_IMPORT, template_notebook

    notebook = template_notebook(assignment)
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        names = [t[len("function-"):] for t in tags if t.startswith("function-")]
        if cell.cell_type == "code" and names:
            source = textwrap.dedent(inspect.getsource(getattr(assignment.reference, names[0])))
            cell.source = f"{NUMPY_IMPORT}\n\n\n{source}" if NUMPY_IMPORT in cell.source else source
    return notebook


def _check_solved_template(assignment: Assignment, report: Validation, isolation: str) -> None:
    """The reference pasted into the template passes every public case, in the real sandbox."""
    import nbformat

    from .api import check

    solution = _shown(Path(str(getattr(assignment.reference, "__file__", ""))))
    with tempfile.TemporaryDirectory(prefix="grader-validate-") as scratch:
        path = Path(scratch) / f"{assignment.id}.ipynb"
        nbformat.write(solved_template(assignment), str(path))
        try:
            result = check(path, assignment, isolation=isolation)
        except SandboxError as error:
            report.warn(solution, f"the reference could not be run in the sandbox ({error}); that check was skipped")
            return
        except GraderError as error:
            report.error(solution, f"the template with the reference pasted in could not be checked: {error}")
            return
    if result.error:
        report.error(solution, f"the template with the reference pasted in could not be graded: {result.error}")
        return
    for cell in result.cells:
        if cell.status != "ok":
            report.error(solution, f"pasted into the template, a reference cell fails (cell {cell.index + 1}, "
                                   f"{cell.status}): {cell.message} — every reference function must work alone in a "
                                   "cell, given `import numpy as np` and the other student functions")
    failures = 0
    for question in assignment.questions:
        if question.kind != "code":
            continue
        for case in result.questions[question.id].cases:
            if case.status != "passed":
                failures += 1
                report.error(f"{solution}, question {question.id}, public case '{case.case_id}'",
                             f"the reference pasted into the template does not pass in the sandbox: {case.message}")
    if not failures and not result.error:
        report.checked.append(f"the template with the reference pasted in passes every public case in the sandbox "
                              f"(isolation: {result.isolation})")


# --------------------------------------------------------------------------- naming things


def _shown(path: Any) -> str:
    """A path as the instructor typed it: relative to the working folder when below it."""
    path = Path(str(path))
    try:
        return os.path.relpath(path.resolve()) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def _without_path(error: AssignmentError) -> str:
    text = str(error)
    prefix = f"{error.path}: " if error.path else ""
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", repr(function))


def _function_where(function: Callable[..., Any], fallback: str, name: str = "") -> str:
    try:
        file = inspect.getsourcefile(function)
        line = inspect.getsourcelines(function)[1]
        return f"{_shown(file)}:{line} ({name or _name(function)})"
    except (TypeError, OSError):
        return fallback


def _variant_where(assignment: Assignment, question: Question, variant: Variant) -> str:
    definition = _shown((assignment.path or Path(".")) / "assignment.toml")
    what = f"question {question.id}, {variant.kind} '{variant.name}'"
    if variant.implementation is None:
        return f"{definition} ({what})"
    location = _function_where(variant.implementation, definition)
    return f"{location.split(' (')[0]} ({what})"


def _exception(error: BaseException, assignment: Assignment) -> str:
    """``ValueError: … (at reference/ex02/cases.py:31)``: the innermost frame in the assignment's folder."""
    where = ""
    folder = assignment.path.resolve() if assignment.path else None
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if folder is not None and Path(frame.filename).resolve().is_relative_to(folder):
            where = f" (at {_shown(frame.filename)}:{frame.lineno})"
            break
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}{': ' + message if message else ''}{where}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _join_names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]

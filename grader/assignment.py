"""Assignments: the model, loading ``reference/<id>/`` and the student bundle, and prepared cases.

An assignment folder holds ``assignment.toml`` (questions, points, bonus rule, tolerances, variants,
limits), a reference module with the correct implementations, a cases module with the public cases
and a seeded generator of hidden ones, and a variants module with the alternative conventions and
known mistakes. Nothing here is specific to one exercise.

Expected values are computed here, in the trusted parent, and never cross into the sandbox. The
student bundle (:mod:`grader.bundle`) carries the public ones as plain data.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import importlib.util
import math
import sys
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np

from . import carry
from .errors import AssignmentError
from .results import QuestionKind


class VariantKind(enum.StrEnum):
    ALTERNATIVE = "alternative"  # another accepted convention: full credit, with a note
    MISTAKE = "mistake"  # a known mistake: no credit, with a hint


class BonusRuleName(enum.StrEnum):
    ALL = "all"  # every bonus question accepted
    AT_LEAST = "at_least"  # at least `minimum` of them


class WrittenMode(enum.StrEnum):
    REVIEW = "review"  # written answers wait for a person
    AUTO = "auto"  # accepted automatically when long enough and naming rubric concepts


DEFINITION_FILE = "assignment.toml"
QUESTION_KINDS = tuple(QuestionKind)
BONUS_RULES = tuple(BonusRuleName)
WRITTEN_MODES = tuple(WrittenMode)
LIMIT_KEYS = {
    "cell_timeout": float,
    "call_timeout": float,
    "total_timeout": float,
    "memory_mb": int,
    "cpu_seconds": int,
    "max_processes": int,
    "max_file_mb": int,
    "max_open_files": int,
    "output_bytes": int,
    "max_result_mb": int,
    "output_total": int,  # per submission: characters of captured output and tracebacks in total
    "returned_total_mb": int,  # per submission: MB of values returned by all calls together
    "allowed_packages": list,
}


# A result computed in float32 (or float16) is judged at float32's precision: the tolerance grows to
# PRECISION_ULPS units of the dtype's epsilon, relative and times the magnitude of the values involved.
PRECISION_ULPS = 64
FLOAT32_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 1e-5
    atol: float = 1e-8

    def at_precision(self, eps: float, scale: float) -> "Tolerance":
        """The tolerance for a result computed at machine epsilon ``eps`` from values of magnitude ``scale``.

        float64 (eps 2.2e-16) leaves the configured tolerance as it is; float32 (eps 1.2e-7) widens it to
        about 7.6e-6 relative and 7.6e-6 × the magnitude absolute, so entries near zero, whose float32 error
        is set by the magnitude of the values they were computed from, are not misjudged.
        """
        margin = PRECISION_ULPS * eps
        return Tolerance(rtol=max(self.rtol, margin), atol=max(self.atol, margin * max(scale, 1.0)))


@dataclass(frozen=True)
class Concept:
    """A rubric concept for a written answer, with the words that show it."""

    name: str
    synonyms: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    """Another answer than the reference's: an accepted alternative convention or a known mistake.

    ``question`` is the variant's home: the question that declares it, where the mistake is charged. A
    variant declared on a building block (``softmax__wrong_axis``) is also derived for every composite
    whose reference calls that building block: ``origin`` then names the declared variant and
    ``origin_function`` the building block; the home stays the building block's question.
    """

    name: str
    kind: VariantKind
    function: str  # the student function whose output it imitates
    message: str  # the note (alternative) or the hint (mistake) the student sees
    implementation: Callable[..., Any] | None = None  # None in a student bundle
    question: str | None = None  # the question that declares it (None in hand-made test variants)
    origin: str | None = None  # derived: the building block's variant this one propagates
    origin_function: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", VariantKind(self.kind))

    @property
    def family(self) -> str:
        """One name for a mistake and all its propagated forms."""
        return self.origin or self.name


@dataclass(frozen=True)
class Question:
    id: str
    kind: QuestionKind
    title: str
    prompt: str
    points: float
    bonus: bool
    section: str = ""
    functions: tuple[str, ...] = ()
    tolerance: Tolerance = Tolerance()
    variants: tuple[Variant, ...] = ()
    min_words: int = 0
    rubric: tuple[Concept, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", QuestionKind(self.kind))


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    text: str = ""


@dataclass(frozen=True)
class BonusRule:
    rule: BonusRuleName = BonusRuleName.ALL
    minimum: int = 0
    written: WrittenMode = WrittenMode.REVIEW
    auto_min_concepts: int = 1  # with written = "auto": rubric concepts an answer must name

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", BonusRuleName(self.rule))
        object.__setattr__(self, "written", WrittenMode(self.written))


@dataclass(frozen=True)
class Wording:
    """The assignment's own words in generic feedback (nothing exercise-specific lives in grader/)."""

    hidden_case: str = "this is a hidden case: its values are not shown; test your function on other inputs"
    transposed: str = "Your result is the transpose of the expected one."


@dataclass(frozen=True)
class Grading:
    """How the engine charges mistakes (``[grading]`` in assignment.toml)."""

    carry_forward: bool = True  # a composite correct given the student's own building blocks earns its points


@dataclass(frozen=True)
class Case:
    """One call of one student function, built by an assignment's cases module."""

    question: str
    function: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    id: str = ""
    description: str = ""
    public: bool = True


@dataclass(frozen=True)
class PreparedCase:
    """A case with everything the comparison needs, computed by the trusted side."""

    case: Case
    arg_names: tuple[str, ...]  # names of the positional arguments, for reports
    expected: Any
    variants: tuple[tuple[Variant, Any], ...]  # each variant with its output on this case
    building_blocks: tuple[str, ...] = ()  # the assignment's functions the reference calls on this case
    _memo: dict = field(default_factory=dict, compare=False, repr=False)  # per-tolerance facts, see below

    @property
    def active(self) -> tuple[str, ...]:
        """The known mistakes whose output differs from the reference's on this case (shape or values)."""
        return tuple(v.name for v in self.telling(Tolerance()) if v.kind is VariantKind.MISTAKE)

    def telling(self, tolerance: Tolerance) -> tuple[Variant, ...]:
        """The variants that say something on this case at ``tolerance``: their output differs from the
        reference's. The same for every student, so it is worked out once per tolerance."""
        key = ("telling", tolerance)
        if key not in self._memo:
            expected = np.asarray(self.expected, dtype=np.float64)
            found = []
            for variant, output in self.variants:
                output = np.asarray(output, dtype=np.float64)
                with np.errstate(invalid="ignore", over="ignore"):
                    if output.shape != expected.shape or not np.allclose(output, expected, rtol=tolerance.rtol,
                                                                         atol=tolerance.atol, equal_nan=True):
                        found.append(variant)
            self._memo[key] = tuple(found)
        return self._memo[key]

    def stacked(self, tolerance: Tolerance, shape: tuple[int, ...]) -> tuple[tuple[Variant, ...], np.ndarray]:
        """The telling variants whose output has ``shape``, alternatives first, with their outputs stacked
        into one array: one vectorised comparison finds every variant a result equals."""
        key = ("stacked", tolerance, shape)
        if key not in self._memo:
            outputs = {v.name: o for v, o in self.variants}
            chosen = sorted((v for v in self.telling(tolerance) if np.shape(outputs[v.name]) == shape),
                            key=lambda v: v.kind is not VariantKind.ALTERNATIVE)
            stack = np.array([np.asarray(outputs[v.name], dtype=np.float64) for v in chosen], dtype=np.float64
                             ).reshape((len(chosen), *shape))
            self._memo[key] = (tuple(chosen), stack)
        return self._memo[key]


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    version: str
    questions: tuple[Question, ...]
    sections: tuple[Section, ...] = ()
    intro: str = ""
    bonus: BonusRule = BonusRule()
    limits: dict = field(default_factory=dict)
    seed: int = 0
    grading: Grading = Grading()
    wording: Wording = Wording()
    path: Path | None = None  # the reference folder; None for a student bundle
    reference: ModuleType | None = None
    cases_module: ModuleType | None = None
    bundled_cases: tuple[PreparedCase, ...] = ()  # a student bundle's public cases

    @property
    def has_reference(self) -> bool:
        return self.reference is not None

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)

    @cached_property
    def functions(self) -> tuple[str, ...]:
        """Every student function the assignment calls, in question order, without repeats."""
        seen: dict[str, None] = {}
        for question in self.questions:
            for name in question.functions:
                seen.setdefault(name, None)
        return tuple(seen)

    def prepared_cases(self, include_hidden: bool) -> tuple[PreparedCase, ...]:
        """Public cases (and hidden ones when asked) with expected values, memoised per assignment."""
        if not self.has_reference:
            if include_hidden:
                raise AssignmentError(
                    "this is a student bundle: it has only the public cases; grade with the "
                    "instructor's reference/ folder to run the hidden ones",
                    path=self.path,
                )
            return self.bundled_cases
        public = self._prepared_public
        return public + self._prepared_hidden if include_hidden else public

    @cached_property
    def _prepared_public(self) -> tuple[PreparedCase, ...]:
        return tuple(self._prepare(c) for c in self._build_cases("public_cases", public=True))

    @cached_property
    def _prepared_hidden(self) -> tuple[PreparedCase, ...]:
        return tuple(self._prepare(c) for c in self._build_cases("hidden_cases", public=False))

    def _build_cases(self, builder: str, public: bool) -> list[Case]:
        make = getattr(self.cases_module, builder, None)
        if make is None:
            raise AssignmentError(f"the cases module has no function {builder}()", path=self.path)
        try:
            built = list(make(self.seed) if builder == "hidden_cases" else make())
        except Exception as error:  # the instructor's cases module: a clear error, not a traceback mid-grading
            raise AssignmentError(f"{builder}() raised {type(error).__name__}: {error} (grader validate shows where)",
                                  path=getattr(self.cases_module, "__file__", self.path)) from error
        cases = []
        for number, case in enumerate(built, start=1):
            if not isinstance(case, Case):
                raise AssignmentError(
                    f"{builder}() must return grader.assignment.Case objects, got {type(case).__name__}",
                    path=self.path,
                )
            prefix = "" if public else "hidden-"
            case_id = case.id or f"{case.question}/{prefix}{number}"
            cases.append(Case(case.question, case.function, tuple(case.args), dict(case.kwargs),
                              case_id, case.description, public))
        _validate_cases(self, cases)
        return cases

    def questions_of(self, function: str) -> tuple[str, ...]:
        """The ids of the questions that grade ``function``."""
        return tuple(q.id for q in self.questions if function in q.functions)

    def _prepare(self, case: Case) -> PreparedCase:
        reference_function = getattr(self.reference, case.function)
        try:
            expected = _call_trusted(reference_function, case)
        except Exception as error:  # the instructor's reference: a clear error, not a traceback mid-grading
            raise AssignmentError(f"the reference {case.function} raised {type(error).__name__}: {error} on case "
                                  f"{case.id!r} (grader validate shows where)", path=self.path) from error
        question = self.question(case.question)
        declared = {v.name: v for q in (question, *self.questions) for v in q.variants
                    if v.function == case.function and v.implementation is not None}
        outputs = tuple((variant, output) for variant in declared.values()
                        for output in _variant_output(variant, case))
        assert self.reference is not None
        blocks = carry.trace(self.reference, case.function, self.functions, case.args, case.kwargs)
        outputs += tuple(self._propagated(case, blocks))
        prepared = PreparedCase(case, _positional_names(reference_function, len(case.args)), expected, outputs,
                                building_blocks=blocks)
        prepared.stacked(question.tolerance, np.shape(expected))  # once here, before grading workers fork
        return prepared

    def _propagated(self, case: Case, blocks: tuple[str, ...]) -> list[tuple[Variant, Any]]:
        """Each building block's declared variants, carried through the reference composite."""
        assert self.reference is not None
        derived = []
        own = {v.name for q in self.questions for v in q.variants if v.function == case.function}
        for question in self.questions:
            for variant in question.variants:
                if variant.function not in blocks or variant.implementation is None or variant.origin:
                    continue
                name = f"{case.function}__{variant.name}"
                if name in own:  # declared by hand for the composite: that one speaks
                    continue
                output = carry.propagate(self.reference, case.function, variant.function, variant.implementation,
                                         case.args, case.kwargs)
                if output is None:
                    continue
                message = variant.message if variant.kind is VariantKind.ALTERNATIVE else \
                    f"Inside your `{case.function}`, in its `{variant.function}` part: {variant.message}"
                derived.append((Variant(name=name, kind=variant.kind, function=case.function, message=message,
                                        question=question.id, origin=variant.name,
                                        origin_function=variant.function), output))
        return derived


def _call_trusted(function: Callable[..., Any], case: Case) -> Any:
    """Call reference or variant code on deep copies, so nothing can change a case's inputs."""
    result = function(*carry.fresh(case.args), **carry.fresh(case.kwargs))
    return np.asarray(result, dtype=np.float64) if not isinstance(result, (float, int)) else float(result)


def _variant_output(variant: Variant, case: Case) -> tuple[Any, ...]:
    """The variant's output on the case, or nothing where the imitated mistake cannot run (e.g. X W A B
    with a rectangular W raises, as the student's code would): that variant is then not matched there."""
    if variant.implementation is None:
        return ()
    try:
        return (_call_trusted(variant.implementation, case),)
    except Exception:
        return ()


def _positional_names(function: Callable[..., Any], count: int) -> tuple[str, ...]:
    import inspect

    names = [p.name for p in inspect.signature(function).parameters.values()]
    return tuple(names[:count]) + tuple(f"arg{i}" for i in range(len(names), count))


# --------------------------------------------------------------------------- finding and loading


def find_assignments(root: Path) -> list[Path]:
    """The assignment folders under ``root`` (each holds an assignment.toml)."""
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob(f"*/{DEFINITION_FILE}"))


def resolve_assignment(assignment_id: str | None, root: Path = Path("reference")) -> Path:
    """The folder of the named assignment, or of the only one under ``root``."""
    folders = find_assignments(root)
    if assignment_id is not None:
        candidate = Path(assignment_id)
        if (candidate / DEFINITION_FILE).is_file():
            return candidate
        for folder in folders:
            if folder.name == assignment_id:
                return folder
        known = ", ".join(f.name for f in folders) or "none"
        raise AssignmentError(f"no assignment '{assignment_id}' under {root}/ (found: {known})")
    if not folders:
        raise AssignmentError(
            f"no assignment found: {root}/ holds no folder with an {DEFINITION_FILE}. "
            "Run grader from the course repository, or pass --assignment PATH"
        )
    if len(folders) > 1:
        names = ", ".join(f.name for f in folders)
        raise AssignmentError(f"several assignments under {root}/ ({names}): choose one with --assignment ID")
    return folders[0]


def load_assignment(folder: Path | str) -> Assignment:
    """Load and validate ``reference/<id>/``; errors name the file and the bad field."""
    folder = Path(folder)
    definition_path = folder / DEFINITION_FILE
    if not definition_path.is_file():
        raise AssignmentError(f"missing {DEFINITION_FILE}", path=folder)
    try:
        raw = tomllib.loads(definition_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise AssignmentError(f"not valid TOML: {error}", path=definition_path) from None
    spec = _Fields(raw, definition_path)
    package = _import_folder(folder, spec.text("id", default=folder.name))
    reference = _submodule(package, folder, spec.text("reference", default="solution"), "reference")
    cases_module = _submodule(package, folder, spec.text("cases", default="cases"), "cases")
    questions = _questions(spec, package, folder, reference)
    assignment = Assignment(
        id=spec.text("id", default=folder.name),
        title=spec.text("title"),
        version=_folder_hash(folder),
        questions=questions,
        sections=_sections(spec),
        intro=spec.text("intro", default=""),
        bonus=_bonus(spec),
        limits=_limits(spec),
        seed=spec.integer("seed", default=0),
        grading=_grading(spec),
        wording=_wording(spec),
        path=folder,
        reference=reference,
        cases_module=cases_module,
    )
    _check_sections(assignment, definition_path)
    return assignment


class _Fields:
    """Typed access to a TOML table that names the field in every error."""

    def __init__(self, table: dict, path: Path, prefix: str = ""):
        self.table, self.path, self.prefix = table, path, prefix

    def _fail(self, key: str, message: str) -> AssignmentError:
        return AssignmentError(message, path=self.path, field=f"{self.prefix}{key}")

    def get(self, key: str, kind: type | tuple, default: Any = ..., what: str = "") -> Any:
        if key not in self.table:
            if default is ...:
                raise self._fail(key, "is required but missing")
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self._fail(key, f"expected {what or _kind_name(kind)}, got {value!r}")
        return value

    def text(self, key: str, default: Any = ...) -> str:
        return self.get(key, str, default)

    def integer(self, key: str, default: Any = ...) -> int:
        return self.get(key, int, default)

    def number(self, key: str, default: Any = ...) -> float:
        value = self.get(key, float, default)
        if value is not None and (not math.isfinite(value) or value < 0):
            raise self._fail(key, f"expected a finite number >= 0, got {value!r}")
        return value

    def tables(self, key: str) -> list["_Fields"]:
        items = self.get(key, list, default=[], what="a list of tables ([[...]])")
        out = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self._fail(f"{key}[{index}]", f"expected a table, got {item!r}")
            out.append(_Fields(item, self.path, f"{self.prefix}{key}[{index}]."))
        return out


def _kind_name(kind: type | tuple) -> str:
    names = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _questions(spec: _Fields, package: ModuleType, folder: Path, reference: ModuleType) -> tuple[Question, ...]:
    defaults = spec.get("defaults", dict, default={})
    default_tolerance = _tolerance(_Fields(defaults, spec.path, "defaults."), Tolerance())
    default_min_words = _Fields(defaults, spec.path, "defaults.").integer("min_words", default=0)
    questions, seen = [], set()
    for entry in spec.tables("questions"):
        question_id = entry.text("id")
        if question_id in seen:
            raise entry._fail("id", f"question id '{question_id}' is used twice")
        seen.add(question_id)
        kind = entry.text("kind")
        if kind not in QUESTION_KINDS:
            raise entry._fail("kind", f"expected one of {', '.join(QUESTION_KINDS)}, got {kind!r}")
        kind = QuestionKind(kind)
        functions = tuple(entry.get("functions", list, default=[]))
        if kind == "code" and not functions:
            raise entry._fail("functions", "a code question must name the functions it calls")
        for name in functions:
            if not isinstance(name, str) or not callable(getattr(reference, name, None)):
                raise entry._fail("functions", f"the reference module has no function {name!r}")
        variants_module = spec.text("variants", default="variants")
        variants = tuple(
            _variant(v, VariantKind.ALTERNATIVE, package, folder, functions, variants_module, question_id)
            for v in entry.tables("alternatives")
        ) + tuple(_variant(v, VariantKind.MISTAKE, package, folder, functions, variants_module, question_id)
                  for v in entry.tables("mistakes"))
        questions.append(Question(
            id=question_id,
            kind=kind,
            title=entry.text("title"),
            prompt=entry.text("prompt", default=""),
            points=entry.number("points"),
            bonus=entry.get("bonus", bool, default=False),
            section=entry.text("section", default=""),
            functions=functions,
            tolerance=_tolerance(entry, default_tolerance),
            variants=variants,
            min_words=entry.integer("min_words", default=default_min_words if kind == "written" else 0),
            rubric=tuple(_concept(c) for c in entry.tables("rubric")),
        ))
    if not questions:
        raise AssignmentError("defines no questions ([[questions]] tables)", path=spec.path, field="questions")
    return tuple(questions)


def _tolerance(entry: _Fields, default: Tolerance) -> Tolerance:
    table = entry.get("tolerance", dict, default=None)
    if table is None:
        return default
    fields_ = _Fields(table, entry.path, f"{entry.prefix}tolerance.")
    return Tolerance(rtol=fields_.number("rtol", default=default.rtol),
                     atol=fields_.number("atol", default=default.atol))


def _variant(entry: _Fields, kind: VariantKind, package: ModuleType, folder: Path, functions: tuple[str, ...],
             variants_module: str, question_id: str) -> Variant:
    """A declared variant. Named ``<function>__<what>``, its function and its implementation
    (``<variants module>:<name>``) follow from the name unless given."""
    name = entry.text("name")
    function = entry.text("function", default=name.partition("__")[0] if "__" in name else ...)
    if function not in functions:
        raise entry._fail("function", f"{function!r} is not one of the question's functions {list(functions)}")
    target = entry.text("implementation", default=f"{variants_module}:{name}")
    module_name, _, attribute = target.partition(":")
    module = _submodule(package, folder, module_name, f"{entry.prefix}implementation")
    implementation = getattr(module, attribute, None)
    if not callable(implementation):
        raise entry._fail("implementation", f"{module_name}.py has no function {attribute!r}")
    return Variant(
        name=name,
        kind=kind,
        function=function,
        message=entry.text("note" if kind is VariantKind.ALTERNATIVE else "hint"),
        implementation=implementation,
        question=question_id,
    )


def _concept(entry: _Fields) -> Concept:
    synonyms = entry.get("synonyms", list, default=[])
    if not all(isinstance(s, str) and s.strip() for s in synonyms):
        raise entry._fail("synonyms", "expected a list of non-empty texts")
    name = entry.text("concept")
    return Concept(name=name, synonyms=tuple(dict.fromkeys([name, *synonyms])))


def _sections(spec: _Fields) -> tuple[Section, ...]:
    return tuple(Section(s.text("id"), s.text("title"), s.text("text", default="")) for s in spec.tables("sections"))


def _check_sections(assignment: Assignment, path: Path) -> None:
    known = {s.id for s in assignment.sections}
    for question in assignment.questions:
        if known and question.section not in known:
            raise AssignmentError(f"section {question.section!r} of question {question.id} is not defined",
                                  path=path, field="questions.section")


def _bonus(spec: _Fields) -> BonusRule:
    table = _Fields(spec.get("bonus", dict, default={}), spec.path, "bonus.")
    rule = table.text("rule", default="all")
    if rule not in BONUS_RULES:
        raise table._fail("rule", f"expected one of {', '.join(BONUS_RULES)}, got {rule!r}")
    written = table.text("written", default="review")
    if written not in WRITTEN_MODES:
        raise table._fail("written", f"expected one of {', '.join(WRITTEN_MODES)}, got {written!r}")
    return BonusRule(rule=BonusRuleName(rule), minimum=table.integer("minimum", default=0),
                     written=WrittenMode(written), auto_min_concepts=table.integer("auto_min_concepts", default=1))


def _grading(spec: _Fields) -> Grading:
    table = _Fields(spec.get("grading", dict, default={}), spec.path, "grading.")
    return Grading(carry_forward=table.get("carry_forward", bool, default=Grading.carry_forward))


def _wording(spec: _Fields) -> Wording:
    table = _Fields(spec.get("wording", dict, default={}), spec.path, "wording.")
    return Wording(hidden_case=table.text("hidden_case", default=Wording.hidden_case),
                   transposed=table.text("transposed", default=Wording.transposed))


def _limits(spec: _Fields) -> dict:
    table = spec.get("limits", dict, default={})
    limits = {}
    for key, value in table.items():
        if key not in LIMIT_KEYS:
            raise AssignmentError(f"unknown limit; known: {', '.join(LIMIT_KEYS)}", path=spec.path, field=f"limits.{key}")
        kind = LIMIT_KEYS[key]
        if kind is list:
            limits[key] = tuple(_Fields(table, spec.path, "limits.").get(key, list))
        else:
            number = _Fields(table, spec.path, "limits.").number(key)
            limits[key] = kind(number)
    return limits


def _import_folder(folder: Path, assignment_id: str) -> ModuleType:
    """Import the assignment folder as a package, so its modules can import each other relatively."""
    name = f"_grader_assignment_{''.join(ch if ch.isalnum() else '_' for ch in assignment_id)}"
    init = folder / "__init__.py"
    if not init.exists():  # a folder without __init__.py: an empty package over it
        package = ModuleType(name)
        package.__path__ = [str(folder.resolve())]
        sys.modules[name] = package
        return package
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder.resolve())])
    assert spec is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    _exec_module(spec, package, init)
    return package


def _submodule(package: ModuleType, folder: Path, module_name: str, what: str) -> ModuleType:
    qualified = f"{package.__name__}.{module_name}"
    path = (folder / f"{module_name}.py").resolve()
    cached = sys.modules.get(qualified)
    cached_file = getattr(cached, "__file__", None)
    if cached is not None and cached_file is not None and Path(cached_file).resolve() == path:
        return cached  # the same file: reuse it (another folder with the same id must not get it)
    if not path.is_file():
        raise AssignmentError(f"{what}: no module {module_name}.py in the assignment folder", path=folder)
    spec = importlib.util.spec_from_file_location(qualified, path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    _exec_module(spec, module, path)
    return module


def _exec_module(spec: Any, module: ModuleType, path: Path) -> None:
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the instructor's code: report where it broke
        sys.modules.pop(spec.name, None)
        raise AssignmentError(f"importing it failed: {type(error).__name__}: {error}", path=path) from error


def _folder_hash(folder: Path) -> str:
    """The assignment's version: its files and grader's own code (a new grader may judge differently,
    so cached results from an older one must not be reused)."""
    digest = hashlib.sha256(_engine_fingerprint().encode())
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _engine_fingerprint() -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".j2", ".css") and "__pycache__" not in path.parts:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _validate_cases(assignment: Assignment, cases: list[Case]) -> None:
    ids = set()
    for case in cases:
        try:
            question = assignment.question(case.question)
        except KeyError:
            raise AssignmentError(f"case {case.id!r} names unknown question {case.question!r}",
                                  path=assignment.path) from None
        if case.function not in question.functions:
            raise AssignmentError(
                f"case {case.id!r}: function {case.function!r} is not listed for question {question.id}",
                path=assignment.path)
        if case.id in ids:
            raise AssignmentError(f"case id {case.id!r} is used twice", path=assignment.path)
        ids.add(case.id)

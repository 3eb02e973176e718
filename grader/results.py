"""The values that flow out of grading: frozen dataclasses with a JSON form.

Everything downstream of comparison (scoring, the gradebook, reports, exports) reads these and nothing
else. ``to_dict`` gives plain JSON-able data; ``from_dict`` reads it back (the gradebook and
``results.json`` round-trip through it).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1


class Status(enum.StrEnum):
    """Outcome of one case or one question."""

    PASSED = "passed"
    FAILED = "failed"  # ran, returned something, but not the right thing
    ERROR = "error"  # raised, or hit a resource limit (the feedback says which)
    TIMEOUT = "timeout"  # ran past its wall-clock limit and was stopped
    MISSING = "missing"  # function or written answer absent
    PENDING = "pending"  # written answer awaiting the instructor's review


class QuestionKind(enum.StrEnum):
    CODE = "code"  # functions called on cases
    WRITTEN = "written"  # a text answer


class Mode(enum.StrEnum):
    """What a grading run covers."""

    GRADE = "grade"  # public and hidden cases (the instructor's grading)
    CHECK = "check"  # public cases only (a student's self-check, CI)


class Isolation(enum.StrEnum):
    """What the sandbox actually used for a submission."""

    NAMESPACES = "namespaces"  # bubblewrap with user namespaces
    PROCESS = "process"  # resource limits only
    NONE = "none"  # nothing ran (the submission could not be read)


class CellStatus(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    SKIPPED = "skipped"


class BonusState(enum.StrEnum):
    """The bonus decision: an explicit state, never inferred from a missing value."""

    AWARDED = "awarded"
    NOT_AWARDED = "not_awarded"
    PENDING = "pending"  # answers await the instructor's review
    NOT_APPLICABLE = "not_applicable"  # the assignment has no bonus questions


class DecisionVerdict(enum.StrEnum):
    """What a person's manual decision means, for scoring and the review app alike."""

    ACCEPTED = "accepted"  # full points unless a score is given
    REJECTED = "rejected"  # zero points unless a score is given
    POINTS = "points"  # only points given: passed with any points > 0, failed with none
    OPEN = "open"  # only a comment: the question keeps its automatic verdict


# Which status wins when a question's cases disagree: the most severe one names the question.
SEVERITY = {
    Status.MISSING: 5,
    Status.TIMEOUT: 4,
    Status.ERROR: 3,
    Status.FAILED: 2,
    Status.PENDING: 1,
    Status.PASSED: 0,
}


@dataclass(frozen=True)
class ArrayDiff:
    """Where a received array differs from the expected one (shapes equal)."""

    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float
    mismatches: int  # cells outside the tolerance
    first_index: tuple[int, ...] | None  # first cell outside the tolerance
    expected: Any = None  # nested lists, only when small enough to show (<= 64 cells)
    received: Any = None
    mask: Any = None  # nested lists of bool: True where the cell is outside the tolerance

    @classmethod
    def from_dict(cls, data: dict) -> "ArrayDiff":
        data = dict(data)
        data["shape"] = tuple(data["shape"])
        data["max_abs_error"] = float(data["max_abs_error"])
        data["max_rel_error"] = float(data["max_rel_error"])
        if data.get("first_index") is not None:
            data["first_index"] = tuple(data["first_index"])
        return cls(**data)


@dataclass(frozen=True)
class CaseResult:
    """One call of a student function on one case, compared with the reference."""

    case_id: str  # e.g. "4.2b/sheet-encoder" or "4.2b/hidden-3"
    function: str
    public: bool
    status: Status
    message: str  # one line a student can act on
    details: str = ""  # more lines: expected vs received, tolerances
    diff: ArrayDiff | None = None
    matched: str | None = None  # name of the alternative convention or known mistake it matched
    hint: str | None = None  # known-mistake hint
    note: str | None = None  # alternative-convention note, or the carried-forward note
    inputs: dict[str, Any] | None = None  # public cases only: argument name -> nested lists / scalars
    input_shapes: dict[str, Any] = field(default_factory=dict)  # always: argument name -> shape
    traceback: str | None = None  # trimmed to the student's frames
    output: str = ""  # captured stdout/stderr of the call, capped
    description: str = ""  # what the case is, e.g. "the sheet's worked example" (public cases)
    candidates: tuple[str, ...] = ()  # every known mistake whose output the result equals (before resolution)
    carried_forward: tuple[str, ...] = ()  # passed given these wrong building blocks of the student's own
    precision: str = "float64"  # the precision the student computed in, as judged from the result

    @classmethod
    def from_dict(cls, data: dict) -> "CaseResult":
        data = dict(data)
        data["status"] = Status(data["status"])
        if data.get("diff") is not None:
            data["diff"] = ArrayDiff.from_dict(data["diff"])
        data["candidates"] = tuple(data.get("candidates", ()))
        data["carried_forward"] = tuple(data.get("carried_forward", ()))
        return cls(**data)


@dataclass(frozen=True)
class QuestionResult:
    """The outcome of one question of the assignment for one submission."""

    question_id: str
    kind: QuestionKind
    title: str
    status: Status
    score: float
    max_score: float
    bonus: bool  # counts for the bonus
    feedback: str  # first line is the summary; more lines follow
    cases: tuple[CaseResult, ...] = ()
    answer: str | None = None  # written questions: the student's text as written (markdown)
    suggestion: str | None = None  # written questions: provisional verdict from rubric and length
    concepts_found: tuple[str, ...] = ()  # written questions: rubric concepts seen in the answer
    manual: bool = False  # score set by a person (review or CSV import)
    comment: str | None = None  # the reviewer's comment
    flag: str | None = None  # for the instructor: e.g. passes the published cases only (a lookup table?)
    answer_note: str | None = None  # written questions: why the answer was not placed with confidence

    @classmethod
    def from_dict(cls, data: dict) -> "QuestionResult":
        data = dict(data)
        data["status"] = Status(data["status"])
        data["kind"] = QuestionKind(data["kind"])
        data["cases"] = tuple(CaseResult.from_dict(c) for c in data.get("cases", ()))
        data["concepts_found"] = tuple(data.get("concepts_found", ()))
        return cls(**data)


@dataclass(frozen=True)
class CellResult:
    """What happened when one code cell (or a whole module) ran."""

    index: int  # position among the notebook's cells (0-based, all cell types counted)
    status: CellStatus
    message: str = ""  # e.g. "NameError: name 'np' is not defined"
    traceback: str | None = None
    output: str = ""
    notes: tuple[str, ...] = ()  # e.g. "skipped shell command: !pip install torch"

    @classmethod
    def from_dict(cls, data: dict) -> "CellResult":
        data = dict(data)
        data["notes"] = tuple(data.get("notes", ()))
        data["status"] = CellStatus(data["status"])
        return cls(**data)


_AWARDED = {BonusState.AWARDED: True, BonusState.NOT_AWARDED: False}


@dataclass(frozen=True)
class BonusDecision:
    """The bonus decision, an explicit state, and why, in one sentence.

    ``awarded`` (true / false / null in JSON) is kept for readers of older results: it follows from
    the state (null for pending and for not applicable).
    """

    state: BonusState
    reason: str
    awarded: bool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        state: Any = self.state
        if state is None or isinstance(state, bool):  # the older spelling: awarded True / False / None
            state = BonusState.AWARDED if state is True else BonusState.NOT_AWARDED if state is False else \
                BonusState.NOT_APPLICABLE if "no bonus questions" in self.reason else BonusState.PENDING
        object.__setattr__(self, "state", BonusState(state))
        object.__setattr__(self, "awarded", _AWARDED.get(self.state))

    @classmethod
    def from_dict(cls, data: dict) -> "BonusDecision":
        state = data.get("state")
        if state is None:  # results written before the state existed: the older spelling
            return cls(data.get("awarded"), str(data.get("reason", "")))  # type: ignore[arg-type]
        return cls(BonusState(state), str(data.get("reason", "")))


@dataclass(frozen=True)
class ManualDecision:
    """A person's verdict on one question of one submission (review app or CSV import)."""

    question_id: str
    accepted: bool | None  # None: only points/comment given
    score: float | None  # None: full points when accepted, zero when rejected
    comment: str | None = None
    reviewer: str = ""
    decided_at: str = ""  # ISO 8601, UTC

    @property
    def verdict(self) -> DecisionVerdict:
        """The one meaning of this decision, shared by scoring and the review app."""
        if self.accepted is True:
            return DecisionVerdict.ACCEPTED
        if self.accepted is False:
            return DecisionVerdict.REJECTED
        return DecisionVerdict.POINTS if self.score is not None else DecisionVerdict.OPEN

    @property
    def decided(self) -> bool:
        """False for a comment alone: the question stays open (pending review) as it was."""
        return self.verdict is not DecisionVerdict.OPEN


@dataclass(frozen=True)
class SubmissionResult:
    """Everything grading found out about one submission."""

    student: str
    file: str  # path as given to grader (never opened again by downstream stages)
    assignment: str
    isolation: Isolation  # what the sandbox actually used
    error: str | None  # the submission could not be graded at all (unreadable file, ...)
    questions: dict[str, QuestionResult]  # in the assignment's question order
    bonus: BonusDecision
    score: float = 0.0
    max_score: float = 0.0
    cells: tuple[CellResult, ...] = ()
    mode: Mode = Mode.GRADE  # grade: public + hidden cases; check: public only
    content_hash: str = ""  # sha256 of the submission bytes
    assignment_version: str = ""  # hash of the assignment definition
    graded_at: str = ""  # ISO 8601, UTC
    duration: float = 0.0  # seconds of wall time
    participant_id: str = ""  # Moodle's participant id ("Participant <id>" in its worksheet), when known
    isolation_detail: str = ""  # what that isolation level held on the grading machine (README)

    def to_dict(self) -> dict:
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SubmissionResult":
        data = dict(data)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["questions"] = {
            qid: QuestionResult.from_dict(q) for qid, q in data.get("questions", {}).items()
        }
        data["bonus"] = BonusDecision.from_dict(data["bonus"])
        data["isolation"] = Isolation(data["isolation"])
        data["mode"] = Mode(data.get("mode", Mode.GRADE))
        data["cells"] = tuple(CellResult.from_dict(c) for c in data.get("cells", ()))
        return cls(**data)


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions whose code or written answers are suspiciously alike: a flag, not a verdict."""

    student_a: str
    student_b: str
    kind: str  # "code" or "answer <question id>"
    similarity: float  # 0..1 (Jaccard of fingerprints, template passages removed)
    passages: tuple[tuple[str, str], ...] = ()  # shared passages: (text in a, text in b)


def plain(value: Any) -> Any:
    """Dataclasses, enums and tuples as JSON-able values (faster than asdict, which deep-copies)."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "nan": strict JSON has no such numbers
    return value


def results_document(assignment: str, results: list[SubmissionResult]) -> dict:
    """The ``results.json`` document (schema documented in the README)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "assignment": assignment,
        "submissions": [r.to_dict() for r in results],
    }

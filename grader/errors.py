"""The errors grader raises, written for the person who reads them.

Student failures (a crash, a timeout, a wrong shape) are *results*, not exceptions: they live on the
dataclasses in :mod:`grader.results`. The exceptions here are for the people running grader: an
instructor whose assignment definition has a bad field, a file that is not a submission at all, a
sandbox that cannot be started.
"""

from __future__ import annotations

from .text import clean


class GraderError(Exception):
    """Base class: every error grader raises on purpose derives from it.

    ``str(error)`` is a complete sentence the reader can act on; the CLI prints it as is.
    """


class AssignmentError(GraderError):
    """An assignment definition under ``reference/`` is missing or invalid."""

    def __init__(self, message: str, *, path: object = None, field: str | None = None):
        self.path = path
        self.field = field
        where = f"{path}: " if path else ""
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}{what}{message}")


class SubmissionError(GraderError):
    """A file cannot be read as a submission (not a notebook, empty, too large, corrupt archive).

    Costs only that submission: the batch records the message and goes on.
    """

    def __init__(self, message: str, *, path: object = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class SandboxError(GraderError):
    """The sandbox could not be started or was not strong enough for what was asked."""


class ConfigError(GraderError):
    """A command-line option or configuration value is invalid."""


class GradebookError(GraderError):
    """The gradebook file cannot be opened or upgraded, or an import file holds bad data."""


def failure_reason(error: BaseException) -> str:
    """The kind of failure in a few plain words, e.g. "it contains or produced a number too large to handle"."""
    detail = clean(str(error)).splitlines()[0][:200] if str(error).strip() else ""
    if isinstance(error, UnicodeError):
        what = "it contains text that cannot be stored (such as a lone surrogate character)"
    elif isinstance(error, OverflowError) or "digits" in detail:
        what = "it contains or produced a number too large to handle"
    elif isinstance(error, RecursionError):
        what = "it contains or produced data nested too deeply"
    elif isinstance(error, MemoryError):
        what = "grading it needed more memory than the grader allows"
    else:
        what = f"an unexpected {type(error).__name__} occurred" + (f" ({detail})" if detail else "")
    return what

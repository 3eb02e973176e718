"""grader: autograder for numeric Python and Jupyter assignments.

Student code runs only in a sandbox (bubblewrap namespaces where available); reference code,
expected values and the comparison stay in this process. The handful of names below is the public
library surface; the command line (`grader.cli`) is a thin layer over them. Names are imported on
first use, so `grader check` and the sandbox worker pay only for what they touch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "check": "api", "grade_many": "api", "grade_submission": "api",
    "Assignment": "assignment", "Case": "assignment", "load_assignment": "assignment", "load_bundle": "bundle",
    "AssignmentError": "errors", "GraderError": "errors", "SandboxError": "errors", "SubmissionError": "errors",
    "BonusDecision": "results", "BonusState": "results", "CaseResult": "results", "QuestionResult": "results", "Status": "results",
    "SubmissionResult": "results",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'grader' has no attribute {name!r}")

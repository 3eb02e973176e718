"""The sandbox: runs untrusted cells and calls in a warm, forked, bubblewrapped worker.

Only raw outputs come back (numbers, arrays, errors); verdicts are made elsewhere.
"""

from grader.sandbox.runner import (
                                   Call,
                                   CallOutcome,
                                   CellOutcome,
                                   CellSource,
                                   ErrorInfo,
                                   Job,
                                   JobOutcome,
                                   Limits,
                                   Sandbox,
                                   Unconvertible,
                                   available_isolation,
)

__all__ = ["Sandbox", "Limits", "Job", "CellSource", "Call", "JobOutcome", "CellOutcome",
           "CallOutcome", "ErrorInfo", "Unconvertible", "available_isolation"]

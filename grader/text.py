"""Untrusted text made safe where it enters: for storing (UTF-8) and for showing on a terminal.

Text from a student (a notebook's JSON, a file name, what the sandbox sends back) may hold lone
surrogates such as ``\\ud800``: Python accepts them in a ``str``, but no UTF-8 file, SQLite row or
terminal can take them, and one of them used to stop a whole batch when the results were written.
:func:`clean` replaces them with U+FFFD at the point the text enters, so everything downstream may
assume encodable text. :func:`for_terminal` also makes control characters visible, so printing a
student's message never sends escape sequences to the instructor's or student's terminal.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: a JSON text that can decode to a lone surrogate holds a \uD800-\uDFFF escape (raw UTF-8 cannot)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F]")
# C0 controls but tab and newline, DEL, C1 controls, and the bidi overrides that reorder what is shown
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (cheap when there is none)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(REPLACEMENT, text)
    return text


def may_hold_surrogates(raw: bytes | str) -> bool:
    """Whether JSON text ``raw`` can decode to a lone surrogate (an escape in the D800-DFFF range)."""
    if isinstance(raw, str):
        return _SURROGATE_ESCAPE_TEXT.search(raw) is not None
    return _SURROGATE_ESCAPE.search(raw) is not None


def clean_tree(value: Any) -> Any:
    """Every string (keys too) in a tree of dicts and lists from ``json.loads``, cleaned; no recursion."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, str):
            container[key] = clean(item)
        elif isinstance(item, list):
            stack.extend((item, i) for i in range(len(item)))
        elif isinstance(item, dict):
            if any(isinstance(k, str) and clean(k) is not k for k in item):
                fixed = {clean(k) if isinstance(k, str) else k: v for k, v in item.items()}
                item.clear()
                item.update(fixed)
            stack.extend((item, k) for k in item)
    return root[0]


def for_terminal(text: str) -> str:
    """``text`` safe to print: surrogates replaced, control characters shown as ``\\x1b`` etc."""
    text = clean(str(text))
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def cut(text: str, limit: int, what: str = "characters") -> str:
    """At most about ``limit`` characters of ``text``, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more {what} cut: this submission's limit was reached]"


class TextBudget:
    """A per-submission allowance of characters, shared by every piece of text that draws on it.

    One cell's output is already capped by the sandbox; this caps their *sum*, so thousands of
    cells each printing their maximum can no longer make a result of hundreds of megabytes.
    """

    def __init__(self, limit: int, what: str):
        self.left, self.limit, self.what = limit, limit, what
        self.said = False

    def take(self, text: str) -> str:
        """As much of ``text`` as the allowance has left; the first cut says so, later ones are silent."""
        if len(text) <= self.left:
            self.left -= len(text)
            return text
        kept, self.left = text[:self.left], 0
        if self.said:
            return kept
        self.said = True
        return kept + (f"\n[... {len(text) - len(kept)} more characters dropped, and all that follows: this "
                       f"submission's {self.what} reached its limit of {self.limit} characters in total]")

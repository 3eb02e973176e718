"""`mypy grader` at mypy's default strictness reports nothing (issue 10 §7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean():
    pytest.importorskip("mypy", reason="mypy is part of the [test] extras: pip install -e '.[test]'")
    cache = ROOT / ".mypy_cache"
    result = subprocess.run([sys.executable, "-m", "mypy", "grader", "--cache-dir", str(cache)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout

"""Shared fixtures: the real headless Chromium, and skip-unless-CI for what this machine lacks."""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs what this machine lacks; on CI (``CI`` set) that is a failure instead."""
    if os.environ.get("CI"):
        pytest.fail(f"required on CI: {reason}")
    pytest.skip(reason)


def browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install playwright; never 'playwright install')"
    return None


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, headless, driven by Playwright (which never downloads a browser of its own)."""
    missing = browser_missing()
    if missing:
        skip_or_fail(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests keep screenshots for a person to look at (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def see_current_packages(venv: Path) -> None:
    """Let a new venv import what this interpreter has (numpy, nbformat, …) without an index, whether
    or not this interpreter is itself a venv: `--system-site-packages` gives the base Python's only."""
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "grader-test-host.pth").write_text("\n".join(sorted(paths)) + "\n")

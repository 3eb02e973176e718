"""The reports in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Screenshots go to ``tests/artifacts/`` (gitignored) for a person to look at. Without the browser or
Playwright the tests skip, except on CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
import report_fixtures as fx

from grader.report import write_html_reports

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The fixtures' reports, served over HTTP on 127.0.0.1."""
    out = tmp_path_factory.mktemp("site")
    results = fx.all_fixtures() + fx.cohort(30)
    write_html_reports(results, fx.assignment(), out, fx.similar_pairs())
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def browser(chromium):
    return chromium


@pytest.fixture
def page(browser):
    """A fresh page that records console errors, page errors and dialogs (alert() must never fire)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (page.problems.append(f"dialog: {d.message}"), d.dismiss()))
    yield page
    context.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _student_column(page) -> list[str]:
    return page.locator("#students tbody tr:not([hidden]) td:first-child").all_inner_texts()


def test_overview_loads_sorts_and_filters(page, site):
    page.goto(f"{site}/index.html")
    page.wait_for_load_state("load")
    assert page.problems == []
    _shot(page, "overview-desktop.png")

    original = _student_column(page)
    assert len(original) == 39

    page.get_by_role("button", name="Points").click()
    scores = [float(v) for v in page.locator("#students tbody tr td:nth-child(3)").evaluate_all(
        "cells => cells.map(c => c.getAttribute('data-value'))")]
    assert scores == sorted(scores)
    assert page.locator("#students th:nth-child(3)").get_attribute("aria-sort") == "ascending"
    page.get_by_role("button", name="Points").click()
    scores = [float(v) for v in page.locator("#students tbody tr td:nth-child(3)").evaluate_all(
        "cells => cells.map(c => c.getAttribute('data-value'))")]
    assert scores == sorted(scores, reverse=True)

    page.get_by_role("button", name="Student").click()
    assert _student_column(page) == sorted(original, key=str.lower)
    page.get_by_role("button", name="Student").click()
    assert _student_column(page) == sorted(original, key=str.lower, reverse=True)

    page.select_option("#status-filter", "status-error")
    shown = _student_column(page)
    assert shown and len(shown) < len(original)
    assert all("Error" in t for t in page.locator("#students tbody tr:not([hidden]) td:nth-child(2)").all_inner_texts())
    assert "finn.s" in shown and "anna.k" not in shown
    assert page.locator("#row-count").inner_text() == f"Showing {len(shown)} of {len(original)} submissions"

    page.select_option("#status-filter", "")
    page.fill("#name-filter", "gina")
    assert _student_column(page) == ["gina.t"]
    assert page.problems == []


def test_overview_works_without_javascript(browser, site):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{site}/index.html")
    assert page.locator("#students tbody tr").count() == 39
    assert not page.locator("#filters").is_visible()  # controls that need JS stay out of the way
    context.close()


def test_student_report_shows_the_bonus_sentence(page, site):
    page.goto(f"{site}/ben.m.html")
    bonus = page.locator("#bonus")
    assert bonus.is_visible()
    assert "Bonus awarded: all six required answers accepted" in bonus.inner_text()
    assert page.locator("td.bad").count() == 4
    assert page.problems == []
    _shot(page, "student-wrong-matrix-desktop.png")
    page.goto(f"{site}/carl.o.html")
    _shot(page, "student-errors-desktop.png")
    assert page.problems == []


def test_student_script_does_not_run(page, site):
    page.goto(f"{site}/eve.x.html")
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0
    assert page.get_by_text("<script>window.__pwned = 1; alert(1)</script>").is_visible()
    page.get_by_text("Core idea of PEFT").first.click()
    assert [p for p in page.problems if p.startswith("dialog")] == []
    assert page.problems == []


@pytest.mark.parametrize("name", ["index.html", "ben.m.html", "carl.o.html", "finn.s.html", "gina.t.html"])
def test_phone_layout_has_no_horizontal_page_scroll(browser, site, name):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(f"{site}/{name}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} scrolls sideways ({width}px)"
    _shot(page, f"phone-{name.replace('.html', '')}.png")
    context.close()


def test_print_layout_renders(page, site):
    page.emulate_media(media="print")
    page.goto(f"{site}/ben.m.html")
    assert not page.locator("#filters").count()
    _shot(page, "print-student.png")
    pdf = page.pdf(format="A4")
    assert pdf[:4] == b"%PDF"
    (ARTIFACTS / "print-student.pdf").write_bytes(pdf)

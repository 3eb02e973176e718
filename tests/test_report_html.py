"""The HTML reports: every fixture renders, student text is inert, hidden values stay hidden."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest
import report_fixtures as fx

from grader.report import render_index, render_submission, safe_filename, write_html_reports
from grader.report.html import bonus_sentence, matrix_html, render_markdown
from grader.results import BonusDecision

BUILDERS = [fx.perfect, fx.wrong_matrix, fx.errors_and_timeouts, fx.missing_function, fx.pending, fx.malicious,
            fx.unreadable, fx.reduced_isolation, fx.hidden_values]


class _Collector(HTMLParser):
    """Tags, attributes and text of a page, as a browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


@pytest.fixture(scope="module")
def assignment():
    return fx.assignment()


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_every_fixture_renders_a_complete_page(build, assignment):
    result = build()
    html = render_submission(result, assignment)
    page = parse(html)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    text = " ".join(page.text)
    assert result.student in text
    assert assignment.title in text
    assert bonus_sentence(result) in text
    # no external assets: nothing is loaded from anywhere
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"(?i)\s*(https?:|//|javascript:)", value) or tag == "a", (tag, attrs)
        assert tag not in ("link",) or attrs.get("href") == "data:,"
    # student pages need no script at all, and their CSP forbids any
    assert page.scripts == []
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "script-src 'none'" in csp and "default-src 'none'" in csp


def test_points_per_section_and_total_are_shown(assignment):
    text = " ".join(parse(render_submission(fx.wrong_matrix(), assignment)).text)
    assert "10 / 12 points" in " ".join(text.split())
    assert "4. Implementing it (not required for the bonus)" in text
    assert "4 / 6" in text  # section 4: 1 + 1 + 1 + 0 + 1 of 6


@pytest.mark.parametrize("awarded, lead", [(True, "Bonus awarded"), (False, "Bonus not awarded"), (None, "Bonus pending")])
def test_bonus_sentence_is_one_sentence_with_reason(awarded, lead, assignment):
    result = replace(fx.perfect(), bonus=BonusDecision(awarded, "all six required answers accepted"))
    assert bonus_sentence(result) == f"{lead}: all six required answers accepted"
    html = render_submission(result, assignment)
    assert f"{lead}: all six required answers accepted" in html


def test_bonus_reason_that_is_already_a_sentence_is_not_prefixed():
    result = fx.missing_function()
    assert bonus_sentence(result) == "Not yet: 2.3 is unanswered"


def test_wrong_matrix_shows_both_matrices_marked_figures_hint_and_inputs(assignment):
    html = render_submission(fx.wrong_matrix(), assignment)
    assert html.count('class="bad"') == 4  # two differing cells, marked in expected and received
    assert "0.9152" in html and "0.5152" in html
    assert "Max abs error" in html and "0.4" in html and "0.776" in html
    assert "without the second residual" in html
    assert "Inputs of this case" in html
    assert "Computed in float32: accepted" in html  # the note of a passed alternative convention
    assert "(differs)" in html  # marked for screen readers, not by colour alone


def test_errors_timeouts_tracebacks_and_cells(assignment):
    html = render_submission(fx.errors_and_timeouts(), assignment)
    assert "ValueError: matmul" in html and 'class="traceback"' in html
    assert "more characters not shown" in html  # 400 lines of captured output are capped
    assert "Timed out" in html and "stopped after 10 s" in html
    assert "skipped shell command: !pip install torch" in html
    assert "SyntaxError: invalid syntax" in html
    assert "Cell 2" not in html  # cells that ran fine are not listed


def test_missing_function_shows_the_suggestion(assignment):
    html = render_submission(fx.missing_function(), assignment)
    assert "Did you mean lora_proj?" in html
    assert "No answer found" in html


def test_submission_error_is_a_clear_box(assignment):
    html = render_submission(fx.unreadable(), assignment)
    assert 'role="alert"' in html and "could not be graded" in html
    assert "not valid JSON" in html
    assert "Not graded" in html


def test_isolation_level_is_stated(assignment):
    assert "full isolation (bubblewrap namespaces)" in render_submission(fx.perfect(), assignment)
    html = render_submission(fx.reduced_isolation(), assignment)
    assert "Reduced isolation" in html and "reduced isolation" in html


def test_student_html_is_escaped_and_inert(assignment):
    html = render_submission(fx.malicious(), assignment)
    page = parse(html)
    assert "&lt;script&gt;window.__pwned = 1" in html
    assert all(tag != "img" for tag, _ in page.tags)
    assert all("onerror" not in attrs for _, attrs in page.tags)
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    assert not any((attrs.get("href") or "").lower().startswith("javascript:") for _, attrs in page.tags)
    assert "<b>not bold</b>" not in html  # the reviewer comment is text too
    assert "<strong>bold</strong>" in html  # but markdown still works


def test_markdown_rendering_drops_dangerous_links_and_images():
    out = str(render_markdown('[x](javascript:alert(1)) [y](JAVASCRIPT:alert(1)) [z](data:text/html,<b>) '
                              '![i](http://example.org/i.png) <a href="javascript:x">a</a>'))
    tags = parse(out).tags
    hrefs = [attrs.get("href", "") for tag, attrs in tags if tag == "a"]
    assert hrefs == ["http://example.org/i.png"]  # the image became a plain link; nothing else is a link
    assert all(tag in ("p", "a") for tag, _ in tags)
    assert "&lt;a href=&quot;javascript:x&quot;&gt;" in out  # raw HTML shown as text


def test_hidden_case_values_never_appear(assignment):
    html = render_submission(fx.hidden_values(), assignment)
    for marker in (fx.HIDDEN_MARKER, fx.HIDDEN_MARKER + 1, fx.HIDDEN_INPUT_MARKER):
        for text in (str(marker), f"{marker:.4f}", f"{marker:.3e}".replace("-", "−"), f"{marker:.3e}"):
            assert text not in html
    assert "Hidden case: inputs are not shown" in html
    assert "2 × 7" in html and "7 × 4" in html  # shapes are shown, as shapes
    assert "Expected</h4>" not in html


def test_index_lists_everyone_flags_and_charts(assignment):
    results = fx.all_fixtures()
    html = render_index(results, assignment, fx.similar_pairs())
    page = parse(html)
    links = {attrs["href"] for tag, attrs in page.tags if tag == "a" and "href" in attrs}
    assert {f"{safe_filename(r.student)}.html" for r in results} <= links
    rows = [attrs for tag, attrs in page.tags if tag == "tr" and "data-tags" in attrs]
    assert len(rows) == len(results)
    assert html.count("<svg") == 2
    text = " ".join(" ".join(page.text).split())
    assert "Look at these first" in text
    for flagged in ("carl.o", "finn.s", "gina.t"):
        assert re.search(rf'<li><a href="{flagged}.html">', html)
    assert "ran with reduced isolation (process)" in text
    assert "missing-ffn-residual" in text  # most common known mistake, counted once per submission
    assert re.search(r"missing-ffn-residual.*?<td class=\"num\">1</td>", html, re.DOTALL)
    assert "flags, not verdicts" in text and "82% similar" in text
    assert "<script>alert(9)</script>" not in html and "&lt;script&gt;alert(9)" in html


def test_index_script_is_allowed_by_hash_only(assignment):
    html = render_index(fx.all_fixtures(), assignment)
    page = parse(html)
    assert len(page.scripts) == 1
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", csp) and "unsafe-inline'; img" not in csp.split("script-src")[1]


def test_index_of_no_submissions_renders(assignment):
    assert "0 submissions" in render_index([], assignment)


def test_matrix_html_handles_shapes():
    assert matrix_html(3.0).count("<td") == 1
    assert matrix_html([1.0, 2.0]).count("<td") == 2
    assert matrix_html([[[1.0], [2.0]], [[3.0], [4.0]]]).count("<table") == 2
    assert "too large" in matrix_html([[0.0] * 30] * 30)


@pytest.mark.parametrize("student", ["../x", "a b", "Jürgen Weiß", "index", "CON", "..", "", "a/b\\c", "x" * 300])
def test_safe_filenames(student):
    name = safe_filename(student)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name), name
    assert ".." not in name and len(name) <= 80
    assert name.lower() not in ("index", "con")


def test_safe_filenames_never_collide():
    ids = ["a b", "a_b", "a/b", "Jürgen", "Jurgen", "../x", "x"]
    assert len({safe_filename(s) for s in ids}) == len(ids)
    assert safe_filename("anna.k") == "anna.k"


def test_write_html_reports_stays_inside_out_dir(tmp_path, assignment):
    results = [replace(fx.perfect(), student=s) for s in ("../escape", "a b", "Jürgen Weiß")]
    out = tmp_path / "reports"
    paths = write_html_reports(results, assignment, out)
    assert paths[0] == out / "index.html"
    assert len(paths) == 4
    for path in paths:
        assert path.parent == out and path.is_file()
    assert not (tmp_path / "escape.html").exists()
    index = (out / "index.html").read_text(encoding="utf-8")
    for path in paths[1:]:
        assert f'href="{path.name}"' in index

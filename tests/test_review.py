"""The review app: rubric matching, grouping and suggestions, the HTTP guards, and a real headless Chromium.

Browser tests skip without Debian's chromium or the playwright package, except on CI (``CI`` set),
where a missing browser is a failure. The screenshot lands in ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest
import review_fixtures as fx

from grader.review import find_concepts, group_answers, serve_review, suggest
from grader.review.server import render_answer
from grader.store import Gradebook

ARTIFACTS = Path(__file__).parent / "artifacts"
A = fx.ASSIGNMENT_ID


@pytest.fixture(scope="module")
def course():
    return fx.build_course(120)


@pytest.fixture
def review(tmp_path, course):
    """A gradebook with two runs of the course and the review server on it."""
    path = tmp_path / "gradebook.sqlite"
    with Gradebook(path) as book:
        for results in (course.results, fx.second_run(course)):
            run = book.start_run(A, "v1", "grade")
            for result in results:
                book.record(run, result)
            book.finish_run(run)
    called: list[str] = []

    def provider():
        with Gradebook(path) as book:
            return book.latest_results(A)

    server = serve_review(path, course.assignment, provider, on_decision=called.append).start()
    try:
        yield server, path, called
    finally:
        server.shutdown()


# --------------------------------------------------------------------------- without a browser


def test_concepts_are_found_case_insensitive_on_word_boundaries(course):
    rubric = course.assignment.question("2.1").rubric
    text = "The backbone is FROZEN; only a Small Number of Parameters\nis trained. Unfrozen? defrozen."
    names = [rubric[n].name for _, _, n in find_concepts(text, rubric)]
    assert names == ["frozen", "few parameters"]
    assert [rubric[n].name for _, _, n in find_concepts("it freezes the model", rubric)] == ["frozen"]


def test_suggestion_from_rubric_and_length(course):
    question = course.assignment.question("2.1")
    full = "The model stays frozen and only a small number of parameters is trained for the downstream task. " * 2
    found = {n for _, _, n in find_concepts(full, question.rubric)}
    assert suggest(question, full, found).verdict == "accept"
    assert suggest(question, "frozen.", {0}).verdict == "reject"  # far too short
    partly = "We freeze most of the network weights and then train something small on top of it, " \
             "which is cheaper than training everything again from scratch for every single new use case."
    found = {n for _, _, n in find_concepts(partly, question.rubric)}
    assert suggest(question, partly, found).verdict == "check"
    assert suggest(question, "", set()).reason == "no answer"


def test_rendering_escapes_html_and_highlights(course):
    html = render_answer("It is <script>alert(1)</script> **frozen** `frozen`", course.assignment.question("2.1").rubric)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<strong><mark class="c0" title="frozen">frozen</mark></strong>' in html
    assert "<code>frozen</code>" in html  # code is shown as written
    assert "<img" not in render_answer("![x](http://example.com/track.png)", ())


def test_grouping_near_identical_answers(course):
    answers = {s: course.answers[s]["2.1"] for s in course.answers}
    groups = group_answers(answers)
    assert sorted(course.answer_ring) in [sorted(g) for g in groups]
    a, b, _ = course.answer_twins[0]
    assert any(a in g and b in g for g in groups)
    assert sum(len(g) for g in groups) == len(answers)
    assert len(groups) > 0.8 * len(answers)  # most answers stand alone


def _request(server, method, path, host=None, headers=None, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest(method, path, skip_host=True)
    connection.putheader("Host", f"127.0.0.1:{server.port}" if host is None else host)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    data = json.dumps(body).encode() if body is not None else b""
    connection.putheader("Content-Length", str(len(data)))
    connection.endheaders(data)
    response = connection.getresponse()
    return response.status, response.read().decode()


def test_foreign_host_header_is_refused(review):
    server, _, _ = review
    assert _request(server, "GET", "/q/2.1")[0] == 200
    assert _request(server, "GET", "/q/2.1", host=f"localhost:{server.port}")[0] == 200
    for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1:1", ""):
        status, body = _request(server, "GET", "/q/2.1", host=host)
        assert (status, body) == (403, "forbidden host\n")


def test_posts_need_the_token(review, course):
    server, path, called = review
    student = course.results[0].student
    body = {"question": "2.1", "students": [student], "action": "accept"}
    json_type = {"Content-Type": "application/json"}
    assert _request(server, "POST", "/api/decision", headers=json_type, body=body)[0] == 403
    assert _request(server, "POST", "/api/decision", headers={**json_type, "X-Review-Token": "guess"}, body=body)[0] == 403
    token = server.app.token
    cross = {**json_type, "X-Review-Token": token, "Origin": "http://evil.example"}
    assert _request(server, "POST", "/api/decision", headers=cross, body=body)[0] == 403
    with Gradebook(path) as book:
        assert book.all_decisions(A) == {}
    good = {**json_type, "X-Review-Token": token}
    status, answer = _request(server, "POST", "/api/decision", headers=good, body=body)
    assert status == 200 and json.loads(answer)["decision"]["state"] == "accepted"
    assert called == [student]
    bad = {**body, "action": "points", "score": 7}
    status, answer = _request(server, "POST", "/api/decision", headers=good, body=bad)
    assert status == 400 and "between 0 and 2" in answer
    status, answer = _request(server, "POST", "/api/decision", headers=good, body={**body, "students": ["ghost"]})
    assert status == 400


def test_serves_only_loopback(tmp_path, course):
    with pytest.raises(ValueError, match="127.0.0.1 only"):
        serve_review(tmp_path / "gb.sqlite", course.assignment, list, host="0.0.0.0")


# --------------------------------------------------------------------------- in Chromium


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _card(page, student):
    return page.locator(f".card[data-students*='\"{student}\"']")


@pytest.mark.browser
def test_review_by_keyboard_persists(review, page, course):
    server, path, called = review
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    assert page.url.endswith("/q/2.1")
    cards = page.locator(".card")
    first, second, third = (json.loads(cards.nth(i).get_attribute("data-students")) for i in range(3))
    assert len(first) == len(course.answer_ring)  # the ring of four comes first, as one card
    total_before = page.locator("#progress-text").inner_text()

    page.keyboard.press("a")  # accept the group: four students at once
    page.wait_for_selector("#card-0.accepted")
    assert page.locator("#card-1").get_attribute("class").count("current")  # moved on
    page.keyboard.press("1")  # one point for the second card
    page.wait_for_selector("#card-1.points")
    page.keyboard.press("c")
    page.keyboard.type("Names the idea, but no word on what is trained.")
    page.keyboard.press("Enter")
    expect(page.locator("#card-1 .comment")).to_contain_text("no word")
    page.keyboard.press("j")
    page.keyboard.press("r")
    page.wait_for_selector("#card-2.rejected")
    assert page.locator("#progress-text").inner_text() != total_before
    decided = len(first) + len(second) + len(third)
    assert page.locator("#progress-text").inner_text().startswith(f"{decided} / ")

    page.reload()
    assert "accepted" in page.locator("#card-0 .state").inner_text()
    assert page.locator("#card-1 .state").inner_text() == "1/2 points"
    assert "no word on what" in page.locator("#card-1 .comment").inner_text()
    assert "rejected" in page.locator("#card-2 .state").inner_text()

    with Gradebook(path) as book:
        decisions = book.all_decisions(A)
    assert all(decisions[s]["2.1"].accepted is True for s in first)
    assert all(decisions[s]["2.1"].score == 1.0 and "no word" in decisions[s]["2.1"].comment for s in second)
    assert all(decisions[s]["2.1"].accepted is False for s in third)
    assert set(called) == set(first) | set(second) | set(third)
    assert not errors


@pytest.mark.browser
def test_script_in_an_answer_does_not_run(review, page, course):
    server, _, _ = review
    page.goto(server.url + "q/2.2")
    card = _card(page, course.script_student)
    assert "<script>window.__pwned" in card.locator(".answer").inner_text()  # shown as text
    assert page.evaluate("window.__pwned === undefined") and page.title() != "pwned"
    assert card.locator(".answer mark").count() >= 2  # memory, faster training


@pytest.mark.browser
def test_screenshot_for_a_person_to_judge(review, page, course):
    server, _, _ = review
    page.goto(server.url + "q/3.1")
    _card(page, course.markdown_student).scroll_into_view_if_needed()
    page.keyboard.press("a")
    page.wait_for_selector(".card.accepted")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review.png"))
    assert (ARTIFACTS / "review.png").stat().st_size > 10_000

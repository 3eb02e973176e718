"""The review app: rubric matching, grouping and suggestions, the HTTP guards, and a real headless Chromium.

Browser tests skip without Debian's chromium or the playwright package, except on CI (``CI`` set),
where a missing browser is a failure. The screenshot lands in ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import review_fixtures as fx

from grader.course import rerender
from grader.course.review import Rerenderer
from grader.results import ManualDecision
from grader.review import find_concepts, group_answers, serve_review, suggest
from grader.review.notebook import NOTEBOOK_CSP
from grader.review.server import render_answer
from grader.score import apply_decisions, count_words, score_written_question
from grader.store import Gradebook, import_decisions

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

    with Gradebook(path) as book:  # notebooks kept for a few students, one of them hostile
        for result in book.latest_results(A):
            if result.student in (course.script_student, course.markdown_student, *course.answer_ring):
                notebook = tmp_path / f"{result.student}.ipynb"
                notebook.write_bytes(fx.handed_in_notebook(course, result.student,
                                                           hostile=result.student == course.script_student))
                assert book.keep_handed_in(result.content_hash, notebook)
    server = serve_review(path, course.assignment, provider, on_decision=called.append,
                          reports_dir=tmp_path / "reports").start()
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


def _auth(server) -> dict:
    return {"Authorization": f"token {server.app.token}"}


def _request(server, method, path, host=None, headers=None, body=None, auth=True):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.putrequest(method, path, skip_host=True)
    connection.putheader("Host", f"127.0.0.1:{server.port}" if host is None else host)
    for name, value in {**(_auth(server) if auth else {}), **(headers or {})}.items():
        connection.putheader(name, value)
    data = json.dumps(body).encode() if body is not None else b""
    connection.putheader("Content-Length", str(len(data)))
    connection.endheaders(data)
    response = connection.getresponse()
    answer = response.status, response.read().decode()
    connection.close()
    return answer


def _decide(server, body, headers=None, **kwargs):
    status, answer = _request(server, "POST", "/api/decision", body=body,
                              headers={"Content-Type": "application/json", **(headers or {})}, **kwargs)
    return status, json.loads(answer)


def test_foreign_host_header_is_refused(review):
    server, _, _ = review
    assert _request(server, "GET", "/q/2.1")[0] == 200
    assert _request(server, "GET", "/q/2.1", host=f"localhost:{server.port}")[0] == 200
    for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1:1", ""):
        status, body = _request(server, "GET", "/q/2.1", host=host)
        assert (status, body) == (403, "forbidden host\n")


def test_every_request_needs_the_secret(review, course):
    """Reads too: without the secret every page, the notebook view and the API answer 403."""
    server, path, _ = review
    student = course.results[0].student
    for target in ("/", "/q/2.1", f"/notebook/{student}", f"/reports/{student}.html", "/q/none", "/favicon.ico"):
        assert _request(server, "GET", target, auth=False)[0] == 403, target
        assert _request(server, "GET", target, auth=False, headers={"Authorization": "token guess"})[0] == 403
        assert _request(server, "GET", target + "?token=guess", auth=False)[0] == 403
    body = {"question": "2.1", "students": [student], "action": "accept"}
    assert _decide(server, body, auth=False)[0] == 403
    assert _decide(server, body, auth=False, headers={"Content-Type": "application/json",
                                                      "X-Review-CSRF": server.app.csrf})[0] == 403
    page = _request(server, "GET", "/q/2.1", auth=False)[1]
    assert student not in page and "forbidden" in page
    with Gradebook(path) as book:
        assert book.all_decisions(A) == {}


def test_the_token_url_gives_a_cookie(review, course):
    """Like Jupyter: the printed URL carries the token once; the cookie carries it on."""
    server, _, _ = review
    assert server.login_url == f"http://127.0.0.1:{server.port}/?token={server.app.token}"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("GET", f"/q/2.2?token={server.app.token}", headers={"Host": f"127.0.0.1:{server.port}"})
    response = connection.getresponse()
    response.read()
    assert response.status == 303 and response.getheader("Location") == "/q/2.2"  # the token leaves the address
    cookie = response.getheader("Set-Cookie")
    assert cookie.startswith(f"grader-review-{server.port}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert server.app.token not in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    status, page = _request(server, "GET", "/q/2.2", auth=False, headers=jar)
    assert status == 200 and course.script_student in page
    assert server.app.token not in page  # the page holds only the CSRF value, never the login secret
    other_port = {"Cookie": cookie.split(";")[0].replace(f"-{server.port}=", "-1=")}
    assert _request(server, "GET", "/q/2.2", auth=False, headers=other_port)[0] == 403
    # a POST with the cookie also needs the page's CSRF value (another site can send the cookie's request,
    # never read the page) and, when the browser names one, a same-origin Origin
    student = course.results[1].student
    body = {"question": "2.1", "students": [student], "action": "accept", "reviewer": "mallory"}
    json_type = {"Content-Type": "application/json", **jar}
    assert _decide(server, body, auth=False, headers=json_type)[0] == 403
    assert server.app.csrf in page
    good = {**json_type, "X-Review-CSRF": server.app.csrf}
    assert _decide(server, body, auth=False, headers={**good, "Origin": "http://evil.example"})[0] == 403
    status, answer = _decide(server, body, auth=False, headers={**good, "Origin": f"http://127.0.0.1:{server.port}"})
    assert status == 200 and answer["decision"]["state"] == "accepted"


def test_decisions_and_the_reviewer_come_from_the_server(review, course):
    server, path, called = review
    student = course.results[0].student
    body = {"question": "2.1", "students": [student], "action": "accept", "reviewer": "mallory"}
    status, answer = _decide(server, body)
    assert status == 200 and answer["decision"]["state"] == "accepted"
    assert called == [student]
    with Gradebook(path) as book:
        assert book.decisions(A, student)["2.1"].reviewer == server.app.reviewer != "mallory"
    status, answer = _decide(server, {**body, "action": "points", "score": 7})
    assert status == 400 and "between 0 and 2" in answer["error"]
    assert _decide(server, {**body, "action": "points", "score": True})[0] == 400
    assert _decide(server, {**body, "students": ["ghost"]})[0] == 400
    assert _decide(server, {**body, "question": "4.1a"})[0] == 400  # a code question is not reviewed here
    assert _decide(server, {**body, "action": "drop table"})[0] == 400


def _raw(server, request: bytes, half_close: bool = False, timeout: float = 60) -> bytes:
    """Send raw bytes, read the whole answer (the server closes the connection after an error)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)  # "that is all": a short body is short, not slow
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _post_head(server, length_lines: str, extra: str = "") -> bytes:
    return (f"POST /api/decision HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: token {server.app.token}\r\nContent-Type: application/json\r\n"
            f"{length_lines}{extra}\r\n").encode()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_bad_and_short_content_length(review, course):
    server, path, _ = review
    body = json.dumps({"question": "2.1", "students": [course.results[0].student], "action": "accept"}).encode()
    cases = {
        "": 411,  # none
        "Content-Length: abc\r\n": 400,
        "Content-Length: -5\r\n": 400,
        "Content-Length: 1e3\r\n": 400,
        f"Content-Length: {len(body)}\r\nContent-Length: {len(body) + 1}\r\n": 400,
        "Transfer-Encoding: chunked\r\n": 411,
        "Content-Length: 0\r\n": 400,
    }
    for lines, expected in cases.items():
        answer = _raw(server, _post_head(server, lines) + body, half_close=True)
        assert _status(answer) == expected, (lines, answer[:200])
    # shorter than announced: the client stops sending (and says so by closing its side)
    answer = _raw(server, _post_head(server, f"Content-Length: {len(body) + 100}\r\n") + body, half_close=True)
    assert _status(answer) == 400 and b"shorter than its Content-Length" in answer
    # a body that is not JSON, or JSON of the wrong shape
    answer = _raw(server, _post_head(server, "Content-Length: 5\r\n") + b"{oops", half_close=True)
    assert _status(answer) == 400 and b"not JSON" in answer
    assert _status(_raw(server, _post_head(server, "Content-Length: 2\r\n") + b"[]", half_close=True)) == 400
    deep = b"[" * 50_000 + b"]" * 50_000
    assert _status(_raw(server, _post_head(server, f"Content-Length: {len(deep)}\r\n") + deep[:60_000],
                        half_close=True)) == 413
    with Gradebook(path) as book:
        assert book.all_decisions(A) == {}
    assert _decide(server, json.loads(body))[0] == 200  # the server is fine afterwards
    assert server.errors == []


def test_large_bodies_are_refused_unread(review, course):
    server, _, _ = review
    huge = 200 * 1024 * 1024  # announced, never sent: the server must answer without waiting for it
    answer = _raw(server, _post_head(server, f"Content-Length: {huge}\r\n") + b"{", timeout=60)
    assert _status(answer) == 413 and b"larger than 65536 bytes" in answer
    just_over = b'{"comment": "' + b"x" * (64 * 1024) + b'"}'
    answer = _raw(server, _post_head(server, f"Content-Length: {len(just_over)}\r\n") + just_over, half_close=True)
    assert _status(answer) == 413


def test_a_slow_client_holds_only_itself(review, course):
    """A client that stalls mid-request neither blocks others nor keeps its thread: it is cut off."""
    server, _, _ = review
    server.request_timeout = 3.0  # the test's own limit (the default is 20 s); a prompt client needs far less
    stalled = []
    for _ in range(8):  # eight clients that start a request and then stop sending
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        sock.sendall(b"GET /q/2.1 HTTP/1.1\r\nHost: 127.0.0.1:")
        stalled.append(sock)
    body_stall = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    body_stall.sendall(_post_head(server, "Content-Length: 500\r\n") + b'{"question": ')
    try:
        for _ in range(3):  # meanwhile everyone else is served
            assert _request(server, "GET", "/q/2.1")[0] == 200
        assert _decide(server, {"question": "2.1", "students": [course.results[2].student], "action": "reject"})[0] == 200
        for sock in stalled:  # each stalled client is closed by the server (recv returns at its end)
            sock.settimeout(60)
            while sock.recv(65536):
                pass
        answer = b""
        while chunk := body_stall.recv(65536):
            answer += chunk
        assert _status(answer) == 408
    finally:
        for sock in [*stalled, body_stall]:
            sock.close()


def test_a_trickling_client_is_cut_off_at_the_deadline(review):
    """A byte now and then never trips the read timeout; the deadline for the whole request does."""
    server, _, _ = review
    server.request_timeout, server.request_deadline = 30.0, 2.0  # the test's own limits, far apart
    request = f"GET /q/2.1 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Padding: ".encode() + b"a" * 10_000
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        cut_off = False
        for byte in request:  # keeps trickling well past the deadline, unless cut off
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                cut_off = True
                break
            threading.Event().wait(0.01)
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                try:
                    cut_off = sock.recv(1) == b""
                except OSError:
                    cut_off = True
                if cut_off:
                    break
        assert cut_off, "the server kept reading a request that trickled for 100 s"
    assert _request(server, "GET", "/q/2.1")[0] == 200
    assert server.errors == []


def _chain_is_unbroken(changes) -> bool:
    """Every change started from what the change before it left: no update was lost."""
    return all(later.before == earlier.after for earlier, later in zip(changes, changes[1:]))


def _concurrently(calls) -> list:
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(timeout=120)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_decisions_on_one_answer_lose_nothing(review, course):
    """20 point+comment pairs at once on one answer (10 of 20 were lost before): every one is applied."""
    server, path, _ = review
    student = course.results[5].student
    base = {"question": "2.1", "students": [student]}
    calls = []
    for i in range(20):
        calls.append(lambda i=i: _decide(server, {**base, "action": "points", "score": (i % 4) / 2}))
        calls.append(lambda i=i: _decide(server, {**base, "action": "comment", "comment": f"comment {i}"}))
    answers = _concurrently(calls)
    assert [status for status, _ in answers] == [200] * 40
    with Gradebook(path) as book:
        changes = book.history(A, student, "2.1")
        final = book.decisions(A, student)["2.1"]
    assert len(changes) == 40 and _chain_is_unbroken(changes)
    last_points = [c for c in changes if c.after.score != (c.before.score if c.before else None)]
    assert final.score is not None and final.comment is not None
    assert final.score == changes[-1].after.score and final.comment == changes[-1].after.comment
    assert len({c.id for c in changes}) == 40 and last_points


def test_two_review_apps_on_one_gradebook(review, course):
    server, path, _ = review
    second = serve_review(path, course.assignment, server.app.results_provider).start()
    try:
        student = course.results[6].student
        base = {"question": "2.2", "students": [student]}
        calls = []
        for i in range(10):
            app = (server, second)[i % 2]
            calls.append(lambda app=app, i=i: _decide(app, {**base, "action": "points", "score": (i % 3) / 2}))
            calls.append(lambda app=app, i=i: _decide(app, {**base, "action": "comment", "comment": f"from {i}"}))
        answers = _concurrently(calls)
        assert [status for status, _ in answers] == [200] * 20
        with Gradebook(path) as book:
            changes = book.history(A, student, "2.2")
            final = book.decisions(A, student)["2.2"]
        assert len(changes) == 20 and _chain_is_unbroken(changes)
        assert final.score is not None and final.comment
        label = _decide(second, {**base, "action": "accept"})[1]["decision"]["label"]
        assert label in _request(server, "GET", "/q/2.2")[1]  # each app shows the other's decisions
        # the login of one app is not the other's
        assert second.app.token != server.app.token and second.cookie_name != server.cookie_name
    finally:
        second.shutdown()


def test_reopen_and_undo(review, course):
    server, path, _ = review
    a, b = course.results[7].student, course.results[8].student
    base = {"question": "2.3", "students": [a, b]}
    accepted = _decide(server, {**base, "action": "accept"})[1]
    commented = _decide(server, {**base, "action": "comment", "comment": "fine"})[1]
    reopened = _decide(server, {**base, "action": "reopen"})[1]
    assert reopened["decision"] == {"state": "open", "label": "open", "comment": ""}
    with Gradebook(path) as book:
        assert a not in book.all_decisions(A) and b not in book.all_decisions(A)
    status, undone = _decide(server, {**base, "action": "undo", "changes": reopened["changes"]})
    assert status == 200 and undone["decision"]["state"] == "accepted" and undone["decision"]["comment"] == "fine"
    _decide(server, {**base, "action": "undo", "changes": commented["changes"]})
    status, undone = _decide(server, {**base, "action": "undo", "changes": accepted["changes"]})
    assert status == 200 and undone["decision"]["state"] == "open"
    with Gradebook(path) as book:
        assert book.all_decisions(A).get(a, {}).get("2.3") is None
    # someone else's newer decision is never undone from under them
    mine = _decide(server, {**base, "action": "reject"})[1]
    other = serve_review(path, course.assignment, server.app.results_provider, reviewer="colleague").start()
    try:
        _decide(other, {"question": "2.3", "students": [b], "action": "points", "score": 1.5})
    finally:
        other.shutdown()
    status, answer = _decide(server, {**base, "action": "undo", "changes": mine["changes"]})
    assert status == 409 and "changed since by colleague" in answer["error"] and "1 other(s) undone" in answer["error"]
    with Gradebook(path) as book:
        assert book.decisions(A, b)["2.3"].score == 1.5 and book.decisions(A, b)["2.3"].reviewer == "colleague"
        assert "2.3" not in book.decisions(A, a)
    assert _decide(server, {**base, "action": "undo", "changes": ["x", 1]})[0] == 400


def test_import_and_review_the_newest_wins_and_says_what_it_replaced(review, course, tmp_path):
    server, path, _ = review
    s1, s2 = course.results[9].student, course.results[10].student
    _decide(server, {"question": "3.1", "students": [s1, s2], "action": "accept"})
    sheet = tmp_path / "scores.csv"
    sheet.write_text(f"student,question,accepted,comment,decided_at\n{s1},3.1,no,misses adapters,\n"
                     f"{s2},3.1,no,old spreadsheet row,2020-01-01T09:00\n")
    with Gradebook(path) as book:
        imported = import_decisions(book, course.assignment, sheet)
        assert [c.student for c in imported.overwritten] == [s1]
        assert imported.overwritten[0].before.accepted is True
        assert imported.overwritten[0].before.reviewer == server.app.reviewer
        assert [(line, row.comment) for line, row, _ in imported.kept] == [(3, "old spreadsheet row")]
        assert book.decisions(A, s1)["3.1"].accepted is False  # the import is newer
        assert book.decisions(A, s2)["3.1"].accepted is True  # the review app's decision is newer
    page = _request(server, "GET", "/q/3.1")[1]
    assert "replaced: accepted · 2/2 by " + server.app.reviewer in page and "import-scores" in page
    # and a decision in the app after the import replaces it the same way, shown on the card
    answer = _decide(server, {"question": "3.1", "students": [s1], "action": "points", "score": 1})[1]
    assert "replaced: rejected · 0/2 · “misses adapters” by csv" in answer["history"]


def test_word_counts_agree_everywhere(review, course):
    """The review card, the automatic feedback and the rubric suggestion count the same words."""
    server, _, _ = review
    tricky = "LoRA's low-rank update (W + BA) -- see §3.1: it's cheap/fast, e.g. r=4."
    question = course.assignment.question("3.1")
    counted = count_words(tricky)
    assert str(counted) in score_written_question(question, tricky, course.assignment.bonus).feedback
    assert f"{counted} words" in suggest(question, tricky, set()).reason
    server.app.results_provider = lambda: [replace(course.results[0], questions={
        **course.results[0].questions, "3.1": replace(course.results[0].questions["3.1"], answer=tricky)})]
    page = _request(server, "GET", "/q/3.1")[1]
    assert f"<span>{counted} words</span>" in page and f"{counted} words" in page.split("suggestion:")[1]


def test_notebook_view_needs_the_secret_and_has_no_script(review, course):
    server, _, _ = review
    student = course.script_student
    status, page = _request(server, "GET", f"/notebook/{student}")
    assert status == 200 and "<script" not in page.lower()
    assert "onerror" not in page and "Answer 2.1" in page and "loss 0.25 after 10 steps" in page
    assert "data:image/png;base64," in page  # the plot as the student saw it
    assert _request(server, "GET", f"/notebook/{student}", auth=False)[0] == 403
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("GET", f"/notebook/{student}", headers={"Host": f"127.0.0.1:{server.port}", **_auth(server)})
    response = connection.getresponse()
    response.read()
    assert response.getheader("Content-Security-Policy") == NOTEBOOK_CSP and "script-src 'none'" in NOTEBOOK_CSP
    assert _request(server, "GET", "/notebook/ghost")[0] == 404
    plain = course.results[1].student  # graded from a Python module: no notebook kept
    status, page = _request(server, "GET", f"/notebook/{plain}")
    assert status == 404 and "no notebook" in page


def test_rerenders_never_overlap():
    """Pokes from many threads: renders run one at a time, and one more runs after the last poke."""
    running, overlaps, renders = [0], [], []
    guard = threading.Lock()

    def render():
        with guard:
            running[0] += 1
            overlaps.append(running[0])
        deadline = threading.Event()
        deadline.wait(0.05)  # a render takes a while (not a race: the assertions hold for any duration)
        with guard:
            running[0] -= 1
            renders.append(len(pokes))

    pokes: list[int] = []
    refresh = Rerenderer(render, delay=0.01)
    lock = threading.Lock()

    def poke():
        for _ in range(25):
            with lock:
                pokes.append(1)
            refresh.poke()

    threads = [threading.Thread(target=poke) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refresh.flush()
    assert max(overlaps) == 1 and renders and renders[-1] == 100


def test_rerender_from_several_threads_and_processes(tmp_path, course):
    """rerender() run concurrently on one folder: no FileNotFoundError, a complete results.json after."""
    out = tmp_path / "out"
    with Gradebook(out / "gradebook.sqlite") as book:
        run = book.start_run(A, "v1", "grade")
        for result in course.results[:20]:
            book.record(run, result)
        book.set_decision(A, course.results[0].student, ManualDecision("2.1", True, None, "good", "ms"))
    errors = []

    def again():
        try:
            for _ in range(3):
                rerender(course.assignment, out)
        except Exception as error:  # noqa: BLE001 -- collected and asserted below
            errors.append(repr(error))

    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; import review_fixtures as fx; "
            "from grader.course import rerender; [rerender(fx.make_assignment(), Path(sys.argv[2])) for _ in range(3)]")
    other = subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parent), str(out)])
    threads = [threading.Thread(target=again) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert other.wait(timeout=600) == 0
    assert errors == []
    document = json.loads((out / "results.json").read_text())
    assert len(document["submissions"]) == 20
    assert not list(out.glob("*.partial"))


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
    assert "forbidden" in page.content()  # without the secret: nothing
    page.goto(server.login_url)  # the printed address: its token becomes a cookie, then it leaves the address bar
    assert page.url.endswith("/q/2.1") and "token" not in page.url
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
    page.goto(server.login_url)
    page.goto(server.url + "q/2.2")
    card = _card(page, course.script_student)
    assert "<script>window.__pwned" in card.locator(".answer").inner_text()  # shown as text
    assert page.evaluate("window.__pwned === undefined") and page.title() != "pwned"
    assert card.locator(".answer mark").count() >= 2  # memory, faster training


@pytest.mark.browser
def test_screenshot_for_a_person_to_judge(review, page, course):
    server, _, _ = review
    page.goto(server.login_url)
    page.goto(server.url + "q/3.1")
    _card(page, course.markdown_student).scroll_into_view_if_needed()
    page.keyboard.press("a")
    page.wait_for_selector(".card.accepted")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review.png"))
    assert (ARTIFACTS / "review.png").stat().st_size > 10_000

@pytest.mark.browser
def test_undo_and_reopen_by_keyboard(review, page, course):
    server, path, _ = review
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.login_url)
    page.goto(server.url + "q/2.3")
    first = json.loads(page.locator("#card-0").get_attribute("data-students"))
    second = json.loads(page.locator("#card-1").get_attribute("data-students"))
    page.keyboard.press("a")  # accept the first card; the focus moves on to the second
    page.wait_for_selector("#card-0.accepted")
    page.keyboard.press("2")  # two points for the second
    page.wait_for_selector("#card-1.points")
    page.reload()  # what u undoes survives a reload of the tab
    page.keyboard.press("u")  # undo the last decision: the second card is open again
    page.wait_for_selector("#card-1.open")
    expect(page.locator("#card-1 .history")).to_contain_text("undo")
    page.keyboard.press("u")  # and the one before: the first card is open again
    page.wait_for_selector("#card-0.open")
    with Gradebook(path) as book:
        decisions = book.all_decisions(A)
    assert all("2.3" not in decisions.get(s, {}) for s in first + second)

    page.keyboard.press("r")  # reject the focused (first) card, then reopen it with o
    page.wait_for_selector("#card-0.rejected")
    page.keyboard.press("k")
    page.keyboard.press("o")
    page.wait_for_selector("#card-0.open")
    expect(page.locator("#card-0 .state")).to_have_text("open")
    page.keyboard.press("u")  # undoing the reopen brings the rejection back
    page.wait_for_selector("#card-0.rejected")
    page.reload()
    assert "rejected" in page.locator("#card-0 .state").inner_text()
    assert "open" == page.locator("#card-1 .state").inner_text()
    with Gradebook(path) as book:
        assert all(book.decisions(A, s)["2.3"].accepted is False for s in first)
        assert all(book.decisions(A, s)["2.3"].reviewer == server.app.reviewer for s in first)
    assert not errors


@pytest.mark.browser
def test_notebook_view_runs_nothing_and_is_linked_from_card_and_report(review, page, course):
    """A <script> in markdown, an HTML output with onerror, a JavaScript output, an SVG with a script and a
    raw HTML cell: the notebook view shows the notebook (text, code, plot) and runs none of them."""
    from grader.report import render_submission, safe_filename

    server, _, _ = review
    student = course.script_student
    result = next(r for r in server.app.results_provider() if r.student == student)
    reports = server.app.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{safe_filename(student)}.html").write_text(render_submission(result, course.assignment))
    problems: list[str] = []
    page.context.on("dialog", lambda dialog: (problems.append(f"dialog {dialog.message}"), dialog.dismiss()))
    page.goto(server.login_url)
    page.goto(server.url + "q/2.2")
    card = _card(page, student)
    with page.context.expect_page() as opened:
        card.locator("a.notebook").click()
    notebook = opened.value
    notebook.on("pageerror", lambda error: problems.append(str(error)))
    notebook.wait_for_load_state("load")
    _assert_inert_notebook(notebook, problems)
    notebook.close()
    card.locator(".answer").click()  # focus the card, then v opens its notebook too
    with page.context.expect_page() as opened:
        page.keyboard.press("v")
    opened.value.wait_for_load_state("load")
    assert opened.value.url.endswith(server.app.notebook_url(student))
    opened.value.close()

    page.goto((reports / f"{safe_filename(student)}.html").as_uri())  # the file itself: no dead link for students
    assert page.get_by_role("link", name="the notebook as handed in").count() == 0
    page.goto(server.url + f"reports/{safe_filename(student)}.html")  # the student's report, through the app
    page.get_by_role("link", name="the notebook as handed in").click()
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/reports/notebooks/{safe_filename(student)}.html")
    _assert_inert_notebook(page, problems)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-notebook.png"), full_page=True)


def _assert_inert_notebook(page, problems: list[str]) -> None:
    expect(page.locator(".grader-notebook-banner")).to_contain_text("as handed in")
    expect(page.get_by_text("Answer 2.1")).to_be_visible()
    expect(page.get_by_text("loss 0.25 after 10 steps")).to_be_visible()
    expect(page.get_by_text("bold output")).to_be_visible()  # harmless HTML output renders
    assert "window.__pwned_js = 2" not in page.content()  # a JavaScript output is dropped (its text/plain shows)
    plot = page.locator("img[src^='data:image/png']").first
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth") == 24  # the plot as the student saw it
    markers = page.evaluate(f"{list(fx.PWN_MARKERS)}.filter(name => window[name] !== undefined)")
    assert markers == [] and page.title() != "pwned"
    assert page.locator("script").count() == 0
    page.get_by_text("click").first.click()  # a javascript: link does nothing either
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pwned_js") is None
    assert problems == []


@pytest.mark.browser
@pytest.mark.filterwarnings("ignore:IPython3 lexer unavailable")
def test_the_notebook_policy_alone_stops_scripts(page, course):
    """The last layer on its own: nbconvert's plain lab export of the hostile notebook (unsanitised, with
    its scripts) runs them without the policy, and runs none of them under NOTEBOOK_CSP."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.reads(fx.handed_in_notebook(course, course.script_student, hostile=True).decode(), as_version=4)
    raw_html, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    assert "<script>window.__pwned_markdown" in raw_html  # unsanitised: the attack is in the page

    def serve(policy: str | None):
        headers = {"Content-Type": "text/html; charset=utf-8", **({"Content-Security-Policy": policy} if policy else {})}
        page.route("http://grader.test/nb", lambda route: route.fulfill(status=200, headers=headers, body=raw_html))
        page.goto("http://grader.test/nb")
        page.wait_for_load_state("load")
        ran = page.evaluate(f"{list(fx.PWN_MARKERS)}.filter(name => window[name] !== undefined)")
        page.unroute("http://grader.test/nb")
        return ran

    page.route("**/*", lambda route: route.abort() if "grader.test" not in route.request.url else route.fallback())
    assert serve(None)  # without the policy the scripts run: the check below can fail
    assert serve(NOTEBOOK_CSP) == []


def test_a_comment_alone_leaves_the_answer_undecided(review, course):
    """Commenting before deciding (c, then a) must not mark the answer 'not accepted' in between."""
    server, path, _ = review
    student = course.results[11].student
    answer = _decide(server, {"question": "2.1", "students": [student], "action": "comment", "comment": "hm"})[1]
    assert answer["decision"]["state"] == "open"
    with Gradebook(path) as book:
        decisions = book.decisions(A, student)
    result = next(r for r in server.app.results_provider() if r.student == student)
    final = apply_decisions(result, course.assignment, decisions).questions["2.1"]
    assert final.status.value == "pending" and final.score == 0 and "Comment: hm" in final.feedback
    assert "Reviewed" not in final.feedback and not final.manual


def test_import_scores_prints_what_it_replaced_and_what_it_kept(tmp_path, capsys):
    """The command line says which decisions an import replaced (newest wins) and which rows it left out."""
    from conftest import skip_or_fail

    from grader.cli import ExitCode, main
    from grader.sandbox import available_isolation

    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")
    root = Path(__file__).resolve().parents[1]
    folder, out = tmp_path / "course", tmp_path / "out"
    folder.mkdir()
    (folder / "alice.ipynb").write_bytes((root / "submissions" / "alice.ipynb").read_bytes())
    assert main(["grade", str(folder), "--out", str(out)]) == ExitCode.OK
    with Gradebook(out / "gradebook.sqlite") as book:
        book.set_decision("ex01", "alice", ManualDecision("2.1", True, None, "clear", "ms"), source="review")
        book.set_decision("ex01", "alice", ManualDecision("2.2", True, None, None, "ms"), source="review")
    sheet = tmp_path / "scores.csv"
    sheet.write_text("student;question;accepted;comment;decided_at\nalice;2.1;no;too vague;\n"
                     "alice;2.2;no;from last year;2020-01-01\n")
    capsys.readouterr()
    assert main(["import-scores", str(sheet), "--out", str(out)]) == ExitCode.OK
    printed = capsys.readouterr().out
    assert "alice 2.1: replaced the decision by ms" in printed and "comment='clear'" in printed
    assert "line 3: 2.2 kept the newer decision by ms" in printed
    assert "imported 1 decisions (1 replaced an earlier one, 1 older than the gradebook's not imported)" in printed
    report = (out / "alice.html").read_text()
    assert "too vague" in report and "from last year" not in report


def test_the_gradebook_keeps_handed_in_notebooks(tmp_path, course):
    """A notebook file, the notebook chosen from a folder or a zip; never a module; once per content."""
    import zipfile

    data = fx.handed_in_notebook(course, course.markdown_student)
    (tmp_path / "alone.ipynb").write_bytes(data)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "work.ipynb").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "packed.zip", "w") as archive:
        archive.writestr("sub/ex01.ipynb", data)
    (tmp_path / "module.py").write_text("def softmax(x):\n    return x\n")
    with Gradebook(tmp_path / "gb.sqlite") as book:
        assert book.keep_handed_in("h1", tmp_path / "alone.ipynb")
        assert book.keep_handed_in("h2", tmp_path / "folder")
        assert book.keep_handed_in("h3", tmp_path / "packed.zip")
        assert not book.keep_handed_in("h4", tmp_path / "module.py")
        assert not book.keep_handed_in("h5", tmp_path / "missing.ipynb")
        assert not book.keep_handed_in(None, tmp_path / "alone.ipynb")
        assert book.handed_in("h1") == ("alone.ipynb", data)
        assert book.handed_in("h3") == ("ex01.ipynb", data)
        assert book.handed_in("h4") is None
        (tmp_path / "alone.ipynb").unlink()  # kept once: the upload may be gone later
        assert book.keep_handed_in("h1", tmp_path / "alone.ipynb") and book.handed_in("h1")[1] == data


def test_a_moodle_download_keeps_its_notebooks_for_the_review(tmp_path):
    """Moodle submissions are extracted to a scratch folder that is gone after grading: the notebook
    view still has them, from the gradebook."""
    import zipfile

    from conftest import skip_or_fail

    from grader.assignment import load_assignment
    from grader.course import grade_course, start_review
    from grader.sandbox import available_isolation

    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")
    root = Path(__file__).resolve().parents[1]
    archive, out = tmp_path / "moodle.zip", tmp_path / "out"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(root / "submissions" / "alice.ipynb", "Alice Example_1001_assignsubmission_file_/ex01.ipynb")
        z.write(root / "submissions" / "bob.py", "Bob Beispiel_1002_assignsubmission_file_/solution.py")
    assignment = load_assignment(root / "reference" / "ex01")
    run = grade_course([archive], assignment, out)
    students = {r.student: r for r in run.results}
    alice = next(s for s in students if students[s].file.endswith(".ipynb"))
    bob = next(s for s in students if s != alice)
    server = start_review(assignment, out, port=0).start()
    try:
        status, page = _request(server, "GET", f"/notebook/{alice}")
        assert status == 200 and "Answer 2.1" in page and "ex01.ipynb" in page
        status, page = _request(server, "GET", f"/notebook/{bob}")
        assert status == 404 and "Python module" in page
    finally:
        server.shutdown()

"""``grader review``: a local web app for deciding written answers, question by question, by keyboard.

Each page is one written question with every student's answer to it: the answer rendered as markdown
(student HTML is escaped, never run), the rubric concepts found in it highlighted, a provisional
suggestion from the rubric and the length, and the decision so far. Near-identical answers form one
card, decided together. A decision is a small JSON POST; it is written to the gradebook at once and
``on_decision(student)`` lets the caller re-render reports and the bonus.

Who may look: only 127.0.0.1 is bound, but on a shared machine every other account can reach it, so
every request -- reads included -- needs the server's secret, the way Jupyter does it: the URL the
command prints carries ``?token=...``; the first request with it gets a cookie (HttpOnly,
SameSite=Strict, named for the port so two apps on one host keep theirs) and is redirected to the
same page without the token. Scripts may send ``Authorization: token <token>`` instead. Without the
secret the answer is 403. Requests whose Host header is not ``127.0.0.1:<port>`` or ``localhost:<port>``
are refused (DNS rebinding). A POST from the page also carries a second secret in a header (CSRF:
another site can neither read it nor send a custom header without a preflight this server never
grants) and, when the browser sends one, a same-origin ``Origin``. The reviewer's name in the
gradebook is the server's (``reviewer=``, by default the account running it), never the client's.

Robust HTTP: each connection has its own thread and a socket timeout, so a slow or stalled client
holds only its own thread; a POST needs a valid ``Content-Length`` of at most 64 KiB (411, 400, 413
otherwise) and a body that arrives in full (400 when it is short, 408 when it stalls). Every decision
is one read-change-write transaction in the gradebook (:meth:`Gradebook.change_decision`), so
concurrent decisions on one answer -- from this app's threads or from a second app on the same
gradebook -- are applied one after the other and none is lost.
"""

from __future__ import annotations

import getpass
import hmac
import json
import re
import secrets
import socket
import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime, timezone
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from ..assignment import Assignment, Concept
from ..report import safe_filename
from ..results import ManualDecision, SubmissionResult
from ..score import count_words, find_concepts, suggest
from ..similarity import answer_units
from ..store import DecisionChange, DecisionConflict, Gradebook
from .notebook import NOTEBOOK_CSP, NotebookUnreadable, render_notebook

GROUP_SIMILARITY = 0.9
MAX_BODY = 64 * 1024
REQUEST_TIMEOUT = 20.0  # seconds a client may take for each read of its request
REQUEST_DEADLINE = 60.0  # seconds a client may take to send its whole request (however it trickles)
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")
_templates = jinja2.Environment(loader=jinja2.PackageLoader("grader.review", "templates"),
                                autoescape=True, trim_blocks=True, lstrip_blocks=True)


# --------------------------------------------------------------------------- rubric and suggestion


def render_answer(text: str, rubric: tuple[Concept, ...]) -> Markup:
    """Markdown to HTML with student HTML escaped, rubric concepts wrapped in <mark>."""
    rendered = _markdown.render(text)
    pieces = re.split(r"(<[^>]*>)", rendered)  # markdown-it's own tags; student text is escaped
    in_code = 0
    for i, piece in enumerate(pieces):
        if piece.startswith("<"):
            in_code += piece.startswith("<code") - piece.startswith("</code")
            continue
        if not piece or in_code:
            continue
        out, last = [], 0
        for start, end, number in find_concepts(piece, rubric):
            out += [piece[last:start], f'<mark class="c{number % 6}" title="{escape(rubric[number].name)}">',
                    piece[start:end], "</mark>"]
            last = end
        pieces[i] = "".join(out) + piece[last:]
    return Markup("".join(pieces))


# --------------------------------------------------------------------------- grouping


def _shingles(text: str) -> frozenset:
    words = answer_units(text)[0]
    return frozenset(zip(words, words[1:])) if len(words) > 1 else frozenset(words)


def group_answers(answers: dict[str, str]) -> list[list[str]]:
    """Students grouped by near-identical answers (word-pair Jaccard >= 0.9); biggest groups first."""
    groups: list[tuple[frozenset, list[str]]] = []
    exact: dict[tuple, list[str]] = {}
    for student in sorted(answers):
        key = tuple(answer_units(answers[student])[0])
        if key in exact:
            exact[key].append(student)
            continue
        shingles = _shingles(answers[student])
        for leader, members in groups:
            union = len(leader | shingles)
            if union and len(leader & shingles) / union >= GROUP_SIMILARITY:
                members.append(student)
                exact[key] = members
                break
        else:
            members = [student]
            groups.append((shingles, members))
            exact[key] = members
    return sorted((m for _, m in groups), key=lambda m: (-len(m), m[0]))


# --------------------------------------------------------------------------- the page model


def _decided(decision: ManualDecision | None) -> bool:
    return decision is not None and decision.decided  # the meaning scoring uses (ManualDecision.verdict)


def _summary(decision: ManualDecision | None, points: float) -> dict:
    if decision is None:
        return {"state": "open", "label": "open", "comment": ""}
    if decision.accepted is True:
        state, label = "accepted", f"accepted · {decision.score if decision.score is not None else points:g}/{points:g}"
    elif decision.accepted is False:
        state, label = "rejected", f"rejected · {decision.score or 0:g}/{points:g}"
    elif decision.score is not None:
        state, label = "points", f"{decision.score:g}/{points:g} points"
    else:
        state, label = "open", "open"
    return {"state": state, "label": label, "comment": decision.comment or ""}


def _label(decision: ManualDecision | None, points: float) -> str:
    summary = _summary(decision, points)
    comment = f" · “{summary['comment'][:80]}”" if summary["comment"] else ""
    return summary["label"] + comment


def describe_change(change: DecisionChange | None, points: float) -> str:
    """One line for the card: who changed the answer last, how, and what that replaced (if anything)."""
    if change is None:
        return ""
    when = change.at.replace("T", " ")[:16]
    how = {"review": "review app", "import": "import-scores", "undo": "undo"}.get(change.source, change.source)
    line = f"last change: {change.reviewer or 'someone'} ({how}, {when} UTC)"
    if change.before is not None and _label(change.before, points) != _label(change.after, points):
        by = f" by {change.before.reviewer}" if change.before.reviewer else ""
        line += f" · replaced: {_label(change.before, points)}{by}"
    return line


class Conflict(ValueError):
    """A request that is well-formed but no longer applies (an undo after someone else's change)."""


class ReviewApp:
    """What the pages show and what a decision does; the HTTP handler only routes to it."""

    def __init__(self, gradebook: Gradebook, assignment: Assignment,
                 results_provider: Callable[[], list[SubmissionResult]], on_decision: Callable[[str], None] | None,
                 token: str, reviewer: str = "", reports_dir: Path | None = None):
        self.gradebook, self.assignment, self.token = gradebook, assignment, token
        self.results_provider, self.on_decision = results_provider, on_decision
        self.reviewer = reviewer or _account()
        self.reports_dir = reports_dir
        self.csrf = secrets.token_urlsafe(32)
        self.written = [q for q in assignment.questions if q.kind == "written"]
        self._answers: dict[str, dict[str, str]] = {}
        self._hashes: dict[str, str] = {}  # student -> content hash of the newest result
        self._lock = threading.Lock()
        self._notebooks: OrderedDict[str, str] = OrderedDict()  # content hash -> rendered page (a few)

    def _load(self) -> dict[str, dict[str, str]]:
        answers: dict[str, dict[str, str]] = {q.id: {} for q in self.written}
        hashes = {}
        for result in self.results_provider():
            hashes[result.student] = result.content_hash
            for question in self.written:
                found = result.questions.get(question.id)
                answers[question.id][result.student] = (found.answer or "") if found else ""
        with self._lock:
            self._answers, self._hashes = answers, hashes
        return answers

    def progress(self, decisions: dict) -> dict:
        per_question = {}
        for question in self.written:
            answered = [s for s, a in self._answers.get(question.id, {}).items() if a.strip()]
            done = sum(_decided(decisions.get(s, {}).get(question.id)) for s in answered)
            per_question[question.id] = {"decided": done, "total": len(answered)}
        return {"decided": sum(p["decided"] for p in per_question.values()),
                "total": sum(p["total"] for p in per_question.values()), "questions": per_question}

    def page(self, question_id: str, nonce: str) -> str:
        question = self.assignment.question(question_id)
        answers = self._load()[question_id]
        decisions = self.gradebook.all_decisions(self.assignment.id)
        changes = self.gradebook.last_changes(self.assignment.id)
        given = {s: a for s, a in answers.items() if a.strip()}
        cards = []
        for members in group_answers(given):
            text = given[members[0]]
            spans = find_concepts(text, question.rubric)
            found = {n for _, _, n in spans}
            states = [_summary(decisions.get(s, {}).get(question_id), question.points) for s in members]
            cards.append({
                "students": members, "html": render_answer(text, question.rubric),
                "words": count_words(text),  # the same count as the feedback and the suggestion
                "concepts": [(n, c.name, n in found) for n, c in enumerate(question.rubric)],
                "suggestion": suggest(question, text, found), "decision": states[0],
                "mixed": len({s["label"] for s in states}) > 1,
                "history": describe_change(changes.get(members[0], {}).get(question_id), question.points),
                "links": [(s, self.notebook_url(s), self.report_url(s)) for s in members],
            })
        return _templates.get_template("review.html.j2").render(
            assignment=self.assignment, question=question, questions=self.written, cards=cards,
            missing=sorted(s for s, a in answers.items() if not a.strip()), csrf=self.csrf, nonce=nonce,
            prompt=Markup(_markdown.render(question.prompt)), progress=self.progress(decisions),
            reviewer=self.reviewer, reports=self.reports_dir is not None, data=json.dumps({"question": question_id, "points": question.points}))

    # ----------------------------------------------------------------------- decisions

    def decide(self, payload: dict) -> dict:
        """Apply one action to every student of a card; returns the new state for the page.

        Actions: ``accept``, ``reject``, ``points`` (``score``), ``comment`` (``comment``), ``reopen``
        (the answer is open again: the decision, comment included, is removed) and ``undo``
        (``changes``: the change ids an earlier answer of this method returned)."""
        question_id = payload.get("question")
        students = payload.get("students")
        action = payload.get("action")
        try:
            question = self.assignment.question(str(question_id))
        except KeyError:
            raise ValueError(f"unknown question {question_id!r}") from None
        if question.kind != "written":
            raise ValueError(f"question {question.id} is not a written question")
        known = self._answers.get(question.id) or self._load()[question.id]
        if not isinstance(students, list) or not students or not all(isinstance(s, str) and s in known
                                                                      for s in students):
            raise ValueError("students must be a non-empty list of students with an answer to this question")
        if action == "undo":
            changes = self._undo(question.id, students, payload.get("changes"))
        else:
            change = _action(action, payload, question.points, self.reviewer)
            changes = [self.gradebook.change_decision(self.assignment.id, student, question.id, change,
                                                      reviewer=self.reviewer, source="review")
                       for student in students]
        warning = None
        if self.on_decision is not None:
            for student in students:
                try:
                    self.on_decision(student)
                except Exception as error:  # the decision is saved; say that the refresh failed
                    warning = f"saved, but updating the reports failed: {type(error).__name__}: {error}"
        decisions = self.gradebook.all_decisions(self.assignment.id)
        last = self.gradebook.last_changes(self.assignment.id)
        return {"decision": _summary(decisions.get(students[0], {}).get(question.id), question.points),
                "history": describe_change(last.get(students[0], {}).get(question.id), question.points),
                "changes": [c.id for c in changes], "progress": self.progress(decisions), "warning": warning}

    def _undo(self, question_id: str, students: list[str], ids: object) -> list[DecisionChange]:
        if not isinstance(ids, list) or len(ids) != len(students) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValueError("undo needs the list of change ids the decision returned, one per student")
        done, refused = [], []
        for student, log_id in zip(students, ids):
            if log_id == 0:  # that decision changed nothing for this student
                continue
            try:
                done.append(self.gradebook.undo(self.assignment.id, student, question_id, log_id, self.reviewer))
            except DecisionConflict as conflict:
                refused.append(str(conflict))
        if refused:
            raise Conflict("; ".join(refused) + (f" ({len(done)} other(s) undone)" if done else ""))
        return done

    # ----------------------------------------------------------------------- notebooks and reports

    def notebook_url(self, student: str) -> str:
        return f"/notebook/{quote(student, safe='')}"

    def report_url(self, student: str) -> str | None:
        return f"/reports/{quote(safe_filename(student))}.html" if self.reports_dir is not None else None

    def notebook(self, student: str) -> str | None:
        """The student's handed-in notebook as a page without scripts; None when there is no such student."""
        if student not in self._hashes:
            self._load()
        content_hash = self._hashes.get(student)
        if content_hash is None:
            return None
        with self._lock:
            cached = self._notebooks.get(content_hash)
        if cached is not None:
            return cached
        kept = self.gradebook.handed_in(content_hash)
        if kept is None:
            raise NotebookUnreadable(f"no notebook of {student} is kept in the gradebook: it was handed in as a "
                                     "Python module, or graded before grader kept notebooks (grader grade --force keeps it)")
        name, data = kept
        page = render_notebook(data, f"{student} · {name} · as handed in (read-only; nothing in it runs)")
        with self._lock:
            self._notebooks[content_hash] = page
            while len(self._notebooks) > 16:
                self._notebooks.popitem(last=False)
        return page


def _action(action: object, payload: dict, points: float, reviewer: str) -> Callable:
    """The change one action makes to a decision (None: the answer is open)."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def stamped(decision: ManualDecision) -> ManualDecision:
        return replace(decision, reviewer=reviewer, decided_at=stamp)

    def base(old: ManualDecision | None) -> ManualDecision:
        return old or ManualDecision("", None, None)

    if action == "accept":
        return lambda old: stamped(replace(base(old), accepted=True, score=None))
    if action == "reject":
        return lambda old: stamped(replace(base(old), accepted=False, score=None))
    if action == "points":
        score = payload.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= points:
            raise ValueError(f"points must be between 0 and {points:g}")
        return lambda old: stamped(replace(base(old), score=float(score)))
    if action == "comment":
        comment = payload.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise ValueError("comment must be text")
        return lambda old: stamped(replace(base(old), comment=(comment or "")[:4000] or None))
    if action == "reopen":
        return lambda old: None
    raise ValueError(f"unknown action {action!r}")


def _account() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


# --------------------------------------------------------------------------- HTTP


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets connections when a page and a burst of decisions meet
    request_timeout = REQUEST_TIMEOUT
    request_deadline = REQUEST_DEADLINE
    max_body = MAX_BODY

    def __init__(self, app: ReviewApp, gradebook: Gradebook, host: str, port: int):
        self.app, self.gradebook = app, gradebook
        super().__init__((host, port), _Handler)
        self.port = self.server_address[1]
        self.allowed_hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self.cookie_name = f"grader-review-{self.port}"
        self.session = secrets.token_urlsafe(32)  # the cookie's value, never shown
        self.errors: list[str] = []  # unexpected handler errors (also answered 500), for the caller to show
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where the app is, without the secret (every request to it answers 403)."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def login_url(self) -> str:
        """The URL to open: it carries the secret once, then the browser keeps a cookie."""
        return f"http://127.0.0.1:{self.port}/?token={self.app.token}"

    def start(self) -> "ReviewServer":
        self._thread = threading.Thread(target=self.serve_forever, name="grader-review", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        if self._thread is not None:
            super().shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()
        self.gradebook.close()

    def handle_error(self, request, client_address) -> None:  # no tracebacks on the reviewer's terminal
        import sys

        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            self.errors.append(f"{type(error).__name__}: {error}")


class _BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "grader-review"

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # type: ignore[misc]  # each read of a slow client's request
        super().setup()
        # a client that trickles a byte now and then never hits the read timeout: a deadline for the
        # whole request cuts it off (the answer, once the request is in, is not limited)
        self._receiving = True
        self._deadline = threading.Timer(self.server.request_deadline, self._expire)
        self._deadline.daemon = True
        self._deadline.start()

    def _expire(self) -> None:
        if self._receiving:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _received(self) -> None:
        self._receiving = False
        self._deadline.cancel()

    def finish(self) -> None:
        self._received()
        super().finish()

    def log_message(self, *args: object) -> None:  # the library never prints
        pass

    def _host_ok(self) -> bool:
        if self.headers.get("Host", "") in self.server.allowed_hosts:
            return True
        self._send(HTTPStatus.FORBIDDEN, "text/plain", b"forbidden host\n")
        return False

    def _cookie(self) -> str:
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return ""
        morsel = cookie.get(self.server.cookie_name)
        return morsel.value if morsel is not None else ""

    def _authenticated(self) -> str:
        """'cookie', 'header' or '' (no or a wrong secret)."""
        if hmac.compare_digest(self._cookie().encode(), self.server.session.encode()):
            return "cookie"
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "token" and hmac.compare_digest(value.strip().encode(), self.server.app.token.encode()):
            return "header"
        return ""

    def _forbidden(self, json_answer: bool) -> None:
        if json_answer:
            self._send(HTTPStatus.FORBIDDEN, "application/json", b'{"error": "missing or wrong secret"}')
        else:
            self._send(HTTPStatus.FORBIDDEN, "text/plain",
                       b"forbidden: open the address grader review printed (it ends in ?token=...)\n")

    def _send(self, status: HTTPStatus, kind: str, body: bytes, nonce: str = "", csp: str | None = None,
              headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", csp or (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, location: str, headers: dict | None = None) -> None:
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def _guarded(self, handler: Callable[[], None], json_answer: bool) -> None:
        try:
            handler()
        except OSError:  # the client went away, timed out or was cut off: nothing to answer
            self.close_connection = True
        except Exception as error:  # answer 500 without a traceback; the server keeps the message
            self.server.errors.append(f"{type(error).__name__}: {error}")
            self.close_connection = True
            try:
                message = json.dumps({"error": f"internal error: {type(error).__name__}"}).encode()
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "application/json" if json_answer else "text/plain",
                           message)
            except OSError:
                pass

    def do_GET(self) -> None:
        self._guarded(self._get, json_answer=False)

    def do_HEAD(self) -> None:
        self._guarded(self._get, json_answer=False)

    def do_POST(self) -> None:
        self._guarded(self._post, json_answer=True)

    def _get(self) -> None:
        self._received()  # a GET is all headers
        if not self._host_ok():
            return
        app = self.server.app
        url = urlsplit(self.path)
        path = unquote(url.path)
        token = parse_qs(url.query).get("token")
        if token is not None:  # the printed URL: trade the token for a cookie, then drop it from the address
            if not hmac.compare_digest(token[0].encode(), app.token.encode()):
                return self._forbidden(False)
            cookie = (f"{self.server.cookie_name}={self.server.session}; Path=/; HttpOnly; SameSite=Strict")
            return self._redirect(quote(path) or "/", {"Set-Cookie": cookie})
        if not self._authenticated():
            return self._forbidden(False)
        if path == "/" and app.written:
            return self._redirect(f"/q/{quote(app.written[0].id)}")
        if path.startswith("/q/") and path[3:] in {q.id for q in app.written}:
            nonce = secrets.token_urlsafe(16)
            return self._send(HTTPStatus.OK, "text/html", app.page(path[3:], nonce).encode(), nonce)
        if path.startswith("/notebook/"):
            return self._notebook(path.removeprefix("/notebook/"))
        if path.startswith("/reports/"):
            return self._report(path.removeprefix("/reports/"))
        self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def _notebook(self, student: str) -> None:
        try:
            page = self.server.app.notebook(student)
        except NotebookUnreadable as error:
            return self._send(HTTPStatus.NOT_FOUND, "text/plain", f"{error}\n".encode())
        if page is None:
            return self._send(HTTPStatus.NOT_FOUND, "text/plain", b"no such student\n")
        self._send(HTTPStatus.OK, "text/html", page.encode(), csp=NOTEBOOK_CSP)

    def _report(self, name: str) -> None:
        """A page of the reports folder (they carry their own content-security policy), or a student's
        notebook view for the report's link ``notebooks/<file>.html``."""
        app = self.server.app
        if name.startswith("notebooks/"):
            stem = name.removeprefix("notebooks/").removesuffix(".html")
            if not app._hashes:
                app._load()
            students = {safe_filename(s): s for s in app._hashes}
            if stem in students:
                return self._notebook(students[stem])
            return self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
        if app.reports_dir is None or not re.fullmatch(r"[A-Za-z0-9._-]+\.html", name) or name.startswith("."):
            return self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
        try:
            body = (app.reports_dir / name).read_bytes()
        except OSError:
            return self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
        # the link to the notebook view is hidden in the file (nothing serves it there); here it works
        body = body.replace(NOTEBOOK_LINK_HIDDEN, NOTEBOOK_LINK_SHOWN, 1)
        # the report's own <meta> policy applies as well; this header adds nothing it does not allow
        self._send(HTTPStatus.OK, "text/html", body, csp=_report_csp())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length, not chunked")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
        if len(set(lengths)) != 1 or not re.fullmatch(r"[0-9]{1,12}", lengths[0].strip()):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        length = int(lengths[0])
        if length == 0:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "expected a JSON body")
        if length > self.server.max_body:
            raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                              f"the body is larger than {self.server.max_body} bytes")
        chunks, left = [], length
        try:
            while left:
                chunk = self.rfile.read1(left) if hasattr(self.rfile, "read1") else self.rfile.read(left)
                if not chunk:
                    raise _BadRequest(HTTPStatus.BAD_REQUEST, f"the body is shorter than its Content-Length "
                                                              f"({length - left} of {length} bytes)")
                chunks.append(chunk)
                left -= len(chunk)
        except (TimeoutError, socket.timeout):
            raise _BadRequest(HTTPStatus.REQUEST_TIMEOUT, "the body did not arrive in time") from None
        self._received()
        return b"".join(chunks)

    def _linger(self, limit: int = 1024 * 1024, seconds: float = 2.0) -> None:
        """Close after an error answer without a reset: a client still sending a body it was told not to
        send would otherwise get a TCP reset that can destroy the answer before it reads it. Reads and
        drops at most ``limit`` bytes for at most ``seconds``."""
        import time

        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + seconds
            while limit > 0 and (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                chunk = self.connection.recv(min(limit, 65536))
                if not chunk:
                    break
                limit -= len(chunk)
        except OSError:
            pass

    def _post(self) -> None:
        if not self._host_ok():
            return
        how = self._authenticated()
        origin = self.headers.get("Origin")
        csrf_ok = how == "header" or hmac.compare_digest(self.headers.get("X-Review-CSRF", "").encode(),
                                                         self.server.app.csrf.encode())
        if not how or not csrf_ok or (origin is not None and origin.removeprefix("http://")
                                      not in self.server.allowed_hosts):
            self.close_connection = True
            return self._forbidden(True)
        if urlsplit(self.path).path != "/api/decision":
            return self._send(HTTPStatus.NOT_FOUND, "application/json", b'{"error": "not found"}')
        try:
            if not self.headers.get("Content-Type", "").startswith("application/json"):
                raise _BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json")
            body = self._read_body()
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError):
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
            answer = self.server.app.decide(payload if isinstance(payload, dict) else {})
        except _BadRequest as bad:
            self.close_connection = True
            self._send(bad.status, "application/json", json.dumps({"error": str(bad)}).encode())
            return self._linger()
        except Conflict as conflict:
            return self._send(HTTPStatus.CONFLICT, "application/json", json.dumps({"error": str(conflict)}).encode())
        except ValueError as error:
            return self._send(HTTPStatus.BAD_REQUEST, "application/json", json.dumps({"error": str(error)}).encode())
        self._send(HTTPStatus.OK, "application/json", json.dumps(answer).encode())


NOTEBOOK_LINK_HIDDEN, NOTEBOOK_LINK_SHOWN = b'<span class="notebook-link" hidden>', b'<span class="notebook-link">'


def _report_csp() -> str:
    """The reports' own policy (their overview script by hash, nothing else), plus no framing."""
    from ..report.html import _csp, _overview_script

    return _csp(_overview_script()) + "; frame-ancestors 'none'"


def serve_review(gradebook_path: Path, assignment: Assignment,
                 results_provider: Callable[[], list[SubmissionResult]],
                 on_decision: Callable[[str], None] | None = None, host: str = "127.0.0.1",
                 port: int = 0, reviewer: str = "", reports_dir: Path | None = None) -> ReviewServer:
    """Bind the review app (not yet serving: call ``.start()`` or ``.serve_forever()``); open its ``login_url``.

    ``reviewer`` is the name every decision is recorded under (default: the account running it);
    ``reports_dir`` is the folder of the students' reports, served under ``/reports/``."""
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError("the review app serves 127.0.0.1 only: it shows students' work and writes grades")
    gradebook = Gradebook(Path(gradebook_path))
    app = ReviewApp(gradebook, assignment, results_provider, on_decision, secrets.token_urlsafe(32),
                    reviewer=reviewer, reports_dir=Path(reports_dir) if reports_dir is not None else None)
    try:
        return ReviewServer(app, gradebook, "127.0.0.1", port)
    except OSError:
        gradebook.close()
        raise

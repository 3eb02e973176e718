"""``grader review``: a local web app for deciding written answers, question by question, by keyboard.

Each page is one written question with every student's answer to it: the answer rendered as markdown
(student HTML is escaped, never run), the rubric concepts found in it highlighted, a provisional
suggestion from the rubric and the length, and the decision so far. Near-identical answers form one
card, decided together. A decision is a small JSON POST; it is written to the gradebook at once and
``on_decision(student)`` lets the caller re-render reports and the bonus.

Only 127.0.0.1 is bound. Requests whose Host header is not ``127.0.0.1:<port>`` or ``localhost:<port>``
are refused (DNS rebinding), and a POST must carry the server's random token in a header (CSRF: another
site can neither read the token nor send a custom header without a preflight this server never grants).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from dataclasses import replace
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from ..assignment import Assignment, Concept
from ..results import ManualDecision, SubmissionResult
from ..score import find_concepts, suggest
from ..similarity import answer_units
from ..store import Gradebook

GROUP_SIMILARITY = 0.9
_MAX_BODY = 64 * 1024
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


class ReviewApp:
    """What the pages show and what a decision does; the HTTP handler only routes to it."""

    def __init__(self, gradebook: Gradebook, assignment: Assignment,
                 results_provider: Callable[[], list[SubmissionResult]], on_decision: Callable[[str], None] | None,
                 token: str):
        self.gradebook, self.assignment, self.token = gradebook, assignment, token
        self.results_provider, self.on_decision = results_provider, on_decision
        self.written = [q for q in assignment.questions if q.kind == "written"]
        self._answers: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, str]]:
        answers: dict[str, dict[str, str]] = {q.id: {} for q in self.written}
        for result in self.results_provider():
            for question in self.written:
                found = result.questions.get(question.id)
                answers[question.id][result.student] = (found.answer or "") if found else ""
        with self._lock:
            self._answers = answers
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
        given = {s: a for s, a in answers.items() if a.strip()}
        cards = []
        for members in group_answers(given):
            text = given[members[0]]
            spans = find_concepts(text, question.rubric)
            found = {n for _, _, n in spans}
            states = [_summary(decisions.get(s, {}).get(question_id), question.points) for s in members]
            cards.append({
                "students": members, "html": render_answer(text, question.rubric),
                "words": len(text.split()), "concepts": [(n, c.name, n in found) for n, c in enumerate(question.rubric)],
                "suggestion": suggest(question, text, found), "decision": states[0],
                "mixed": len({s["label"] for s in states}) > 1,
            })
        return _templates.get_template("review.html.j2").render(
            assignment=self.assignment, question=question, questions=self.written, cards=cards,
            missing=sorted(s for s, a in answers.items() if not a.strip()), token=self.token, nonce=nonce,
            prompt=Markup(_markdown.render(question.prompt)), progress=self.progress(decisions),
            data=json.dumps({"question": question_id, "points": question.points}))

    def decide(self, payload: dict) -> dict:
        """Apply one action to every student of a card; returns the new state for the page."""
        question_id = payload.get("question")
        students = payload.get("students")
        action = payload.get("action")
        try:
            question = self.assignment.question(str(question_id))
        except KeyError:
            raise ValueError(f"unknown question {question_id!r}") from None
        known = self._answers.get(question.id) or self._load()[question.id]
        if not isinstance(students, list) or not students or not all(s in known for s in students):
            raise ValueError("students must be a non-empty list of students with an answer to this question")
        reviewer = str(payload.get("reviewer") or "review")[:60]
        for student in students:
            old = self.gradebook.decisions(self.assignment.id, student).get(question.id)
            old = old or ManualDecision(question.id, None, None)
            if action == "accept":
                new = replace(old, accepted=True, score=None)
            elif action == "reject":
                new = replace(old, accepted=False, score=None)
            elif action == "points":
                score = payload.get("score")
                if not isinstance(score, (int, float)) or not 0 <= score <= question.points:
                    raise ValueError(f"points must be between 0 and {question.points:g}")
                new = replace(old, score=float(score))
            elif action == "comment":
                new = replace(old, comment=str(payload.get("comment") or "")[:4000] or None)
            else:
                raise ValueError(f"unknown action {action!r}")
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.gradebook.set_decision(self.assignment.id, student, replace(new, reviewer=reviewer, decided_at=stamp))
        warning = None
        if self.on_decision is not None:
            for student in students:
                try:
                    self.on_decision(student)
                except Exception as error:  # the decision is saved; say that the refresh failed
                    warning = f"saved, but updating the reports failed: {type(error).__name__}: {error}"
        decisions = self.gradebook.all_decisions(self.assignment.id)
        return {"decision": _summary(decisions.get(students[0], {}).get(question.id), question.points),
                "progress": self.progress(decisions), "warning": warning}


# --------------------------------------------------------------------------- HTTP


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: ReviewApp, gradebook: Gradebook, host: str, port: int):
        self.app, self.gradebook = app, gradebook
        super().__init__((host, port), _Handler)
        self.port = self.server_address[1]
        self.allowed_hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

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


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "grader-review"

    def log_message(self, *args: object) -> None:  # the library never prints
        pass

    def _host_ok(self) -> bool:
        if self.headers.get("Host", "") in self.server.allowed_hosts:
            return True
        self._send(HTTPStatus.FORBIDDEN, "text/plain", b"forbidden host\n")
        return False

    def _send(self, status: HTTPStatus, kind: str, body: bytes, nonce: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy",
                         f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                         "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                         "frame-ancestors 'none'")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        app = self.server.app
        path = unquote(urlsplit(self.path).path)
        if path == "/" and app.written:
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", f"/q/{app.written[0].id}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path.startswith("/q/") and path[3:] in {q.id for q in app.written}:
            nonce = secrets.token_urlsafe(16)
            self._send(HTTPStatus.OK, "text/html", app.page(path[3:], nonce).encode(), nonce)
            return
        self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        token = self.headers.get("X-Review-Token", "")
        origin = self.headers.get("Origin")
        if not hmac.compare_digest(token.encode(), self.server.app.token.encode()) or (
                origin is not None and origin.removeprefix("http://") not in self.server.allowed_hosts):
            self._send(HTTPStatus.FORBIDDEN, "application/json", b'{"error": "missing or wrong token"}')
            return
        if urlsplit(self.path).path != "/api/decision":
            self._send(HTTPStatus.NOT_FOUND, "application/json", b'{"error": "not found"}')
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= _MAX_BODY or not self.headers.get("Content-Type", "").startswith("application/json"):
            self._send(HTTPStatus.BAD_REQUEST, "application/json", b'{"error": "expected a small JSON body"}')
            return
        try:
            payload = json.loads(self.rfile.read(length))
            answer = self.server.app.decide(payload if isinstance(payload, dict) else {})
        except ValueError as error:
            self._send(HTTPStatus.BAD_REQUEST, "application/json", json.dumps({"error": str(error)}).encode())
            return
        self._send(HTTPStatus.OK, "application/json", json.dumps(answer).encode())


def serve_review(gradebook_path: Path, assignment: Assignment,
                 results_provider: Callable[[], list[SubmissionResult]],
                 on_decision: Callable[[str], None] | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> ReviewServer:
    """Bind the review app (not yet serving: call ``.start()`` or ``.serve_forever()``)."""
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError("the review app serves 127.0.0.1 only: it shows students' work and writes grades")
    gradebook = Gradebook(Path(gradebook_path))
    app = ReviewApp(gradebook, assignment, results_provider, on_decision, secrets.token_urlsafe(32))
    try:
        return ReviewServer(app, gradebook, "127.0.0.1", port)
    except OSError:
        gradebook.close()
        raise

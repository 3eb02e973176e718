"""Copied-work detection for a course: in a forked process, running while the submissions are graded."""

from __future__ import annotations

import json
from pathlib import Path

from ..assignment import Assignment
from ..errors import SubmissionError
from ..results import SimilarPair, plain
from ..similarity import similar_pairs
from ..submission import load_submission


class SimilarityJob:
    """Copied-work detection in a forked process, running while the submissions are graded.

    It needs only the submission files, so it starts first; its answer comes back as JSON text.
    """

    def __init__(self, sources: list[tuple[Path, str]], assignment: Assignment):
        import multiprocessing

        self.sources, self.assignment, self.process = sources, assignment, None
        if "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            self.receive, send = context.Pipe(duplex=False)
            self.process = context.Process(target=self._run, args=(send,), daemon=True)
            self.process.start()
            send.close()

    def _run(self, send) -> None:
        send.send_bytes(json.dumps([plain(p) for p in find_similar(self.sources, self.assignment)]).encode())

    def result(self) -> list[SimilarPair]:
        if self.process is None:
            return find_similar(self.sources, self.assignment)
        try:
            pairs = similar_from_json(self.receive.recv_bytes())
        except (EOFError, OSError, ValueError):  # the helper process died: compute it here instead
            try:
                pairs = find_similar(self.sources, self.assignment)
            except Exception:  # noqa: BLE001 - flags are advice: they must never cost the graded batch
                pairs = []
        self.process.join()
        return pairs


def similar_from_json(data: bytes | str) -> list[SimilarPair]:
    return [SimilarPair(p["student_a"], p["student_b"], p["kind"], p["similarity"],
                        tuple(tuple(x) for x in p["passages"])) for p in json.loads(data)]


def find_similar(sources: list[tuple[Path, str]], assignment: Assignment) -> list[SimilarPair]:
    """Pairs of suspiciously similar submissions (code and written answers), template text ignored."""
    code, answers = {}, {}
    question_ids = tuple(q.id for q in assignment.questions)
    for path, student in sources:
        try:
            submission = load_submission(path, question_ids, student)
        except (SubmissionError, ValueError, RecursionError, MemoryError):  # graded (and explained) elsewhere
            continue
        code[student] = submission.code
        answers[student] = submission.answers
    template_code = ""
    if assignment.has_reference:  # what every student was given is not evidence of copying
        from ..release import template_notebook

        template_code = "\n\n".join(c.source for c in template_notebook(assignment).cells if c.cell_type == "code")
    return similar_pairs(code, answers, template_code=template_code)

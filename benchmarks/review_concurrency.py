"""Concurrent decisions against a real review server: 10 answers × 20 point+comment pairs, all 40
requests of an answer released at once. Prints connection resets and decisions whose points or
comment were lost, and checks the decision log's chain (every change starts from the one before).

    python benchmarks/review_concurrency.py
"""

from __future__ import annotations

import http.client
import json
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import review_fixtures as fx  # noqa: E402

from grader.review import serve_review  # noqa: E402
from grader.store import Gradebook  # noqa: E402


def main() -> None:
    course = fx.build_course(80)
    path = Path(tempfile.mkdtemp()) / "gradebook.sqlite"
    with Gradebook(path) as book:
        run = book.start_run(fx.ASSIGNMENT_ID, "v1", "grade")
        for result in course.results:
            book.record(run, result)

    def provider():
        with Gradebook(path) as book:
            return book.latest_results(fx.ASSIGNMENT_ID)

    server = serve_review(path, course.assignment, provider).start()
    headers = {"Host": f"127.0.0.1:{server.port}", "Content-Type": "application/json",
               "Authorization": f"token {server.app.token}"}

    def post(body: dict) -> int:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            connection.request("POST", "/api/decision", body=json.dumps(body), headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except OSError:
            return -1

    resets = lost = broken = 0
    try:
        for k in range(10):
            student = course.results[k].student
            calls = []
            for i in range(20):
                calls.append({"question": "2.1", "students": [student], "action": "points", "score": (i % 4) / 2})
                calls.append({"question": "2.1", "students": [student], "action": "comment", "comment": f"c{i}"})
            barrier = threading.Barrier(len(calls))

            def go(body: dict) -> int:
                barrier.wait()
                return post(body)

            with ThreadPoolExecutor(len(calls)) as pool:
                statuses = list(pool.map(go, calls))
            resets += statuses.count(-1)
            with Gradebook(path) as book:
                decision = book.decisions(fx.ASSIGNMENT_ID, student)["2.1"]
                changes = book.history(fx.ASSIGNMENT_ID, student, "2.1")
            lost += (decision.score is None) + (decision.comment is None) + (40 - statuses.count(200))
            broken += sum(later.before != earlier.after for earlier, later in zip(changes, changes[1:]))
    finally:
        server.shutdown()
    print(f"requests: 400, connection resets: {resets}, decisions lost: {lost}, broken log links: {broken}")


if __name__ == "__main__":
    main()

"""How long rendering the HTML reports takes for a class of 200 (prints the times; not a test).

    python benchmarks/report_render.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import report_fixtures as fx

from grader.report import render_index, render_submission, write_exports, write_html_reports


def main(n: int = 200) -> None:
    assignment = fx.assignment()
    results = fx.cohort(n)
    similar = fx.similar_pairs()
    render_submission(results[0], assignment)  # template compilation is a one-off cost
    render_index(results[:2], assignment)

    start = time.perf_counter()
    render_index(results, assignment, similar)
    index = time.perf_counter() - start

    start = time.perf_counter()
    for result in results:
        render_submission(result, assignment)
    pages = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        write_html_reports(results, assignment, Path(out), similar)
        written = time.perf_counter() - start
        start = time.perf_counter()
        write_exports(results, assignment, Path(out) / "exports", identities={r.student: (f"Participant {i}", r.student)
                                                                              for i, r in enumerate(results)})
        exports = time.perf_counter() - start

    print(f"{n} submissions")
    print(f"  index.html             {index * 1000:7.1f} ms")
    print(f"  {n} student pages      {pages * 1000:7.1f} ms  ({pages / n * 1000:.2f} ms each)")
    print(f"  write_html_reports     {written * 1000:7.1f} ms  (index + pages, to disk)")
    print(f"  write_exports          {exports * 1000:7.1f} ms  (csv, junit, gradescope, moodle)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)

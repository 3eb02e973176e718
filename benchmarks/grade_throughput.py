"""Throughput of `grader grade` and `grader check` against the floor of bare Python start-ups.

Generates N Exercise-1 submissions (notebooks and modules: correct, float32, known mistakes,
crashing), then measures in ONE run, on this machine:
  - the floor: N bare `python -c "import numpy"` processes, --jobs at a time;
  - `grader grade` (CLI, full isolation, reports and exports included) on the N submissions;
  - the regrade of the unchanged course (gradebook cache);
  - `grader check` of one notebook (wall time of the whole command);
  - scaling with --jobs and with the number of submissions, peak memory for --memory-n submissions,
    and rendering the HTML reports;
and prints figure / target / measured / ratio to the in-run baseline.

    python benchmarks/grade_throughput.py [--n 200] [--jobs 2] [--memory-n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "reference" / "ex01"))

import make_examples  # noqa: E402
import nbformat  # noqa: E402

CRASHING = {
    "softmax": "def softmax(x):\n    raise ValueError('not done yet')\n",
    "project": "import os\ndef project(X, W):\n    os._exit(1)\n",
}


def generate(folder: Path, count: int, seed: int = 1) -> list[Path]:
    rng = random.Random(seed)
    mistakes = [v.implementation.__name__ for q in make_examples.assignment().questions for v in q.variants
                if v.kind == "mistake"]
    paths = []
    for i in range(count):
        roll = rng.random()
        kind = "module" if rng.random() < 0.3 else "notebook"
        if roll < 0.45:
            submission = make_examples.build_submission(kind)
        elif roll < 0.55:
            submission = make_examples.build_submission(kind, float32=True)
        elif roll < 0.85:
            submission = make_examples.build_submission(kind, mistakes=(rng.choice(mistakes),))
        else:
            submission = make_examples.build_submission(kind, overrides=CRASHING)
        path = folder / f"student{i:04d}{'.py' if kind == 'module' else '.ipynb'}"
        if kind == "module":
            path.write_text(submission)
        else:
            nbformat.write(submission, path)
        paths.append(path)
    return paths


def floor(count: int, jobs: int) -> float:
    """Wall seconds for `count` bare `python -c "import numpy"` runs, `jobs` at a time."""
    def one(_: int) -> None:
        subprocess.run([sys.executable, "-c", "import numpy"], check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - start


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (the command and its children), peak RSS in MiB of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss // 1024


def render_time(out: Path) -> float:
    """Seconds to render the overview and every student's report from the run's results.json."""
    from grader.assignment import load_assignment
    from grader.report import write_html_reports
    from grader.results import SubmissionResult

    document = json.loads((out / "results.json").read_text())
    results = [SubmissionResult.from_dict(s) for s in document["submissions"]]
    assignment = load_assignment(ROOT / "reference" / "ex01")
    with tempfile.TemporaryDirectory() as scratch:
        write_html_reports(results[:2], assignment, Path(scratch))  # compiling the templates is a one-off
        start = time.perf_counter()
        write_html_reports(results, assignment, Path(scratch))
        return time.perf_counter() - start


def grade_command(folder: Path, out: Path, jobs: int, force: bool = True) -> list[str]:
    return [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out), "--jobs", str(jobs)] + (
        ["--force"] if force else [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--memory-n", type=int, default=1000, help="submissions for the peak-memory run (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as scratch:
        folder, half, out = Path(scratch) / "subs", Path(scratch) / "half", Path(scratch) / "out"
        folder.mkdir()
        half.mkdir()
        paths = generate(folder, args.n)
        for path in paths[: args.n // 2]:
            os.link(path, half / path.name)
        floor_wall = floor(args.n, args.jobs)
        wall, cpu, peak = timed(grade_command(folder, out, args.jobs))
        regrade, _, _ = timed(grade_command(folder, out, args.jobs, force=False))
        render = render_time(out)
        one_job, _, _ = timed(grade_command(folder, Path(scratch) / "out1", 1))
        half_wall, _, _ = timed(grade_command(half, Path(scratch) / "out-half", args.jobs))
        check_walls = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "grader", "check", str(paths[0])], cwd=ROOT,
                           stdout=subprocess.DEVNULL)
            check_walls.append(time.perf_counter() - start)
        check_wall = min(check_walls)
        single_floor = min(floor(1, 1) for _ in range(3))
        big_peak = None
        if args.memory_n:
            big = Path(scratch) / "big"
            big.mkdir()
            for i in range(args.memory_n):
                source = paths[i % len(paths)]
                os.link(source, big / f"student{i:05d}{source.suffix}")
            _, _, big_peak = timed(grade_command(big, Path(scratch) / "out-big", args.jobs))
    rows = [
        ("floor: python -c 'import numpy' per submission", "-", f"{args.n / floor_wall:.1f} subs/s", "1.00"),
        ("grader grade (namespaces, reports included)", "≥ floor and ≥ 30 subs/s", f"{args.n / wall:.1f} subs/s",
         f"{floor_wall / wall:.2f}× floor"),
        ("CPU seconds per submission", "-", f"{cpu / args.n * 1000:.1f} ms", "-"),
        ("peak memory (largest process)", "-", f"{peak} MiB", "-"),
        (f"peak memory, {args.memory_n} submissions", "< 1 GiB", f"{big_peak} MiB" if big_peak else "skipped", "-"),
        (f"scaling: --jobs 1 → {args.jobs}", f"÷ {args.jobs}", f"{one_job:.2f} s → {wall:.2f} s",
         f"{one_job / wall:.2f}× faster"),
        (f"linearity: {args.n // 2} → {args.n} submissions", "× 2", f"{half_wall:.2f} s → {wall:.2f} s",
         f"{wall / half_wall:.2f}× the time"),
        ("regrade of the unchanged course", "≥ 20× faster", f"{regrade:.2f} s", f"{wall / regrade:.1f}× faster"),
        (f"HTML reports for {args.n} submissions", "< 2 s", f"{render:.2f} s", "-"),
        ("grader check, one notebook", "< 0.5 s", f"{check_wall:.2f} s", f"{check_wall / single_floor:.1f}× one bare start"),
    ]
    print(f"grader benchmark: {args.n} submissions, --jobs {args.jobs}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("figure", "target", "measured", "ratio")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

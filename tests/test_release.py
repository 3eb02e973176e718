"""The student bundle: a working template, the public cases as data, and nothing the students must not see."""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from conftest import see_current_packages, skip_or_fail

from grader.assignment import load_assignment
from grader.bundle import load_bundle
from grader.release import (
    ANSWER_PLACEHOLDER,
    DISTRIBUTION,
    function_stub,
    release,
    source_checkout,
    template_notebook,
    version,
    wheel_name,
)

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "reference" / "ex01"


@pytest.fixture(scope="module")
def assignment():
    return load_assignment(FOLDER)


@pytest.fixture(scope="module")
def bundle(assignment, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    files = release(assignment, out, wheel=False)
    return out, files


@pytest.fixture(scope="module")
def notebook(bundle):
    out, _ = bundle
    return nbformat.read(str(out / "ex01.ipynb"), as_version=4)


def _code_cells(notebook):
    return [c for c in notebook.cells if c.cell_type == "code"]


def test_release_writes_the_bundle(bundle):
    out, files = bundle
    names = {p.relative_to(out).as_posix() for p in files}
    assert names == {"ex01.ipynb", "assignment.json", ".github/workflows/grader.yml", "README.md"}
    assert all(p.is_file() for p in files)


def test_template_is_a_valid_notebook(notebook):
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert len({c.id for c in notebook.cells}) == len(notebook.cells)


def test_template_is_deterministic(assignment):
    assert nbformat.writes(template_notebook(assignment)) == nbformat.writes(template_notebook(assignment))


def test_one_code_cell_per_function_with_numpy_first(assignment, notebook):
    cells = _code_cells(notebook)
    assert cells[0].source.startswith("import numpy as np\n")
    defined = [n.name for c in cells for n in ast.parse(c.source).body if isinstance(n, ast.FunctionDef)]
    assert sorted(defined) == sorted(assignment.functions)
    assert len(cells) == len(assignment.functions)


def test_sheet_text_is_in_markdown(assignment, notebook):
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert "Glavaš" in markdown and "14.06.2024" in markdown
    for section in assignment.sections:
        assert section.title in markdown
    for question in assignment.questions:
        assert question.prompt.strip()[:60] in markdown
    assert r"W_{de \rightarrow en}" in markdown and "0.8109" in markdown


def test_template_runs_and_every_function_raises_not_implemented(assignment, notebook):
    namespace: dict = {}
    for cell in _code_cells(notebook):
        exec(cell.source, namespace)
    for prepared in assignment.prepared_cases(include_hidden=False):
        with pytest.raises(NotImplementedError):
            namespace[prepared.case.function](*prepared.case.args, **prepared.case.kwargs)
    assert all(callable(namespace[name]) for name in assignment.functions)


def test_stub_keeps_the_reference_signature_and_docstring(assignment):
    for name in assignment.functions:
        reference = getattr(assignment.reference, name)
        namespace: dict = {}
        exec(function_stub(assignment, name), namespace)
        assert inspect.signature(namespace[name]) == inspect.signature(reference)
        assert inspect.getdoc(namespace[name]) == inspect.getdoc(reference)


def test_template_with_reference_bodies_passes_every_public_case(assignment, bundle, notebook):
    out, _ = bundle
    namespace: dict = {}
    for cell in _code_cells(notebook):
        name = cell.metadata["tags"][0].removeprefix("function-")
        source = textwrap.dedent(inspect.getsource(getattr(assignment.reference, name)))
        exec(("import numpy as np\n" if cell.source.startswith("import numpy") else "") + source, namespace)
    shipped = load_bundle(out / "assignment.json")
    cases = shipped.prepared_cases(include_hidden=False)
    assert len(cases) == len(assignment.prepared_cases(include_hidden=False))
    for prepared in cases:
        tolerance = shipped.question(prepared.case.question).tolerance
        got = namespace[prepared.case.function](*prepared.case.args, **prepared.case.kwargs)
        assert np.allclose(np.asarray(got, dtype=float), prepared.expected, rtol=tolerance.rtol, atol=tolerance.atol), \
            prepared.case.id


def test_answer_cells_carry_tag_and_heading(assignment, notebook):
    written = [q.id for q in assignment.questions if q.kind == "written"]
    answers = [c for c in notebook.cells if any(t.startswith("answer-") for t in c.metadata.get("tags", []))]
    assert [c.metadata["tags"] for c in answers] == [[f"answer-{i}"] for i in written]
    for question_id, cell in zip(written, answers):
        assert cell.cell_type == "markdown"
        first, *rest = cell.source.splitlines()
        assert first == f"### Answer {question_id}"
        assert [line for line in rest if line.strip()] == [ANSWER_PLACEHOLDER]


def test_workflow_and_readme(bundle):
    out, _ = bundle
    text = (out / ".github/workflows/grader.yml").read_text()
    workflow = yaml.safe_load(text)
    # GitHub Classroom's conventions: its reporter and its template look for exactly these
    assert workflow["name"] == "Autograding Tests"
    assert workflow["on"] == ["push", "repository_dispatch", "workflow_dispatch"]
    assert workflow["permissions"] == {"checks": "write", "actions": "read", "contents": "read"}
    assert list(workflow["jobs"]) == ["run-autograding-tests"]
    job = workflow["jobs"]["run-autograding-tests"]
    assert job["if"] == "github.actor != 'github-classroom[bot]'"
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    for needle in ("actions/checkout@v4", "actions/setup-python@v5"):
        assert needle in steps
    assert "apt-get install -y bubblewrap" in steps["Install the sandbox (bubblewrap)"]["run"]
    assert steps["Install grader"]["run"] == f"python -m pip install .grader/{wheel_name()}"
    assert "pip install grader" not in text and "grader-numeric" not in text.replace("grader_numeric", "")
    assert steps["Check the submission"]["run"] == "grader ci --out grader-report"
    upload = steps["Upload the report"]
    assert upload["if"] == "always()" and upload["uses"] == "actions/upload-artifact@v4"
    assert upload["with"]["path"] == "grader-report/"
    readme = (out / "README.md").read_text()
    assert "grader check ex01.ipynb" in readme and "### Answer" in readme and ANSWER_PLACEHOLDER in readme
    assert f"pip install .grader/{wheel_name()}" in readme and "\npip install grader\n" not in readme


def test_the_distribution_name_is_free_on_the_package_index():
    import tomllib
    from importlib import metadata

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION == "grader-numeric"
    assert project["scripts"] == {"grader": "grader.cli:main"}  # the command keeps its name
    places = [up / ".library" / "env" / "packages" / "pypi.tsv" for up in (ROOT.parent, ROOT.parent.parent)]
    taken = next((p for p in places if p.is_file()), None)
    if taken is None:
        pytest.skip("../.library/env/packages/pypi.tsv (the names taken on PyPI) is not here")
    normal = {re.sub(r"[-_.]+", "-", line.split("\t", 1)[0]).lower() for line in taken.read_text().splitlines()}
    assert "grader" in normal and "grader-numeric" not in normal
    assert metadata.version(DISTRIBUTION) == version()


# --------------------------------------------------------------------------- nothing leaks


def _bundle_texts(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file()}


def _body_statements(function) -> list[ast.stmt]:
    node = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    return [s for stmt in body for s in ast.walk(stmt) if isinstance(s, ast.stmt)]


def _module_functions(module):
    return [f for f in vars(module).values() if inspect.isfunction(f) and f.__module__ == module.__name__]


def _code_lines(module) -> set[str]:
    lines = set()
    for function in _module_functions(module):
        node = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
        docstring = node.body[0] if ast.get_docstring(node) is not None else None
        source = textwrap.dedent(inspect.getsource(function)).splitlines()
        skip = set(range(docstring.lineno - 1, docstring.end_lineno)) if docstring else set()
        lines |= {line.strip() for i, line in enumerate(source) if i not in skip and i > 0 and len(line.strip()) >= 12}
    return lines


def test_no_reference_code_in_the_template(assignment, notebook):
    template = {ast.dump(s) for c in _code_cells(notebook) for s in ast.walk(ast.parse(c.source))
                if isinstance(s, ast.stmt)}
    for function in _module_functions(assignment.reference):
        for statement in _body_statements(function):
            assert ast.dump(statement) not in template, f"{function.__name__}: {ast.unparse(statement)}"


def test_no_reference_or_variant_code_in_any_bundle_file(assignment, bundle):
    import sys

    out, _ = bundle
    variants = sys.modules[assignment.reference.__name__.rpartition(".")[0] + ".variants"]
    lines = _code_lines(assignment.reference) | _code_lines(variants)
    assert len(lines) > 50
    # What ships on purpose: signatures and docstrings (the stubs), prompts, notes and hints.
    shipped = "\n".join([function_stub(assignment, n) for n in assignment.functions]
                        + [q.prompt for q in assignment.questions]
                        + [v.message for q in assignment.questions for v in q.variants])
    lines = {line for line in lines if line not in shipped}
    for name, text in _bundle_texts(out).items():
        leaked = sorted(line for line in lines if line in text)
        assert not leaked, f"{name} contains {leaked[:3]}"
        assert "variants:" not in text and "def self_attention__" not in text


def test_no_hidden_case_values_in_any_bundle_file(assignment, bundle):
    out, _ = bundle
    texts = "\n".join(_bundle_texts(out).values())
    hidden = [p for p in assignment.prepared_cases(include_hidden=True) if not p.case.public]
    shipped_ids = {c["id"] for c in json.loads((out / "assignment.json").read_text())["cases"]}
    assert not shipped_ids & {p.case.id for p in hidden}
    checked = 0
    for prepared in hidden:  # expected values: full-precision floats, none may appear in any file
        for number in np.asarray(prepared.expected, dtype=float).ravel()[:4]:
            if round(number, 4) != number:
                checked += 1
                assert repr(float(number)) not in texts, (prepared.case.id, number)
    assert checked > 100
    shipped_arrays = [a for p in load_bundle(out / "assignment.json").prepared_cases(False) for a in _arrays(p.case)]
    for prepared in hidden:  # inputs: rounded like the sheet's, so compare whole arrays
        for array in _arrays(prepared.case):
            assert not any(a.shape == array.shape and np.array_equal(a, array) for a in shipped_arrays), \
                prepared.case.id


def _arrays(case):
    found = []

    def walk(value):
        if isinstance(value, np.ndarray):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
    walk((case.args, case.kwargs))
    return found


def test_release_refuses_a_bundle(tmp_path, bundle):
    from grader.errors import AssignmentError

    out, _ = bundle
    with pytest.raises(AssignmentError):
        release(load_bundle(out / "assignment.json"), tmp_path)


@pytest.mark.slow
def test_release_builds_the_grader_wheel_from_a_checkout(assignment, tmp_path):
    if source_checkout() is None:
        pytest.skip("grader is installed, not a source checkout")
    files = release(assignment, tmp_path)
    wheels = [p for p in files if p.suffix == ".whl"]
    assert len(wheels) == 1 and wheels[0].parent == tmp_path / ".grader" and wheels[0].name == wheel_name()


@pytest.mark.slow
def test_the_student_readme_install_command_works_in_a_clean_virtualenv(assignment, tmp_path):
    """The README's commands, run as a student would in a fresh virtual environment (no grader, no numpy)."""
    if source_checkout() is None:
        pytest.skip("grader is installed, not a source checkout")
    bundle = tmp_path / "student"
    release(assignment, bundle)
    readme = (bundle / "README.md").read_text()
    block = readme.split("## Checking your work", 1)[1].split("```", 2)[1]
    commands = [line for line in block.splitlines() if line.strip()]
    assert commands == [f"pip install .grader/{wheel_name()}", "grader check ex01.ipynb"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    installed = subprocess.run(["bash", "-e", "-c", commands[0]], cwd=bundle, env=env, capture_output=True,
                               text=True, timeout=900)
    if installed.returncode and "No matching distribution" in installed.stdout + installed.stderr:
        skip_or_fail("the package index (for numpy and the other dependencies) is not reachable here")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    shutil.copy(ROOT / "submissions" / "alice.ipynb", bundle / "ex01.ipynb")
    checked = subprocess.run(["bash", "-e", "-c", commands[1]], cwd=bundle, env=env, capture_output=True, text=True,
                             timeout=600)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert str(venv) in subprocess.run(["bash", "-c", "command -v grader"], env=env, capture_output=True,
                                       text=True).stdout
    assert "4.2d" in checked.stdout


@pytest.mark.slow
def test_an_installed_grader_ships_itself_as_a_wheel(tmp_path):
    """Without a source checkout (grader installed from its wheel), release packs the installed files."""
    if source_checkout() is None:
        pytest.skip("grader is installed, not a source checkout")
    import zipfile

    from grader.release import build_wheel

    built = build_wheel(ROOT, tmp_path / "built")
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    env.pop("PYTHONPATH", None)
    venvs = {}
    for name in ("installed", "student"):
        venvs[name] = tmp_path / name
        subprocess.run([sys.executable, "-m", "venv", str(venvs[name])], check=True)
        see_current_packages(venvs[name])
    pip = [str(venvs["installed"] / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall"]
    subprocess.run([*pip, str(built)], check=True, env=env, cwd=tmp_path)
    script = ("from pathlib import Path; from grader.release import grader_wheel, source_checkout; "
              "assert source_checkout() is None; print(grader_wheel(Path('packed')))")
    packed = Path(subprocess.run([str(venvs["installed"] / "bin" / "python"), "-c", script], check=True, env=env,
                                 cwd=tmp_path, capture_output=True, text=True).stdout.strip())
    packed = packed if packed.is_absolute() else tmp_path / packed
    assert packed.name == built.name
    with zipfile.ZipFile(built) as a, zipfile.ZipFile(packed) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        assert all(a.read(n) == b.read(n) for n in a.namelist() if not n.endswith("/RECORD"))
    student_pip = [str(venvs["student"] / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                   "--force-reinstall", str(packed)]
    subprocess.run(student_pip, check=True, env=env, cwd=tmp_path)
    helped = subprocess.run([str(venvs["student"] / "bin" / "grader"), "--help"], env=env, capture_output=True,
                            text=True, cwd=tmp_path)
    assert helped.returncode == 0 and "moodle-worksheet" in helped.stdout

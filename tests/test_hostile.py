"""Hostile and broken input costs only itself (issue 13 §1 and §3).

One batch, graded the way ``grader grade`` does it (gradebook, results.json, pages, exports, two
workers), mixes honest submissions with one of each hostile kind: a huge int returned, a JSON integer
of thousands of digits, lone surrogates (exception message, printed output, markdown answer, file
name), code too large for one protocol frame (a several-MB cell, tens of thousands of cells, a module
with thousands of ``# %%`` markers), frames forged by student code on its own socket, text that made
a regular expression backtrack, output and returned values over the per-submission budgets. The
batch must complete with the honest ones graded right and each hostile one recorded as its own
result, the grader's own memory staying under 1 GiB. The smaller pieces (frame fields, budgets, file
names, terminal text, the --out lock, file modes) are tested directly below it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from conftest import skip_or_fail

from grader.answers import _ids, _variables_by_pattern
from grader.assignment import load_assignment
from grader.errors import GraderError
from grader.report import safe_filename
from grader.sandbox import Call, Job, Limits
from grader.sandbox.protocol import FrameDecoder, ProtocolError, decode_value, encode_frame
from grader.sandbox.runner import _clean_message, _mutated, _names, _State
from grader.submission import load_submission, transform_cell
from grader.text import TextBudget, clean, for_terminal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "reference" / "ex01"))
import make_examples  # noqa: E402

LIMITS = {"cell_timeout": 10.0, "call_timeout": 5.0, "total_timeout": 300.0, "memory_mb": 512,
          "returned_total_mb": 8}
GIB = 1 << 30


@pytest.fixture(scope="module")
def assignment():
    loaded = load_assignment(ROOT / "reference" / "ex01")
    return dataclasses.replace(loaded, limits={**loaded.limits, **LIMITS})


def question_of(assignment, function: str) -> str:
    return next(q.id for q in assignment.questions if function in q.functions)


# --------------------------------------------------------------------------- the hostile batch

FORGE = textwrap.dedent('''
    import json, os, socket, struct
    def _forge(msg, blobs=()):
        header = json.dumps({"msg": msg, "blobs": [len(b) for b in blobs]}).encode()
        for fd in range(3, 64):  # the job's socket is the only one there is
            try:
                sock = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue
            with sock:
                sock.sendall(struct.pack(">I", len(header)) + header + b"".join(blobs))
            return
''')
# the last cell ends itself, then sends names of the wrong type
FORGE_NAMES = '''_forge({"ev": "cell_end", "status": "ok"})\n_forge({"ev": "names", "names": {"softmax": 1}})\n'''
# the first call answers itself with an impossible shape, and the second with non-ASCII digits
FORGE_CALLS = textwrap.dedent('''
    _forged = []
    def project(X, W):
        if not _forged:
            _forged.append(1)
            _forge({"ev": "call_end", "id": FIRST, "status": "ok", "value": {"$a": ["<f8", [0, 2 ** 63], 0]},
                    "mutated": []}, [b""])
            _forge({"ev": "call_end", "id": SECOND, "status": "ok", "value": 1.0,
                    "mutated": ["\\u00b2", "\\u0661", 10 ** 30]})
        return X @ W
''')


def _raw_notebook(cells: list[dict]) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def _code(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def percent_base() -> str:
    module = make_examples.build_submission("module")
    return module if module.endswith("\n") else module + "\n"


def build_batch(folder: Path, assignment) -> dict[str, str]:
    """Write the batch; returns student -> what it is."""
    folder.mkdir()
    kinds: dict[str, str] = {}

    def notebook(name: str, about: str, **kwargs) -> Path:
        path = folder / f"{name}.ipynb"
        nbformat.write(make_examples.build_submission("notebook", **kwargs), path)
        kinds[name] = about
        return path

    def with_cells(name: str, about: str, extra: list[str], **kwargs) -> Path:
        nb = make_examples.build_submission("notebook", **kwargs)
        nb.cells.extend(nbformat.v4.new_code_cell(src) for src in extra)
        path = folder / f"{name}.ipynb"
        nbformat.write(nb, path)
        kinds[name] = about
        return path

    notebook("honest-anna", "honest")
    (folder / "honest-ben.py").write_text(make_examples.build_submission("module"))
    kinds["honest-ben"] = "honest"
    notebook("honest-carl", "honest, one known mistake", mistakes=("softmax__wrong_axis",))

    # values the comparison cannot convert
    notebook("huge-int", "returns a 1200-digit int and a list of them",
             overrides={"softmax": "def softmax(x):\n    return 10 ** 1200\n",
                        "project": "def project(X, W):\n    return [10 ** 1200, 1]\n"})
    good = json.loads(nbformat.writes(make_examples.build_submission("notebook")))
    good["metadata"]["grader_note"] = "@BIG@"
    # an integer Python refuses to read (more digits than its int conversion limit)
    (folder / "json-bigint.ipynb").write_text(json.dumps(good).replace('"@BIG@"', "7" * 5000))
    kinds["json-bigint"] = "a JSON integer of 5000 digits"
    good["metadata"]["grader_note"] = int("7" * 4000)  # one it reads: nothing may trip on it later
    good["cells"][0]["execution_count"] = int("9" * 4000)
    (folder / "json-longint.ipynb").write_text(json.dumps(good))
    kinds["json-longint"] = "JSON integers of 4000 digits"

    # text that cannot be encoded
    surrogate = json.loads(nbformat.writes(make_examples.build_submission("notebook")))
    surrogate["cells"] += [_code('print("printed \\ud800 here")\n'), _code('raise ValueError("bad \\udfff text")\n'),
                           {"cell_type": "markdown", "metadata": {"tags": ["answer-2.1"]},
                            "source": "### Answer 2.1\nFrozen \ud800 weights and small adapters."}]
    (folder / "surrogates.ipynb").write_text(json.dumps(surrogate))  # ensure_ascii: the \ud800 escapes stay
    kinds["surrogates"] = "lone surrogates in an exception, printed output and an answer"
    try:
        odd = folder / os.fsdecode(b"bytes-\xff.ipynb")
        nbformat.write(make_examples.build_submission("notebook"), odd)
        kinds[clean(odd.stem)] = "a file name that is not UTF-8"
    except (OSError, UnicodeError):  # a file system that refuses such names: nothing to test there
        pass

    # code too large for one protocol frame
    with_cells("big-cell", "a 6 MB data cell", ["DATA = '" + "x" * (6 << 20) + "'\n"])
    many = json.loads(nbformat.writes(make_examples.build_submission("notebook")))
    many["cells"] += [_code(f"value_{i:06d} = {i} * 2  # one of very many small cells\n") for i in range(40000)]
    (folder / "many-cells.ipynb").write_text(json.dumps(many))
    kinds["many-cells"] = "40000 tiny cells"
    module = percent_base()
    markers = "".join(f"# %%\nz{i} = {i}\n" for i in range(5000))
    (folder / "percent-markers.py").write_text(module + markers + "# %%\ndef boom():\n    raise KeyError('line')\nboom()\n")
    kinds["percent-markers"] = "a module with 5000 # %% markers"

    # frames forged on the job socket
    first, second = (p.case.id for p in assignment.prepared_cases(include_hidden=True)[:2])
    calls = FORGE_CALLS.replace("FIRST", repr(first)).replace("SECOND", repr(second))
    with_cells("forged-values", "answers calls itself: an impossible shape, non-ASCII digits", [FORGE + calls])
    with_cells("forged-names", "sends the names of its cells as a dict", [FORGE, FORGE_NAMES])

    # text that made parent-side regular expressions backtrack
    with_cells("spaces", "a 300000-character line of spaces in a code cell", ["x" + " " * 300_000 + "\n"])
    (folder / "unclosed.py").write_text("def broken(:\n" + "ANSWER_2_1 = '''\n" * 20001)
    kinds["unclosed"] = "20001 answer strings in a module with a syntax error"

    # budgets: output, returned bytes, written answers
    with_cells("print-flood", "3000 cells printing 64 KB each",
               ["print('y' * 70000)\n"] * 3000)
    notebook("big-returns", "returns 3 MB per call, over the returned-bytes budget",
             overrides={"softmax": "def softmax(x):\n    return np.zeros(3 << 17)\n",
                        "project": "def project(X, W):\n    return np.zeros(3 << 17)\n"})
    notebook("long-answer", "a 3 MB written answer", answers={**make_examples.GOOD_ANSWERS, "2.1": "word " * 600_000})

    # §3: a hidden case's output, a student's own zip that looks like a Moodle download, file names
    leak = ("_real_softmax = softmax\n"
            "def softmax(x, *args, **kwargs):\n"
            "    print('LEAK', repr(np.asarray(x).ravel()[:4].tolist()))\n"
            "    return _real_softmax(x, *args, **kwargs) + 1.0\n")
    with_cells("leaky", "prints its (hidden) inputs", [leak])
    notebook("raiser", "puts its (hidden) inputs into an exception's message",
             overrides={"project": "def project(X, W):\n    raise ValueError('SECRET ' + repr(X.ravel()[:3].tolist()))\n"})
    import zipfile

    with zipfile.ZipFile(folder / "zoe.zip", "w") as archive:
        archive.writestr("Zoe Z_77_assignsubmission_file_/solution.ipynb",
                         nbformat.writes(make_examples.build_submission("notebook")))
    kinds["zoe"] = "her own zip, laid out like a Moodle download"
    notebook("Jürgen Weiß", "a name that needs a hashed file name")
    notebook(safe_filename("Jürgen Weiß"), "a student id equal to Jürgen's old report file name")
    return kinds


GRADE_SCRIPT = """
import dataclasses, json, resource, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from grader.assignment import load_assignment
from grader.course import grade_course
loaded = load_assignment(Path({root!r}) / "reference" / "ex01")
assignment = dataclasses.replace(loaded, limits={{**loaded.limits, **{limits!r}}})
run = grade_course([Path({folder!r})], assignment, Path({out!r}), jobs=2)
measured = {{"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss << 10}}
(Path({out!r}) / ".outputs.json").unlink()  # the rerun goes through the gradebook, result by result
again = grade_course([Path({folder!r})], assignment, Path({out!r}), jobs=2)
print(json.dumps({{**measured, "reused": again.summary.reused, "submissions": again.summary.submissions}}))
"""


@pytest.fixture(scope="module")
def graded(assignment, tmp_path_factory):
    """The batch graded by ``grade_course`` in a process of its own (so its peak memory is its own)."""
    from grader.sandbox import available_isolation

    if available_isolation() != "namespaces":
        skip_or_fail("bubblewrap / user namespaces are not available here")
    base = tmp_path_factory.mktemp("hostile")
    folder, out = base / "submissions", base / "out"
    kinds = build_batch(folder, assignment)
    script = GRADE_SCRIPT.format(tests=str(Path(__file__).parent), root=str(ROOT), limits=LIMITS,
                                 folder=str(folder), out=str(out))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-4000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    results = {r["student"]: r for r in document["submissions"]}
    return kinds, results, out, measured


def _code_statuses(result: dict) -> set[str]:
    return {q["status"] for q in result["questions"].values() if q["kind"] == "code"}


def test_batch_completes_and_every_hostile_submission_is_its_own_result(graded):
    kinds, results, out, _ = graded
    assert set(results) == set(kinds), set(results) ^ set(kinds)
    for student in ("honest-anna", "honest-ben", "surrogates", "json-longint", "big-cell", "many-cells",
                    "percent-markers", "spaces", "print-flood", "long-answer", "zoe", "Jürgen Weiß",
                    safe_filename("Jürgen Weiß")):
        assert results[student]["error"] is None, (student, results[student]["error"])
        assert _code_statuses(results[student]) == {"passed"}, (student, kinds[student])
    carl = results["honest-carl"]
    assert {q["status"] for q in carl["questions"].values() if q["kind"] == "code"} == {"passed", "failed"}
    # every one of them is recorded in the gradebook
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        recorded = {row[0] for row in db.execute("SELECT student FROM results")}
    assert recorded == set(kinds)
    # and a rerun reuses every recorded result (not the unreadable file's, which is read again)
    measured = graded[3]
    assert measured["submissions"] == len(kinds) and measured["reused"] == len(kinds) - 1, measured


def test_values_the_comparison_cannot_convert(graded, assignment):
    _, results, _, _ = graded
    huge = results["huge-int"]
    assert huge["error"] is None
    softmax = huge["questions"][question_of(assignment, "softmax")]
    assert softmax["status"] == "failed"
    assert any("too large" in c["message"] for c in softmax["cases"]), softmax["cases"][0]["message"]
    assert huge["questions"][question_of(assignment, "project")]["status"] == "failed"  # a list of them
    bigint = results["json-bigint"]
    assert "not a valid notebook" in bigint["error"] and "cannot read" in bigint["error"]


def test_text_that_cannot_be_encoded_is_replaced(graded):
    _, results, out, _ = graded
    result = results["surrogates"]
    printed, raised = result["cells"][-2:]
    assert "printed" in printed["output"] and raised["status"] == "error" and "\ufffd" in raised["message"]
    assert "\ufffd" in result["questions"]["2.1"]["answer"]
    odd = [s for s in results if s.startswith("bytes-")]
    assert all("\ufffd" in s and results[s]["error"] is None for s in odd)
    (out / "results.json").read_bytes().decode("utf-8")  # strict: the whole file is valid UTF-8


def test_code_too_large_for_one_frame_runs(graded):
    _, results, _, _ = graded
    assert all(c["status"] == "ok" for c in results["big-cell"]["cells"])
    assert len(results["many-cells"]["cells"]) > 40000
    assert all(c["status"] == "ok" for c in results["many-cells"]["cells"])
    last = results["percent-markers"]["cells"][-1]
    assert last["status"] == "error" and "KeyError" in last["message"]
    lines = len(percent_base().splitlines())
    assert f"line {lines + 2 * 5000 + 3}" in last["traceback"], last["traceback"]  # the file's own numbering


def test_forged_frames_cost_only_the_forger(graded, assignment):
    _, results, _, _ = graded
    values = results["forged-values"]
    assert values["error"] is None
    first = values["questions"][question_of(assignment, "project")]["cases"][0]
    assert first["status"] == "error" and "shape" in first["message"], first["message"]
    names = results["forged-names"]
    assert names["error"] is None  # it broke its own job, nobody else's
    assert "passed" not in _code_statuses(names)


def test_budgets_hold_per_submission(graded):
    _, results, out, _ = graded
    flood = results["print-flood"]
    assert sum(len(c["output"]) for c in flood["cells"]) < Limits().output_total + 20000
    assert sum("reached its limit" in c["output"] for c in flood["cells"]) == 1
    big = results["big-returns"]
    messages = [c["message"] for q in big["questions"].values() for c in q["cases"]]
    assert any("in total" in m for m in messages), messages
    answer = results["long-answer"]["questions"]["2.1"]["answer"]
    assert 10_000 < len(answer) < 60_000 and "cut" in answer
    assert (out / "results.json").stat().st_size < 40 << 20
    assert (out / "gradebook.sqlite").stat().st_size < 80 << 20


def test_grader_memory_stays_under_one_gib(graded):
    *_, measured = graded
    assert measured["self"] < GIB, measured
    assert measured["children"] < GIB, measured  # pool workers and sandboxes (512 MB limit here)


def test_hidden_case_output_stays_out_of_the_students_page(graded, assignment):
    _, results, out, _ = graded
    cases = results["leaky"]["questions"][question_of(assignment, "softmax")]["cases"]
    page = (out / f"{safe_filename('leaky')}.html").read_text(encoding="utf-8")
    hidden = [c for c in cases if not c["public"]]
    public = [c for c in cases if c["public"]]
    assert hidden and public and all("LEAK" in c["output"] for c in cases)  # the instructor has it all
    for case in hidden:
        assert case["output"].strip() not in page
    assert any(c["output"].strip().replace("'", "&#39;") in page for c in public)


def test_hidden_case_exception_text_stays_out_of_the_students_page(graded, assignment):
    _, results, out, _ = graded
    cases = results["raiser"]["questions"][question_of(assignment, "project")]["cases"]
    page = (out / f"{safe_filename('raiser')}.html").read_text(encoding="utf-8")
    hidden = [c for c in cases if not c["public"]]
    assert hidden and all("SECRET [" in c["message"] for c in cases)  # the instructor has it all
    for case in hidden:
        leaked = case["message"].split("SECRET ", 1)[1].split(")", 1)[0][:20]
        assert leaked not in page
    assert "its message is not shown for a hidden case" in page


def test_a_students_own_zip_is_her_submission(graded):
    _, results, _, _ = graded
    assert results["zoe"]["error"] is None and "zoe.zip" in results["zoe"]["file"]
    assert not any("zoe-z-77" in s for s in results)


def test_no_two_students_share_a_report_file(graded):
    _, results, out, _ = graded
    names = [safe_filename(s) for s in results]
    assert len(set(names)) == len(names) == len({n.casefold() for n in names})
    for student in ("Jürgen Weiß", safe_filename("Jürgen Weiß")):
        page = (out / f"{safe_filename(student)}.html").read_text(encoding="utf-8")
        assert student in page
        grades = json.loads((out / "gradescope" / f"{safe_filename(student)}.json").read_text(encoding="utf-8"))
        assert grades["score"] == results[student]["score"]


def test_outputs_are_readable_by_their_owner_only(graded):
    out = graded[2]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for name in ("results.json", "gradebook.sqlite", "index.html", "grades.csv", f"{safe_filename('leaky')}.html"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name


# --------------------------------------------------------------------------- the pieces, one by one


def test_regexes_on_hostile_lines_stay_linear():
    # the old patterns took minutes here (quadratic); the margin is 100x on a busy machine
    import time

    started = time.process_time()
    assert transform_cell(0, "c", "x" + " " * 300_000).source.startswith("x")
    assert transform_cell(0, "c", "files = !ls\n").source == "files = []\n"
    assert transform_cell(0, "c", "  t = %timeit f()\n").source == "  t = None\n"
    assert transform_cell(0, "c", "a == !b\n").source == "a == !b\n"
    ids = _ids(("2.1", "2.2"))
    assert _variables_by_pattern("ANSWER_2_1 = '''\n" + "x = 1\n" * 100_000, ids) == {}
    found = _variables_by_pattern('ANSWER_2_1 = """One."""\nANSWER_2_2 = \'\'\'Two.\'\'\'\n', ids)
    assert {q: a.text for q, a in found.items()} == {"2.1": "One.", "2.2": "Two."}
    assert time.process_time() - started < 20


def test_percent_cells_are_not_padded(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("".join(f"# %%\nprint({i})\n" for i in range(20000)))  # each statement a cell of its own
    submission = load_submission(path)
    assert len(submission.cells) == 20000
    assert sum(len(c.source) for c in submission.cells) < 2 * path.stat().st_size
    assert submission.cells[-1].source.strip() == "print(19999)" and submission.cells[-1].line == 39999


def test_forged_frame_fields_become_plain_outcomes():
    job = Job(cells=(), calls=(Call("a", "f"), Call("b", "f"), Call("c", "f")), limits=Limits())
    state = _State(job)
    state.record_call(job.calls[0], {"status": "ok", "value": {"$a": ["<f8", [0, 2 ** 63], 0]},
                                     "mutated": ["\u00b2", "\u0661", "0", "x" * 500, 10 ** 30, "kw"]}, [b""])
    assert state.calls["a"].status == "error" and state.calls["a"].mutated_args == ("0", "kw")
    state.record_call(job.calls[1], {"status": ["ok"], "error": {"type": 7, "message": ["m"], "traceback": {}},
                                     "output": 12, "mutated": "0"}, [])
    assert state.calls["b"].status == "error" and state.calls["b"].output == ""
    state.record_call(job.calls[2], {"status": "ok", "value": {"$a": ["<f8", [2 ** 40, 2 ** 40], 0]}}, [b""])
    assert state.calls["c"].status == "error"
    state.record_cell(0, {"status": None, "error": "boom", "output": ["x"]})
    assert state.cells[0].status == "error" and state.cells[0].error is None
    assert _names({"names": {"a": 1}}) == () and _names({"names": ["ok", 5, "x" * 999]}) == ("ok", "x" * 200)
    assert _mutated(["\u0663", "12"]) == ("12",)


def test_frames_with_impossible_values_are_protocol_errors():
    for shape in ([0, 2 ** 63], [-1], [2.0], [10 ** 30]):
        with pytest.raises(ProtocolError):
            decode_value({"$a": ["<f8", shape, 0]}, [b""])
    decoder = FrameDecoder(1 << 20)
    header = b'{"msg": {"ev": "x", "n": ' + b"9" * 5000 + b'}, "blobs": []}'
    with pytest.raises(ProtocolError):
        decoder.feed(len(header).to_bytes(4, "big") + header)


def test_lone_surrogates_are_replaced_where_frames_enter():
    decoder = FrameDecoder(1 << 20, text_filter=_clean_message)
    decoder.feed(encode_frame({"ev": "cell_end", "output": "a\ud800b", "error": {"message": ["\udfff"]}}))
    msg, _ = decoder.next()
    assert msg["output"] == "a\ufffdb" and msg["error"]["message"] == ["\ufffd"]
    json.dumps(msg, ensure_ascii=False).encode("utf-8")


def test_text_budget_is_shared_by_all_pieces():
    budget = TextBudget(100, "captured output")
    assert budget.take("a" * 60) == "a" * 60
    second = budget.take("b" * 60)
    assert second.startswith("b" * 40) and "limit of 100" in second
    assert budget.take("c") == ""  # said once is enough


def test_terminal_text_has_no_escape_sequences():
    shown = for_terminal("red \x1b[31mtext\x1b]0;title\x07 \u202eevil\ud800 ok\n\tnext")
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown and "\ud800" not in shown
    assert "\\x1b[31m" in shown and shown.endswith("ok\n\tnext")


def test_check_never_prints_raw_escapes(tmp_path, capsys):
    from grader.cli import main
    from grader.sandbox import available_isolation

    if available_isolation() == "none":
        pytest.skip("no sandbox")
    nb = make_examples.build_submission(
        "notebook", overrides={"softmax": "def softmax(x):\n    raise ValueError('\\x1b[2J\\x1b[31mgotcha')\n"})
    path = tmp_path / "esc\x1b[1m.ipynb"
    nbformat.write(nb, path)
    main(["check", str(path), "--assignment", "ex01"])
    out = capsys.readouterr()
    assert "esc\\x1b[1m" in out.out and "\x1b" not in out.out + out.err


@pytest.mark.parametrize("pair", [("Jürgen Weiß", None), ("Anna", "anna"), ("a.b", "A.B"), ("index", "Index")])
def test_file_names_are_one_to_one(pair):
    first, second = pair
    second = second if second is not None else safe_filename(first)
    assert safe_filename(first).casefold() != safe_filename(second).casefold()


def test_a_second_grade_on_one_out_is_refused_at_once(tmp_path, assignment):
    from grader.course import grade_course
    from grader.course.outputs import exclusive

    out = tmp_path / "out"
    out.mkdir()
    with exclusive(out):
        with pytest.raises(GraderError, match="another grader .* is writing to"):
            grade_course([tmp_path / "nothing"], assignment, out)
        done = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path), "--out", str(out),
                               "--assignment", "ex01"], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert done.returncode == 3 and f"process {os.getpid()}" in done.stderr, done.stderr
    assert not (out / "results.json").exists()


def test_group_readable_outputs_when_asked(tmp_path, assignment):
    from grader.course import grade_course

    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "empty.ipynb").write_text("")
    grade_course([folder], assignment, tmp_path / "out", jobs=1, group_readable=True,
                 allow_reduced_isolation=True)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "out" / "results.json").stat().st_mode) == 0o640
    grade_course([folder], assignment, tmp_path / "out", jobs=1, allow_reduced_isolation=True, force=True)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700


def test_surrogates_in_module_answers_and_notebook_keys(tmp_path):
    path = tmp_path / "n.ipynb"
    path.write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {"\\ud800": 1}, "cells": ['
                    '{"cell_type": "markdown", "metadata": {}, "source": "### Answer 2.1\\nA \\udc00 b"}]}')
    submission = load_submission(path, ("2.1",))
    assert submission.answers == {"2.1": "A \ufffd b"}


@pytest.mark.parametrize("error, words", [
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), "text that cannot be stored"),
    (OverflowError("int too large to convert to float"), "number too large"),
    (ValueError("Exceeds the limit (4300 digits) for integer string conversion"), "number too large"),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (KeyError("ghost"), "unexpected KeyError"),
])
def test_the_boundary_turns_any_exception_into_the_submissions_error(tmp_path, assignment, error, words):
    from grader.api import contained
    from grader.errors import SandboxError

    path = tmp_path / "s.py"
    path.write_text("x = 1\n")

    def fail(started):
        raise error

    result = contained(fail, path, "s", assignment, "grade")
    assert words in result.error and "other submissions were not affected" in result.error
    assert result.content_hash  # stored like any other result: a rerun reuses it
    assert all(q.status.value == "missing" for q in result.questions.values())

    def broken_sandbox(started):
        raise SandboxError("no bwrap")

    with pytest.raises(SandboxError):  # nothing can be graded then: say so at once
        contained(broken_sandbox, path, "s", assignment, "grade")


def test_values_in_the_frame_header_count_towards_the_returned_bytes():
    calls = tuple(Call(f"c{i}", "f") for i in range(4))
    state = _State(Job(cells=(), calls=calls, limits=Limits(returned_total_mb=2)))
    decoder = FrameDecoder(8 << 20)
    for call in calls:  # forged answers whose values are long JSON lists rather than array blobs
        decoder.feed(encode_frame({"ev": "call_end", "id": call.id, "status": "ok", "value": [1] * 300_000}))
        msg, blobs = decoder.next()
        state.record_call(call, msg, blobs, decoder.last_size)
    assert [state.calls[c.id].status for c in calls] == ["ok", "ok", "ok", "error"]
    assert "in total" in state.calls["c3"].error.message

"""The real sandbox, real processes: what student code can and cannot do to the grader.

Namespace tests skip when bubblewrap is unusable here, except under CI, where they fail.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import skip_or_fail

from grader.sandbox import Call, CellSource, Job, JobOutcome, Limits, Sandbox, Unconvertible, available_isolation
from grader.sandbox.runner import _probe_result

FAST = Limits(cell_timeout=2.0, call_timeout=1.0, total_timeout=30.0, memory_mb=512)
NS = pytest.param("namespaces", marks=pytest.mark.sandbox)
BOTH = pytest.mark.parametrize("box", [NS, "process"], indirect=True)
ONLY_NS = pytest.mark.parametrize("box", [NS], indirect=True)


def _need(mode: str) -> None:
    if mode == "namespaces" and available_isolation() != "namespaces":
        skip_or_fail(f"bubblewrap sandbox unusable here: {_probe_result()[1]}")


@pytest.fixture(scope="module")
def boxes() -> Iterator[dict[str, Sandbox]]:
    made: dict[str, Sandbox] = {}
    yield made
    for box in made.values():
        box.close()


@pytest.fixture
def box(request: pytest.FixtureRequest, boxes: dict[str, Sandbox]) -> Sandbox:
    mode = request.param
    _need(mode)
    if mode not in boxes:
        boxes[mode] = Sandbox(mode)
    assert boxes[mode].isolation == mode
    return boxes[mode]


def run(box: Sandbox, *cells: str, calls: tuple[Call, ...] = (), limits: Limits = FAST
        ) -> JobOutcome:
    job = Job(tuple(CellSource(i, f"cell {i}", textwrap.dedent(src)) for i, src in enumerate(cells)),
              calls, limits)
    return box.run(job)


DEFS = """
import numpy as np
def arr(n): return np.arange(n) * 0.5
def f32(): return np.float32(2.5) * np.ones(3, dtype=np.float32)
def lst(): return [1, 2, 3]
def scalar(): return np.float64(1.5)
def py(): return 0.1
def wrong(): return {"a": 1}
def text(): return "hello"
def gen(): return (i for i in range(3))
def ragged(): return [[1], [1, 2]]
def cplx(): return np.ones(2) * 1j
"""


@BOTH
def test_normal_job(box: Sandbox) -> None:
    names = ["arr", "f32", "lst", "scalar", "py", "wrong", "text", "gen", "ragged", "cplx"]
    calls = tuple(Call(n, n, (4,) if n == "arr" else ()) for n in names) + (Call("m", "nope"),)
    out = run(box, DEFS, "print('side effect')", calls=calls)
    assert [c.status for c in out.cells] == ["ok", "ok"] and out.cells[1].output == "side effect\n"
    assert out.restarts == 0 and out.isolation == box.isolation
    v = {k: c.value for k, c in out.calls.items()}
    np.testing.assert_array_equal(v["arr"], [0, 0.5, 1, 1.5])
    assert v["f32"].dtype == np.float32 and v["lst"].dtype == np.int64
    assert v["scalar"].shape == () and v["scalar"].dtype == np.float64 and v["py"] == 0.1
    assert v["text"] == "hello"
    for bad in ("wrong", "gen", "ragged", "cplx"):
        assert isinstance(v[bad], Unconvertible), bad
    assert v["wrong"].type_name == "dict" and v["wrong"].repr == "{'a': 1}"
    assert out.calls["m"].status == "missing"
    assert {"arr", "np", "wrong"} <= set(out.names) and "__builtins__" not in out.names


@BOTH
def test_errors_in_cells_do_not_stop_later_cells(box: Sandbox) -> None:
    out = run(box, "def g(): return 1/0", "g()", "x = (", "import sys; sys.exit(4)",
              "raise KeyboardInterrupt", "def ok(): return 7",
              calls=(Call("a", "ok"), Call("b", "g")))
    st = [c.status for c in out.cells]
    assert st == ["ok", "error", "error", "error", "error", "ok"]
    err = out.cells[1].error
    assert err.type == "ZeroDivisionError"
    assert 'File "cell 1", line 1' in err.traceback and 'File "cell 0", line 1, in g' in err.traceback
    assert "worker.py" not in err.traceback and "protocol" not in err.traceback
    assert out.cells[2].error.type == "SyntaxError" and "cell 2" in out.cells[2].error.traceback
    assert out.cells[3].error.type == "SystemExit" and "sys.exit(4)" in out.cells[3].error.message
    assert out.calls["a"].value == 7
    assert out.calls["b"].status == "error" and out.calls["b"].error.type == "ZeroDivisionError"


@BOTH
def test_endless_function_costs_only_its_call(box: Sandbox) -> None:
    src = "def spin():\n    while True: pass\ndef nap():\n    import time; time.sleep(100)\ndef ok(x): return x + 1"
    out = run(box, src, calls=(Call("a", "ok", (1,)), Call("b", "spin"), Call("c", "ok", (2,)),
                               Call("d", "nap"), Call("e", "ok", (3,))))
    assert [out.calls[k].status for k in "abcde"] == ["ok", "timeout", "ok", "timeout", "ok"]
    assert out.calls["e"].value == 4 and out.restarts == 2
    assert "1 s" in out.calls["b"].error.message


@BOTH
def test_a_function_that_timed_out_is_not_called_again(box: Sandbox) -> None:
    """Its later cases are marked at once (no second wait); calls of other functions still run."""
    src = "def spin(x):\n    while True: pass\ndef ok(x): return x + 1"
    out = run(box, src, calls=(Call("a", "spin", (1,)), Call("b", "ok", (1,)), Call("c", "spin", (2,)),
                               Call("d", "spin", (3,)), Call("e", "ok", (2,))))
    assert [out.calls[k].status for k in "abcde"] == ["timeout", "ok", "timeout", "timeout", "ok"]
    assert out.restarts == 1
    assert "not run again" in out.calls["c"].error.message and "not run again" not in out.calls["a"].error.message
    assert out.calls["e"].value == 3


@BOTH
def test_endless_top_level_cells_cost_only_that_cell(box: Sandbox) -> None:
    out = run(box, "def a(): return 1", "while True: pass", "import time; time.sleep(100)",
              "def b(): return 2", calls=(Call("a", "a"), Call("b", "b")))
    assert [c.status for c in out.cells] == ["ok", "timeout", "timeout", "ok"]
    assert out.calls["a"].value == 1 and out.calls["b"].value == 2


@BOTH
def test_exit_and_os_exit_in_cells(box: Sandbox) -> None:
    out = run(box, "import sys\nsys.exit()", "import os\nos._exit(3)", "def f(): return 5",
              calls=(Call("f", "f"),))
    assert [c.status for c in out.cells] == ["error", "crashed", "ok"]
    assert "status 3" in out.cells[1].error.message
    assert out.calls["f"].value == 5 and out.restarts == 1


@BOTH
def test_memory_bomb(box: Sandbox) -> None:
    out = run(box, "x = bytearray(10**10)", "import numpy as np\ny = np.ones(10**10)",
              "chunks = []\nwhile True: chunks.append(bytearray(10**7))",
              "def f(): return 1", calls=(Call("f", "f"), Call("g", "g")))
    assert [c.status for c in out.cells[:3]] in (["error"] * 3, ["error", "error", "crashed"])
    assert out.cells[0].error.type == "MemoryError" and "512 MB" in out.cells[0].error.message
    assert out.calls["f"].value == 1 and out.calls["g"].status == "missing"


@BOTH
def test_huge_output_is_capped(box: Sandbox) -> None:
    lim = Limits(cell_timeout=10, call_timeout=5, output_bytes=1000)
    out = run(box, "for _ in range(200):\n    print('x' * 10**6)",
              "def f():\n    print('y' * 5000)\n    return 1", calls=(Call("f", "f"),), limits=lim)
    assert out.cells[0].status == "ok"
    assert out.cells[0].output.startswith("x" * 1000) and len(out.cells[0].output) < 1200
    assert f"{200 * (10**6 + 1) - 1000} more bytes" in out.cells[0].output
    assert out.calls["f"].value == 1 and "4001 more bytes" in out.calls["f"].output


@BOTH
def test_deep_recursion(box: Sandbox) -> None:
    src = "import sys\ndef r(n): return r(n + 1)\ndef deep():\n    sys.setrecursionlimit(10**6)\n    return r(0)\ndef ok(): return 1"
    lim = Limits(call_timeout=60, total_timeout=180)  # a crash, not a timeout, even on a busy machine
    out = run(box, src, calls=(Call("a", "r", (0,)), Call("b", "deep"), Call("c", "ok")),
              limits=lim)
    assert out.calls["a"].status == "error" and out.calls["a"].error.type == "RecursionError"
    assert "Previous line repeated" in out.calls["a"].error.traceback
    assert out.calls["b"].status in ("crashed", "error")
    assert out.calls["c"].value == 1


@BOTH
def test_mutated_inputs_are_reported_and_not_passed_on(box: Sandbox) -> None:
    src = "def f(a, b, c=None, d=None):\n    a[0] = 99\n    c.append(1)\n    return float(a.sum())"
    arr = np.arange(3.0)
    call = Call("x", "f", (arr, [1]), {"c": [], "d": {"k": 1}})
    out = run(box, src, calls=(call, Call("y", "f", (arr, [1]), {"c": []})))
    assert out.calls["x"].mutated_args == ("0", "c") and out.calls["x"].value == 102.0
    assert out.calls["y"].value == 102.0 and out.calls["y"].mutated_args == ("0", "c")
    assert arr[0] == 0.0


@BOTH
def test_misbehaving_objects(box: Sandbox) -> None:
    src = """
class Bad:
    def __eq__(self, other): raise RuntimeError("eq")
    def __repr__(self): raise RuntimeError("repr")
    def __array__(self, *a, **k): raise RuntimeError("array")
class Loop:
    def __array__(self, *a, **k):
        while True: pass
class Weird:
    def __array__(self, *a, **k): return "not an array"
def bad(): return Bad()
def loop(): return Loop()
def weird(): return Weird()
def ok(): return 1
"""
    out = run(box, src, calls=tuple(Call(n, n) for n in ("bad", "weird", "loop", "ok")))
    bad = out.calls["bad"].value
    assert isinstance(bad, Unconvertible) and bad.type_name == "Bad" and "Bad" in bad.repr
    assert isinstance(out.calls["weird"].value, Unconvertible)
    assert out.calls["loop"].status == "timeout" and out.calls["ok"].value == 1


@BOTH
def test_huge_result_is_an_error_not_a_crash(box: Sandbox) -> None:
    lim = Limits(cell_timeout=5, call_timeout=5, max_result_mb=4)
    src = "import numpy as np\ndef big(): return np.zeros(2**20)\ndef ok(): return 1"
    out = run(box, src, calls=(Call("a", "big"), Call("b", "ok")), limits=lim)
    assert out.calls["a"].status == "error" and out.calls["a"].error.type == "ValueTooLarge"
    assert "too large to check" in out.calls["a"].error.message
    assert out.calls["b"].value == 1


@BOTH
def test_forged_frames_cost_only_that_cell(box: Sandbox) -> None:
    forge = """
import os, struct, stat
for fd in map(int, os.listdir('/proc/self/fd')):
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            os.write(fd, struct.pack('>I', 100) + b'{"msg": {"ev": "x"}, "blobs": [4000000000]}')
    except OSError:
        pass
"""
    out = run(box, forge, "def f(): return 1", calls=(Call("f", "f"),))
    assert out.cells[0].status == "crashed" and out.calls["f"].value == 1


@BOTH
def test_nothing_leaks_into_the_next_job(box: Sandbox) -> None:
    run(box, """
import numpy, builtins, os
numpy.sum = lambda *a, **k: 42
builtins.len = lambda x: -1
os.environ["LEFTOVER"] = "1"
open("leftover.txt", "w").write("x")
GLOBAL_LEFTOVER = 1
""")
    out = run(box, """
import numpy, os
def check():
    return [int(numpy.sum(numpy.ones(3))), len([1]), "LEFTOVER" in os.environ,
            os.path.exists("leftover.txt"), "GLOBAL_LEFTOVER" in globals()]
""", calls=(Call("c", "check"),))
    assert out.calls["c"].value.tolist() == [3, 1, 0, 0, 0]


@BOTH
def test_environment_and_packages(box: Sandbox) -> None:
    os.environ["GRADER_SECRET_TEST"] = "s3cret"  # only the parent has it
    try:
        src = """
import os
def env(): return sorted(os.environ)
def imp(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False
"""
        calls = (Call("env", "env"),) + tuple(Call(n, "imp", (n,)) for n in
                                              ("jinja2", "grader", "pytest", "hypothesis", "numpy"))
        out = run(box, src, calls=calls)
    finally:
        del os.environ["GRADER_SECRET_TEST"]
    env = out.calls["env"]
    assert env.status == "ok" and isinstance(env.value, np.ndarray) is False
    assert "GRADER_SECRET_TEST" not in str(env.value.repr if isinstance(env.value, Unconvertible) else env.value)
    assert [out.calls[n].value for n in ("jinja2", "grader", "pytest", "hypothesis", "numpy")] \
        == [False, False, False, False, True]


# ------------------------------------------------------------------- namespace-only hardening
ROOT = str(Path(__file__).resolve().parents[1])


def _snapshot(root: str = ROOT) -> dict[str, tuple[int, int]]:
    found = {}
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git", "__pycache__", ".pytest_cache", ".hypothesis")]
        for name in files + dirs:
            path = os.path.join(base, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            found[path] = (st.st_uid, st.st_mtime_ns)
    return found


@pytest.fixture
def work_untouched() -> Iterator[None]:
    """Nothing under the checkout is created or changed by the sandbox (uid 65534, 'pwned')."""
    before = _snapshot()
    yield
    after = _snapshot()
    changed = {p for p in after if before.get(p) != after[p]}
    assert not [p for p in changed if after[p][0] == 65534 or "pwned" in p]


PROBES = f"""
import os, socket
WORK = {ROOT!r}
def attempt(kind):
    try:
        if kind == "reference":
            return str(os.listdir(WORK + "/reference"))
        if kind == "passwd":
            return open("/etc/passwd").read()
        if kind == "root":
            return str(sorted(os.listdir("/root")))
        if kind == "write_work":
            open(WORK + "/pwned.txt", "w").write("x")
            return "wrote"
        if kind == "write_tmp":
            open("/tmp/pwned.txt", "w").write("x")
            return "wrote"
        if kind == "read_tmp":
            return str(os.listdir("/tmp"))
        if kind in ("127.0.0.1", "1.1.1.1"):
            socket.create_connection((kind, 22 if kind[0] == "1" and kind[1] == "2" else 53), timeout=1)
            return "connected"
        if kind == "uid":
            return str(os.getuid())
    except OSError as exc:
        return "failed: " + type(exc).__name__
"""


@ONLY_NS
def test_filesystem_network_and_uid(box: Sandbox, work_untouched: None) -> None:
    kinds = ("reference", "passwd", "root", "write_work", "write_tmp", "127.0.0.1", "1.1.1.1",
             "uid")
    out = run(box, PROBES, calls=tuple(Call(k, "attempt", (k,)) for k in kinds))
    v = {k: out.calls[k].value for k in kinds}
    for k in ("reference", "passwd", "write_work", "127.0.0.1", "1.1.1.1"):
        assert v[k].startswith("failed"), (k, v[k])
    assert v["root"] == "['.pyenv']" or v["root"].startswith("failed")
    assert v["write_tmp"] == "wrote" and v["uid"] != "0"
    again = run(box, PROBES, calls=(Call("t", "attempt", ("read_tmp",)),))
    assert again.calls["t"].value == "['work']"  # only the new job's own, fresh directory
    assert not os.path.exists(ROOT + "/pwned.txt")


@ONLY_NS
@pytest.mark.parametrize("target", ["os.getppid()", "1", "-1", "0"])
def test_killing_the_parent_does_not_break_the_sandbox(box: Sandbox, target: str) -> None:
    out = run(box, f"import os, signal\nfor s in (15, 2, 9):\n    os.kill({target}, s)",
              "def f(): return 1", calls=(Call("f", "f"),))
    assert out.calls["f"].value == 1
    assert run(box, "def g(): return 2", calls=(Call("g", "g"),)).calls["g"].value == 2


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (uid, parent pid, command line) of every process on the machine."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as fh:
                status = fh.read()
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        found[int(pid)] = (int(fields["Uid"].split()[0]), int(fields["PPid"]), cmdline)
    return found


def _descendants(root: int, procs: dict[int, tuple[int, int, str]]) -> set[int]:
    out, todo = set(), [root]
    while todo:
        parent = todo.pop()
        for pid, (_, ppid, _) in procs.items():
            if ppid == parent and pid not in out:
                out.add(pid)
                todo.append(pid)
    return out


def _stray_nobody_processes() -> list[str]:
    """Our own processes below a warm worker (a job's child or anything it started): none may be
    left between jobs. Only descendants of this test process count: other people's sandboxes may run
    on the machine."""
    procs = _processes()
    return [f"{p}: {procs[p][2]}" for p in _descendants(os.getpid(), procs)
            if _is_worker(procs[p][2]) and _is_worker(procs.get(procs[p][1], (0, 0, ""))[2])]


def _is_worker(cmdline: str) -> bool:
    """A warm worker or a process forked from one (not bwrap, whose arguments name it too)."""
    return "python" in cmdline.split(" ", 1)[0] and "worker.py --control-fd" in cmdline


@ONLY_NS
def test_fork_bomb(box: Sandbox) -> None:
    out = run(box, "import os\nwhile True:\n    os.fork()", "def f(): return 1",
              "import os, time\nif os.fork() == 0:\n    time.sleep(1000)",
              calls=(Call("f", "f"),))
    assert out.cells[0].status in ("error", "timeout") and out.calls["f"].value == 1
    assert _stray_nobody_processes() == []
    procs = _processes()
    workers = [procs[p][2] for p in _descendants(os.getpid(), procs) if _is_worker(procs[p][2])]
    assert len(workers) <= 2, workers  # the zygote(s) of the open sandbox(es), nothing else


def test_unknown_isolation_is_a_clear_error() -> None:
    from grader.errors import SandboxError
    with pytest.raises(SandboxError, match="unknown isolation"):
        Sandbox("chroot")

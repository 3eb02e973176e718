"""A fresh sandbox for every submission: nothing one submission leaves behind reaches the next.

Writer/reader pairs: a first submission tries every channel it can think of (files in every
directory, /tmp, /dev/shm, SysV shared memory, semaphores and message queues, POSIX message queues,
the user and session keyrings, an abstract socket held by a surviving process, a TCP port left in
TIME_WAIT, a planted
``protocol``/``numpy`` module); the next submission in the same slot looks for each and must find
nothing. Run as root (in this process) and as an unprivileged user (uid 65534, in a subprocess), so
both ways bubblewrap is used are exercised; CI runs as root, so CI covers both.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from conftest import skip_or_fail

from grader.sandbox import Call, CellSource, Job, Limits, Sandbox, available_isolation, seccomp
from grader.sandbox.runner import _probe_result

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(cell_timeout=60.0, call_timeout=60.0, total_timeout=300.0, memory_mb=512, tmp_mb=8)

pytestmark = pytest.mark.sandbox

COMMON = r'''
import ctypes, errno, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
KEY = 0xC0FFEE
SKIP = ("/proc", "/sys")

def _err():
    return errno.errorcode.get(ctypes.get_errno(), "?")

def _add_key(keyring):
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(248, b"user", b"covert", b"x", 1, keyring)

def _search_key(keyring):
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(250, 10, keyring, b"user", b"covert", 0)
'''

WRITER = COMMON + r'''
def write():
    got = {}
    planted = []
    for base, dirs, files in os.walk("/"):
        if base.startswith(SKIP):
            dirs[:] = []
            continue
        for name in ("covert_mark", "protocol.py", "numpy.py", "sitecustomize.py"):
            try:
                with open(os.path.join(base, name), "w") as fh:
                    fh.write("raise SystemExit('planted')\n")
                planted.append(os.path.join(base, name))
            except OSError:
                pass
    got["files"] = sorted(planted)
    got["shm"] = libc.shmget(KEY, 1 << 20, 0o1666) >= 0 or _err()
    got["msg"] = libc.msgget(KEY, 0o1666) >= 0 or _err()
    got["sem"] = libc.semget(KEY, 1, 0o1666) >= 0 or _err()
    got["mq"] = libc.mq_open(b"/covert", os.O_CREAT | os.O_RDWR, 0o666, None) >= 0 or _err()
    got["user_key"] = _add_key(-4) >= 0 or _err()
    got["session_key"] = _add_key(-3) >= 0 or _err()
    try:
        os.setsid()
        got["setsid"] = True
    except OSError as exc:
        got["setsid"] = errno.errorcode[exc.errno]
    got["unshare"] = libc.unshare(0x08000000) == 0 or _err()
    try:  # a port left in TIME_WAIT would be visible to the next bind() in the same namespace
        listener = socket.socket()
        listener.bind(("127.0.0.1", 45678))
        listener.listen()
        client = socket.create_connection(("127.0.0.1", 45678), timeout=1)
        conn, _ = listener.accept()
        conn.close(), client.close(), listener.close()
        got["tcp"] = True
    except OSError as exc:
        got["tcp"] = type(exc).__name__
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(b"\0covert")
    srv.listen()
    if os.fork() == 0:  # a survivor holding the socket, in a new session if it can
        try:
            os.setsid()
        except OSError:
            pass
        if os.fork() == 0:
            import time
            time.sleep(1000)
        os._exit(0)
    return json.dumps(got)
'''

READER = COMMON + r'''
def read():
    found = []
    for base, dirs, files in os.walk("/"):
        if base.startswith(SKIP):
            dirs[:] = []
            continue
        found += [os.path.join(base, n) for n in files
                  if n in ("covert_mark", "protocol.py", "numpy.py", "sitecustomize.py")
                  and base not in ("/sandbox/lib",)]
    if libc.shmget(KEY, 0, 0) >= 0:
        found.append("SysV shm")
    if libc.msgget(KEY, 0) >= 0:
        found.append("SysV message queue")
    if libc.semget(KEY, 0, 0) >= 0:
        found.append("SysV semaphore")
    if libc.mq_open(b"/covert", os.O_RDONLY, 0, None) >= 0:
        found.append("POSIX message queue")
    for ring, name in ((-4, "user keyring"), (-3, "session keyring")):
        if _search_key(ring) >= 0:
            found.append(name)
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(b"\0covert")
        found.append("abstract socket")
    except OSError:
        pass
    try:
        socket.socket().bind(("127.0.0.1", 45678))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            found.append("a TCP port in use")
    for table in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp"):
        try:
            with open(table) as fh:
                if len(fh.read().splitlines()) > 1:
                    found.append(table)
        except OSError:
            pass
    others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
    if others:
        found.append(f"processes {others}")
    import protocol, numpy  # the worker's own module and numpy are the real ones
    if not hasattr(protocol, "encode_frame") or not hasattr(numpy, "ndarray"):
        found.append("a planted module was imported")
    return json.dumps(found)

def correct(x):
    return x * 2
'''


def pair_outcome() -> dict:
    """Writer, then reader, in one sandbox slot; what each saw (a JSON-able dict)."""
    with Sandbox("namespaces") as box:
        wrote = box.run(Job((CellSource(0, "writer", WRITER),), (Call("w", "write"),), LIMITS))
        read = box.run(Job((CellSource(0, "reader", READER),),
                           (Call("r", "read"), Call("c", "correct", (21,))), LIMITS))
    w, r, c = wrote.calls["w"], read.calls["r"], read.calls["c"]
    return {"writer": json.loads(w.value) if w.status == "ok" else {"error": str(w.error)},
            "reader": json.loads(r.value) if r.status == "ok" else [f"reader failed: {r.error}"],
            "correct": int(c.value) if c.status == "ok" else None,
            "uid": os.geteuid()}


def _need_namespaces() -> None:
    if available_isolation() != "namespaces":
        skip_or_fail(f"bubblewrap sandbox unusable here: {_probe_result()[1]}")


def _check_pair(result: dict) -> None:
    wrote = result["writer"]
    assert "error" not in wrote, wrote
    # the writer really ran and could write where a submission may: its own /tmp and /dev/shm
    assert "/tmp/covert_mark" in wrote["files"] and "/dev/shm/covert_mark" in wrote["files"], wrote
    assert {os.path.dirname(f) for f in wrote["files"]} <= {"/tmp", "/tmp/work", "/dev/shm"}, wrote
    denied = {k: wrote[k] for k in ("shm", "msg", "sem", "mq", "user_key", "session_key",
                                    "setsid", "unshare")}
    if seccomp.supported():
        assert set(denied.values()) == {"EPERM"}, denied
    assert result["reader"] == [], result["reader"]
    assert result["correct"] == 42


def test_nothing_reaches_the_next_submission_as_root_or_as_this_user() -> None:
    _need_namespaces()
    _check_pair(pair_outcome())


# ------------------------------------------------------------------ as an unprivileged user
def _blocked_ancestor(path: str) -> str | None:
    """The first directory above ``path`` that others cannot enter, if any."""
    parts = Path(path).resolve().parts
    for i in range(2, len(parts)):
        here = os.path.join(*parts[:i])
        if not os.stat(here).st_mode & stat.S_IXOTH:
            return here
    return None


def as_nobody(argv: list[str], stage: str) -> list[str]:
    """``argv`` run as uid/gid 65534 by root, in a private mount namespace where the Python
    installation, the virtualenv and the checkout are reachable for that user (here Python lives
    under /root, which is 0700): each blocked ancestor is covered by a tmpfs and the needed paths
    are bound back in. Nothing changes outside that namespace."""
    needed = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, str(ROOT))}
    lines = ["set -e"]
    moves = []
    covers = set()
    for i, path in enumerate(sorted(needed)):
        blocked = _blocked_ancestor(path)
        if blocked is None:
            continue
        lines.append(f"mkdir -p {stage}/{i} && mount --bind '{path}' {stage}/{i}")
        covers.add(blocked)
        moves.append(f"mkdir -p '{path}' && mount --move {stage}/{i} '{path}'")
    lines += [f"mount -t tmpfs -o mode=755 tmpfs '{c}'" for c in sorted(covers)] + moves
    lines.append('exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", "\n".join(lines),
            "sh"] + argv


def run_unprivileged(code: str, timeout: float = 600) -> dict:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    with tempfile.TemporaryDirectory(prefix="grader-stage-") as stage:
        argv = [sys.executable, "-c", code]
        if os.geteuid() == 0:
            argv = as_nobody(argv, stage)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd="/",
                              env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_nothing_reaches_the_next_submission_as_an_unprivileged_user() -> None:
    _need_namespaces()
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        import test_sandbox_isolation as t
        from grader.sandbox.runner import _probe_result
        assert _probe_result()[0] == "namespaces", _probe_result()
        print(json.dumps(t.pair_outcome()))
    """)
    result = run_unprivileged(code)
    assert result["uid"] != 0
    _check_pair(result)


# -------------------------------------------------------------------------- bounded /tmp
FILLER = r'''
import os
def fill(where):
    written = 0
    try:
        for i in range(40):  # up to 40 x 4 MB, far beyond the limit
            with open(os.path.join(where, f"f{i}"), "wb") as fh:
                for _ in range(4):
                    fh.write(b"x" * (1 << 20))
                    written += 1 << 20
    except OSError as exc:
        return f"{written >> 20} {exc.strerror}"
    return f"{written >> 20} no error"
def free(where):
    return len(os.listdir(where))
'''


def test_tmp_and_shm_are_bounded_and_new_each_time() -> None:
    _need_namespaces()
    with Sandbox("namespaces") as box:
        out = box.run(Job((CellSource(0, "fill", FILLER),),
                          (Call("t", "fill", ("/tmp",)), Call("s", "fill", ("/dev/shm",))), LIMITS))
        again = box.run(Job((CellSource(0, "fill", FILLER),),
                            (Call("t", "free", ("/tmp",)), Call("s", "free", ("/dev/shm",))), LIMITS))
    for key in "ts":
        megabytes, message = out.calls[key].value.split(" ", 1)
        assert int(megabytes) <= LIMITS.tmp_mb and message == "No space left on device", out.calls[key]
    assert again.calls["t"].value == 1 and again.calls["s"].value == 0  # /tmp holds only work/


# ------------------------------------------------------------------------- the seccomp filter
PROBE = r'''
import ctypes, errno, os, threading, subprocess
libc = ctypes.CDLL(None, use_errno=True)
def probe():
    out = {}
    out["unshare_user"] = libc.unshare(0x10000000)
    out["clone_newuser"] = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)
    out["mount"] = libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)
    out["keyctl"] = libc.syscall(250, 1, None)
    out["bpf"] = libc.syscall(321, 0, None, 0)
    out["ptrace"] = libc.syscall(101, 16, 1, 0, 0)
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    box = []
    t = threading.Thread(target=lambda: box.append(1))
    t.start(); t.join()
    out["thread"] = box
    import numpy as np
    out["numpy"] = float(np.linalg.solve(np.eye(3) * 2, np.ones(3)).sum())
    return str(sorted(out.items()))
'''


def test_seccomp_denies_namespaces_mounts_keys_and_kernel_surfaces_but_not_numpy() -> None:
    _need_namespaces()
    if not seccomp.supported():
        pytest.skip("seccomp filter described for x86_64 only")
    with Sandbox("namespaces") as box:
        out = box.run(Job((CellSource(0, "probe", PROBE),), (Call("p", "probe"),), LIMITS))
    got = dict(eval(out.calls["p"].value))  # our own test's repr of ints and lists
    assert {k: got[k] for k in ("unshare_user", "clone_newuser", "mount", "keyctl", "bpf",
                                "ptrace")} == dict.fromkeys(("unshare_user", "clone_newuser",
                                                             "mount", "keyctl", "bpf", "ptrace"), -1)
    assert got["fork"] == 7 and got["thread"] == [1] and got["numpy"] == 1.5


def test_seccomp_program_shape() -> None:
    prog = seccomp.student_program()
    assert len(prog) % 8 == 0 and len(prog) // 8 < 255
    base = seccomp.base_program()
    assert len(base) < len(prog)
    # the first instructions check the architecture, the last one allows
    _code, _jt, _jf, k = __import__("struct").unpack("=HBBI", prog[8:16])
    assert k == seccomp.AUDIT_ARCH_X86_64
    assert prog[-8:] == __import__("struct").pack("=HBBI", 0x06, 0, 0, seccomp.RET_ALLOW)


# --------------------------------------------------------- no orphans after kill -9 of grader
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


TASK = """
from grader.sandbox import CellSource, Job, Limits, Sandbox
def task(state, item):
    box = Sandbox(ISOLATION)
    cell = "import os, time\\nos.fork()\\ntime.sleep(1000)"
    box.run(Job((CellSource(0, "c", cell),), (), Limits(cell_timeout=1000, total_timeout=1000)))
"""
GRADING = """
import sys
sys.path.insert(0, sys.argv[1])
from grader.pool import map_in_workers
import sandbox_kill_task as t
for _ in map_in_workers(t.task, [0, 1], {}, 2, fallback=lambda rest: iter(())):
    pass
"""


@pytest.mark.parametrize("isolation", ["namespaces", "process"])
def test_kill_9_of_the_grading_process_leaves_no_orphans(isolation: str, tmp_path: Path) -> None:
    """Pool workers, bwrap, zygotes and student processes all go when grading is killed -9."""
    if isolation == "namespaces":
        _need_namespaces()
    (tmp_path / "sandbox_kill_task.py").write_text(TASK.replace("ISOLATION", repr(isolation)))
    proc = subprocess.Popen([sys.executable, "-c", GRADING, str(tmp_path)], start_new_session=True)
    # per slot: the pool worker, (bwrap's monitor,) the zygote, the job's child and its fork
    expected = 2 * (5 if isolation == "namespaces" else 4)
    try:
        deadline = time.monotonic() + 180  # generous: only a bound on a broken start
        while len(_tree(proc.pid)) < expected:
            assert time.monotonic() < deadline and proc.poll() is None, sorted(_tree(proc.pid))
            time.sleep(0.2)
        time.sleep(0.5)
        tree = _tree(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(_alive(p) for p in tree):
            time.sleep(0.2)
        left = {p: _cmd(p) for p in tree if _alive(p)}
        assert left == {}, left
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ------------------------------------------------------------------------------- cgroups
HOG = r'''
import os, time
def hog(n, mb):
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            try:
                block = b"\x01" * (mb << 20)  # touched, so really resident
                time.sleep(2)
            except MemoryError:
                os._exit(3)
            os._exit(0)
        pids.append(pid)
    return sum(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) == 0 for p in pids)
'''


def test_the_slot_cgroup_bounds_the_whole_submission_together() -> None:
    """Four processes of 300 MB each, every one within its own 512 MB address-space limit: the
    slot's cgroup (memory_mb + 2 x tmp_mb + the worker's share) stops them together."""
    from grader.sandbox.runner import cgroup_support
    _need_namespaces()
    kind, why = cgroup_support()
    if not kind:
        pytest.skip(f"no cgroups for grader here: {why}")
    lim = Limits(cell_timeout=60.0, call_timeout=120.0, total_timeout=300.0, memory_mb=512, tmp_mb=8)
    with Sandbox("namespaces") as box:
        out = box.run(Job((CellSource(0, "hog", HOG),), (Call("one", "hog", (1, 300)),
                                                          Call("four", "hog", (4, 300))), lim))
        group = box._zygote.cgroup
        assert group.memory_limit() == (512 + 16 + 256) << 20
        assert group.peak_memory() <= group.memory_limit()
        cpu = os.path.join(group.dirs["cpu"], "cpu.max" if kind == "v2" else "cpu.cfs_quota_us")
        with open(cpu) as fh:
            assert fh.read().split()[0] == "100000"  # one CPU per slot at most
        after = box.run(Job((CellSource(0, "ok", "def f(): return 1"),), (Call("f", "f"),), lim))
    assert out.calls["one"].value == 1  # alone, a 300 MB process is fine
    assert out.calls["four"].status != "ok" or out.calls["four"].value < 4, out.calls["four"]
    assert after.calls["f"].value == 1
    assert f"a cgroup ({kind}) per slot" in out.isolation_detail


def test_isolation_detail_says_what_held_as_an_unprivileged_user() -> None:
    _need_namespaces()
    code = textwrap.dedent("""
        import json
        from grader.sandbox import CellSource, Job, Sandbox
        with Sandbox("namespaces") as box:
            out = box.run(Job((CellSource(0, "c", "x = 1"),), ()))
        print(json.dumps(out.isolation_detail))
    """)
    detail = run_unprivileged(code)
    assert "per submission" in detail and "read-only root" in detail
    assert "cgroup" in detail


# ------------------------------------------------------------- what of /usr the sandbox sees
LOOK = r'''
import os, sys
def look():
    seen = {p: os.path.exists(p) for p in ("/usr/bin", "/usr/sbin", "/usr/local", "/usr/share",
                                             "/usr/include", "/usr/libexec", "/bin/sh", "/etc")}
    packages = set()
    for base, dirs, files in os.walk("/"):
        if base.startswith(("/proc", "/sys")):
            dirs[:] = []
            continue
        packages.update(d for d in dirs if d in ("jinja2", "pytest", "hypothesis", "grader",
                                                  "nbformat", "pip", "setuptools"))
    return str((sorted(p for p, there in seen.items() if there), sorted(packages),
                sys.executable, os.path.exists(sys.executable)))
'''


def test_only_the_needed_parts_of_usr_and_only_allowed_packages_are_there() -> None:
    _need_namespaces()
    with Sandbox("namespaces") as box:
        out = box.run(Job((CellSource(0, "look", LOOK),), (Call("l", "look"),), LIMITS))
    visible, packages, _python, python_there = eval(out.calls["l"].value)  # our own test's repr
    # as root the start needs /usr/bin/setpriv and /usr/bin/unshare, and nothing else from /usr/bin
    assert set(visible) <= ({"/usr/bin"} if os.geteuid() == 0 else set()), visible
    if visible:
        listing = run_in_box_listdir("/usr/bin")
        assert set(listing) <= {"setpriv", "unshare", os.path.basename(os.path.realpath(sys.executable))}
    assert packages == [] and python_there


def run_in_box_listdir(path: str) -> list[str]:
    with Sandbox("namespaces") as box:
        out = box.run(Job((CellSource(0, "ls", f"import os\ndef ls(): return str(os.listdir({path!r}))"),),
                          (Call("l", "ls"),), LIMITS))
    return eval(out.calls["l"].value)


def test_the_sandbox_tests_pass_as_an_unprivileged_user() -> None:
    """Run as root (as on CI), the sandbox tests run once more as uid 65534: the user path too."""
    if os.geteuid() != 0:
        pytest.skip("already running as an unprivileged user: this run is that path")
    _need_namespaces()
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    if os.environ.get("CI"):
        env["CI"] = os.environ["CI"]
    with tempfile.TemporaryDirectory(prefix="grader-stage-") as stage:
        argv = as_nobody([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "test_sandbox.py"),
                          (f"{ROOT / 'tests' / 'test_sandbox_isolation.py'}::"
                           "test_kill_9_of_the_grading_process_leaves_no_orphans")], stage)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, cwd="/", env=env,
                              check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]

"""A fresh environment for every submission, inside the sandbox (imported by ``worker.py``).

Namespace mode: the warm worker holds CAP_SYS_ADMIN in its own user namespace (never in the
host's) and has a mount namespace of its own. Before each job it mounts a new, size-bounded tmpfs on
/tmp and /dev/shm (the rest of the root is read-only); after the job, once every process of it is
dead, it detaches them, so what a submission wrote is discarded, never wiped file by file. The job's
child then takes a new IPC namespace (SysV shm, semaphores, message queues), a new network namespace
(abstract sockets, ports in TIME_WAIT; not even loopback is up) and a new session keyring, drops
every capability and stacks the student seccomp filter on top of the one bubblewrap installed; only
then does student code run. Process mode: only the student filter (best effort).

Standard library only and cheap to import: ``python -I -S fresh.py --selftest`` is what the parent's
probe runs in bubblewrap to decide whether namespace isolation works here.
"""

from __future__ import annotations

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import seccomp  # noqa: E402

_PR_CAPBSET_DROP, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWNET = 0x00020000, 0x08000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MNT_DETACH = 2, 4, 8, 2
_SYS_CAPSET, _SYS_KEYCTL, _KEYCTL_JOIN_SESSION_KEYRING = 126, 250, 1
MOUNTS = ("/tmp", "/dev/shm")  # the only writable places, a new tmpfs for every job

_libc = ctypes.CDLL(None, use_errno=True)
_state: dict = {"last_cap": 40, "filter": b""}


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def prepare(namespaces: bool) -> None:
    """Once per worker: the student filter and, in namespace mode, a mount namespace of its own."""
    if seccomp.supported():
        _state["filter"] = seccomp.student_program()
    if namespaces:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            _state["last_cap"] = int(fh.read())
        _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS) in the sandbox worker")


def mount(tmp_mb: int) -> None:
    """A new tmpfs of ``tmp_mb`` MB on /tmp and on /dev/shm."""
    for path in MOUNTS:
        opts = f"size={max(int(tmp_mb), 1)}m,mode=0700,nr_inodes=16384".encode()
        _check(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                           opts), f"mount tmpfs on {path}")


def unmount() -> None:
    """Detach the job's tmpfs mounts (ours only: bubblewrap's are locked and stay)."""
    for path in MOUNTS:
        while _libc.umount2(path.encode(), _MNT_DETACH) == 0:
            pass


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


def confine_child(namespaces: bool) -> None:
    """In the job's child, before any student code: new IPC, network and keyring, no caps, seccomp."""
    try:  # if the slot's cgroup runs out of memory, the student's processes go first
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass
    if namespaces:
        _check(_libc.unshare(_CLONE_NEWIPC | _CLONE_NEWNET), "unshare(CLONE_NEWIPC|CLONE_NEWNET)")
        _check(_libc.syscall(_SYS_KEYCTL, _KEYCTL_JOIN_SESSION_KEYRING, None), "a new session keyring")
        for cap in range(_state["last_cap"] + 1):
            _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
        _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two zeroed data sets
        _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), ctypes.byref((ctypes.c_uint32 * 6)())),
               "capset (drop all)")
    if _state["filter"]:
        try:
            seccomp.install(_state["filter"], _libc)
        except OSError:
            if namespaces:  # the probe made sure it works; process mode is best effort
                raise


def selftest() -> None:
    """What the probe runs: set up one job's environment as for a submission, check it, exit."""
    try:
        prepare(True)
        mount(1)
    except OSError as exc:
        print(f"the sandbox worker cannot set up a fresh environment: {exc}", file=sys.stderr)
        os._exit(3)
    pid = os.fork()
    if pid == 0:
        problems = []
        try:
            confine_child(True)
            if os.getuid() == 0:
                problems.append("runs as uid 0")
            with open("/proc/self/status") as fh:
                if "CapEff:\t0000000000000000" not in fh.read():
                    problems.append("capabilities were not dropped")
            for path in ("/tmp/ok", "/dev/shm/ok"):
                open(path, "w").close()
            for path in ("/x", "/sandbox/x", "/sandbox/lib/x", "/dev/x"):
                try:
                    open(path, "w").close()
                    problems.append(f"{path} is writable")
                except OSError:
                    pass
            if seccomp.supported() and _libc.unshare(_CLONE_NEWIPC) == 0:
                problems.append("namespaces can still be created")
        except BaseException as exc:  # noqa: BLE001
            problems.append(f"{type(exc).__name__}: {exc}")
        if problems:
            print("; ".join(problems), file=sys.stderr)
        os._exit(1 if problems else 0)
    _, status = os.waitpid(pid, 0)
    unmount()
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__" and sys.argv[1:] == ["--selftest"]:
    selftest()

"""Parent side of the sandbox: the bwrap command, the warm zygote, and driving one job.

Why it is shaped like this: starting Python and importing numpy costs ~100 ms, far too much per
submission, so each :class:`Sandbox` keeps one warm zygote inside bubblewrap and asks it to fork a
fresh child per job. Everything the child sends is untrusted: reads use deadlines, every size is
capped, values are decoded by :mod:`.protocol` (never pickle), and student failures become
outcomes, never exceptions. Deadlines are enforced here, in the parent, where the student cannot
interfere with them.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from grader.carry import Recording
from grader.errors import SandboxError
from grader.sandbox import cgroups
from grader.sandbox.command import describe, minimal_env, probe_bwrap, seccomp_memfd, worker_argv
from grader.sandbox.protocol import (
    FrameDecoder,
    ProtocolError,
    TooLarge,
    Unconvertible,
    decode_value,
    encode_frame,
    encode_value,
)

MAX_RESTARTS = 25  # each restart is bounded: a failed function is not called again
_VALUE_TYPES = (type(None), bool, int, float, str, Unconvertible)


@dataclass(frozen=True)
class Limits:
    """Per-job limits; wall-clock ones are enforced by the parent, the rest by rlimits."""

    cell_timeout: float = 10.0
    call_timeout: float = 5.0
    total_timeout: float = 120.0
    memory_mb: int = 1024
    cpu_seconds: int = 60
    max_processes: int = 32
    max_file_mb: int = 16
    max_open_files: int = 64
    output_bytes: int = 65536
    max_result_mb: int = 64
    tmp_mb: int = 64  # size of the fresh /tmp (and, separately, /dev/shm) of each submission
    allowed_packages: tuple[str, ...] = ("numpy",)


@dataclass(frozen=True)
class CellSource:
    index: int
    label: str
    source: str


@dataclass(frozen=True)
class Call:
    id: str
    function: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    record: tuple[str, ...] = ()  # the student's own functions whose calls inside this one are recorded


@dataclass(frozen=True)
class Job:
    cells: tuple[CellSource, ...]
    calls: tuple[Call, ...]
    limits: Limits = Limits()
    run_as: str = "__main__"  # the cells' ``__name__``: a module's own name, so its __main__ demo does not run


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    message: str
    traceback: str


# What happened to a cell or a call, as the sandbox saw it (comparison turns these into a Status).
CellRunStatus = Literal["ok", "error", "timeout", "crashed"]
CallStatus = Literal["ok", "error", "missing", "timeout", "crashed", "not_run"]


@dataclass(frozen=True)
class CellOutcome:
    index: int
    status: CellRunStatus
    error: ErrorInfo | None = None
    output: str = ""


@dataclass(frozen=True)
class CallOutcome:
    id: str
    status: CallStatus
    value: object = None
    error: ErrorInfo | None = None
    output: str = ""
    mutated_args: tuple[str, ...] = ()
    recorded: Recording | None = None  # calls to the student's own functions made inside this one


@dataclass(frozen=True)
class JobOutcome:
    cells: tuple[CellOutcome, ...]
    calls: dict[str, CallOutcome]
    names: tuple[str, ...]
    isolation: str
    restarts: int
    notes: tuple[str, ...] = ()
    isolation_detail: str = ""  # what that level held on this machine (see the README)


_probe_lock = threading.Lock()
_probe: tuple[str, str] | None = None


def available_isolation() -> str:
    """``"namespaces"`` if bwrap works here (probed once per process), else ``"process"``."""
    return _probe_result()[0]


def _probe_result() -> tuple[str, str]:
    global _probe
    with _probe_lock:
        if _probe is None:
            _probe = probe_bwrap()
        return _probe


_cgroup_probe: tuple[str, str] | None = None


def cgroup_support() -> tuple[str, str]:
    """("v2" | "v1", "") if each slot gets its own cgroup here, else ("", why not); probed once."""
    global _cgroup_probe
    with _probe_lock:
        if _cgroup_probe is None:
            _cgroup_probe = cgroups.probe()
        return _cgroup_probe


def isolation_detail(isolation: str, cgroup: tuple[str, str]) -> str:
    """One line for results: what this level held here, cgroups included."""
    if isolation == "namespaces":
        held = describe()
    else:
        held = ("no namespaces: rlimits, timeouts and the student seccomp filter only; the code "
                "runs as the grading user")
    return f"{held}; {cgroups.describe(*cgroup)}"


class _Gone(Exception):
    """The child stopped answering: ``kind`` is timeout, crashed, protocol or too_large."""

    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind, self.text = kind, text


class _Zygote:
    """One warm worker process (inside bwrap or not) and its control socket."""

    def __init__(self, isolation: str, packages: tuple[str, ...]):
        self.isolation = isolation
        self.cgroup: cgroups.SlotCgroup | None = None
        kind, why = cgroup_support()
        self.cgroup_state = (kind, why)
        if kind:
            try:
                self.cgroup = cgroups.SlotCgroup(kind)
            except OSError as exc:
                self.cgroup_state = ("", f"the slot's cgroup could not be made: {exc}")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ctrl = ours
        self.stderr = tempfile.TemporaryFile()
        # process mode: the packages' symlink dir and the jobs' scratch root, both chosen here
        self.linkdir = None if isolation == "namespaces" else tempfile.mkdtemp(prefix="grader-site-")
        filter_fd = seccomp_memfd() if isolation == "namespaces" else None
        try:
            argv = worker_argv(isolation, packages, theirs.fileno(), self.linkdir, filter_fd)
            if self.cgroup is not None:
                argv = self.cgroup.argv(argv)
            fds = [theirs.fileno()] + ([] if filter_fd is None else [filter_fd])
            self.proc = subprocess.Popen(
                argv, pass_fds=fds, start_new_session=True, env=minimal_env(),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        finally:
            theirs.close()
            if filter_fd is not None:
                os.close(filter_fd)
        try:
            msg = self.recv(time.monotonic() + 60)
        except TimeoutError:
            msg = None
        if not msg or msg.get("ev") != "ready":
            self.stderr.seek(0)
            err = self.stderr.read()[-2000:].decode("utf-8", "replace")
            self.stop()
            raise SandboxError(f"the sandbox worker did not start ({isolation}): {err.strip() or 'no message'}")

    def recv(self, deadline: float) -> dict | None:
        """One control message, ``None`` on EOF; raises TimeoutError past ``deadline``."""
        import json  # noqa: PLC0415
        if not select.select([self.ctrl], [], [], max(deadline - time.monotonic(), 0))[0]:
            raise TimeoutError
        data = self.ctrl.recv(65536)
        return json.loads(data) if data else None

    def send(self, msg: dict, fds: Sequence[int] = ()) -> None:
        import json  # noqa: PLC0415
        socket.send_fds(self.ctrl, [json.dumps(msg).encode()], list(fds))

    def stop(self) -> None:
        """Close the control socket (the zygote cleans up and exits); kill it if it lingers."""
        self.ctrl.close()
        if hasattr(self, "proc"):
            try:
                self.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(timeout=10)
        self.stderr.close()
        if self.linkdir:
            shutil.rmtree(self.linkdir)
        if self.cgroup is not None:
            self.cgroup.remove()


class Sandbox:
    """One warm worker slot; use one per thread, as a context manager."""

    def __init__(self, isolation: str = "auto", allowed_packages: tuple[str, ...] = ("numpy",)):
        best, why = _probe_result()
        if isolation == "auto":
            isolation = best
        elif isolation == "namespaces" and best != "namespaces":
            raise SandboxError(f"namespace isolation is not usable here: {why}. Install "
                               "bubblewrap and enable unprivileged user namespaces, or use "
                               "isolation='process'.")
        elif isolation not in ("namespaces", "process"):
            raise SandboxError(f"unknown isolation {isolation!r}: use auto, namespaces or process")
        self.isolation = isolation
        self.allowed_packages = tuple(allowed_packages)
        self._zygote: _Zygote | None = _Zygote(isolation, self.allowed_packages)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the zygote and everything under it."""
        if self._zygote is not None:
            self._zygote.stop()
            self._zygote = None

    @property
    def live(self) -> _Zygote:
        """The running zygote (a closed Sandbox has none)."""
        if self._zygote is None:
            raise SandboxError("this Sandbox is closed")
        return self._zygote

    def _restart(self) -> None:
        if self._zygote is not None:
            self._zygote.stop()
        self._zygote = _Zygote(self.isolation, self.allowed_packages)

    def run(self, job: Job) -> JobOutcome:
        """Run the cells, then each call; never raises for anything the student code does."""
        if self._zygote is None:
            raise SandboxError("this Sandbox is closed")
        if set(job.limits.allowed_packages) - set(self.allowed_packages):
            raise SandboxError("the job allows packages this sandbox was not started with: "
                               f"{sorted(set(job.limits.allowed_packages) - set(self.allowed_packages))}")
        if self._zygote.proc.poll() is not None:  # died since the last job (killed by a student)
            self._restart()
        st = _State(job)
        total = time.monotonic() + job.limits.total_timeout
        while not self._attempt(job, st, total):
            if time.monotonic() >= total:
                st.notes.append(f"The whole job exceeded its time limit of "
                                f"{job.limits.total_timeout:g} s; what was left did not run.")
                break
            if st.restarts >= MAX_RESTARTS:
                st.notes.append(f"The worker had to be restarted {MAX_RESTARTS} times; "
                                "the remaining calls were not run.")
                break
            st.restarts += 1
        return st.outcome(self.isolation, self.isolation_detail)

    @property
    def isolation_detail(self) -> str:
        state = self._zygote.cgroup_state if self._zygote is not None else cgroup_support()
        return isolation_detail(self.isolation, state)

    # ---------------------------------------------------------------------------- one attempt
    def _attempt(self, job: Job, st: _State, total: float) -> bool:
        """Run one child through the job; False when it died early (the caller restarts)."""
        lim = job.limits
        try:
            child = _Child(self, lim, total)
        except (OSError, TimeoutError, _Gone):
            self._restart()
            st.notes.append("The sandbox worker had to be restarted.")
            return False
        current: tuple[str, Any] | None = None
        try:
            cells = [c for c in job.cells if c.index not in st.skip]
            child.send({"op": "cells", "labels": [c.label for c in job.cells], "name": job.run_as,
                        "cells": [{"index": c.index, "label": c.label, "source": c.source}
                                  for c in cells]}, lim.cell_timeout)
            for cell in cells:
                current = ("cell", cell)
                child.expect("cell_start", lim.cell_timeout)
                msg, _ = child.expect("cell_end", lim.cell_timeout)
                st.record_cell(cell.index, msg)
            current = None
            msg, _ = child.expect("names", lim.cell_timeout)
            st.names = tuple(str(n)[:200] for n in msg.get("names", [])[:10000]
                             if isinstance(msg.get("names"), list))
            # All calls go in one frame and the child answers them in order without waiting for us:
            # a round trip per call would make every call wait for this thread to get the GIL back.
            # The deadline of each call runs from the moment we saw the previous answer, so a busy
            # parent can only ever give a call more time, never less.
            calls = list(st.pending)
            blobs: list[bytes] = []
            batch = [{"id": c.id, "function": c.function, "args": encode_value(tuple(c.args), blobs),
                      "kwargs": encode_value(dict(c.kwargs), blobs), "record": list(c.record)} for c in calls]
            child.send({"op": "calls", "calls": batch}, lim.call_timeout, blobs)
            for call in calls:
                current = ("call", call)
                msg, out = child.expect("call_end", lim.call_timeout)
                if msg.get("id") != call.id:
                    raise _Gone("protocol", "answers came out of order")
                st.record_call(call, msg, out)
            current = None
            child.finish()
            return True
        except _Gone as gone:
            child.kill()
            gone = child.explain(gone)
            if current is None:
                st.notes.append(f"The worker failed between cells and calls: {gone.text}.")
            elif current[0] == "cell":
                st.fail_cell(current[1].index, gone)
            else:
                st.fail_call(current[1], gone)
            return False


class _Child:
    """The parent's view of one forked child: its socket, deadlines and exit status."""

    def __init__(self, box: Sandbox, lim: Limits, total: float):
        self.box, self.lim, self.total = box, lim, total
        self.exit: tuple[int | None, int | None] | None = None
        self.killed = False
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.decoder = FrameDecoder(lim.max_result_mb << 20)
        try:
            limits = {k: getattr(lim, k) for k in ("memory_mb", "cpu_seconds", "max_processes",
                                                    "max_file_mb", "max_open_files",
                                                    "output_bytes", "max_result_mb", "tmp_mb")}
            zygote = box.live
            if zygote.cgroup is not None:
                zygote.cgroup.set_limits(lim.memory_mb, lim.tmp_mb, lim.max_processes)
            zygote.send({"op": "run", "limits": limits}, [theirs.fileno()])
        finally:
            theirs.close()

    def _deadline(self, seconds: float) -> tuple[float, bool]:
        mine = time.monotonic() + seconds
        return (self.total, True) if self.total < mine else (mine, False)

    def send(self, msg: dict, seconds: float, blobs: Sequence[bytes] = ()) -> None:
        deadline, _ = self._deadline(seconds)
        try:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            self.sock.sendall(encode_frame(msg, blobs))
        except (socket.timeout, TimeoutError):
            raise _Gone("timeout", "") from None
        except OSError:
            raise _Gone("crashed", "") from None

    def expect(self, event: str, seconds: float) -> tuple[dict, list[bytes]]:
        """The next frame, which must be ``event``; raises _Gone on deadline, death or garbage."""
        deadline, is_total = self._deadline(seconds)
        while True:
            try:
                frame = self.decoder.next()
            except TooLarge:
                raise _Gone("too_large", "") from None
            except ProtocolError as exc:
                raise _Gone("protocol", str(exc)) from None
            if frame is not None:
                if frame[0].get("ev") != event:
                    raise _Gone("protocol", f"expected {event}, got {str(frame[0].get('ev'))[:40]}")
                return frame
            if self.exit is not None:
                raise _Gone("crashed", "")
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Gone("timeout", "total" if is_total else "")
            ready = select.select([self.sock, self.box.live.ctrl], [], [], left)[0]
            if self.sock in ready and not self._read():
                self._await_exit(min(deadline, time.monotonic() + 1.0))
            if self.box.live.ctrl in ready and self.exit is None:
                self._ctrl_message(time.monotonic())

    def _read(self) -> bool:
        self.sock.settimeout(0)
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if data:
            try:
                self.decoder.feed(data)
            except TooLarge:
                raise _Gone("too_large", "") from None
            except ProtocolError as exc:
                raise _Gone("protocol", str(exc)) from None
        return bool(data)

    def _ctrl_message(self, deadline: float) -> None:
        try:
            msg = self.box.live.recv(deadline)
        except TimeoutError:
            return
        if msg is None:  # the zygote itself died
            self.box._restart()
            self.exit = (None, None)
            raise _Gone("crashed", "the sandbox worker itself died")
        if msg.get("ev") == "exited":
            self.exit = (msg.get("code"), msg.get("signal"))
            while self._read():  # drain what the child wrote before it died
                pass

    def _await_exit(self, deadline: float) -> None:
        """After EOF on the job socket: the child is dead or closed it; learn which."""
        while self.exit is None and time.monotonic() < deadline:
            self._ctrl_message(deadline)
        if self.exit is None:
            raise _Gone("crashed", "the code closed its connection to the grader")

    def kill(self) -> None:
        """Kill the child (and everything it started); restart the zygote if it does not obey."""
        if self.exit is not None:
            return
        self.killed = True
        try:
            self.box.live.send({"op": "kill"})
            deadline = time.monotonic() + 1.0
            while self.exit is None and time.monotonic() < deadline:
                self._ctrl_message(deadline)
        except (OSError, _Gone):
            pass
        if self.exit is None:
            self.box._restart()
        self.sock.close()

    def finish(self) -> None:
        try:
            self.send({"op": "done"}, 2.0)
            deadline = time.monotonic() + 2.0
            while self.exit is None and time.monotonic() < deadline:
                self._ctrl_message(deadline)
        except _Gone:
            pass
        self.kill()
        self.sock.close()

    def explain(self, gone: _Gone) -> _Gone:
        """Turn a raw _Gone into one with a sentence a student can act on."""
        if gone.kind == "timeout":
            if gone.text == "total":
                return _Gone("timeout", f"the whole job exceeded its time limit of "
                                        f"{self.lim.total_timeout:g} s")
            return gone
        if gone.kind == "too_large":
            return _Gone("too_large", f"returned a value too large to check (more than "
                                      f"{self.lim.max_result_mb} MB)")
        if gone.kind == "protocol":
            return _Gone("crashed", f"the code broke the connection to the grader ({gone.text})")
        if gone.text:
            return gone
        return _Gone("crashed", describe_exit(self.exit, self.lim, self.killed))


def describe_exit(exit: tuple[int | None, int | None] | None, lim: Limits, killed: bool) -> str:
    """Say in words how a child ended."""
    code, sig = exit if exit else (None, None)
    if sig == signal.SIGXCPU:
        return f"exceeded the CPU time limit of {lim.cpu_seconds} s"
    if sig == signal.SIGSEGV:
        return "segmentation fault (very deep recursion or a crash in native code)"
    if sig:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {sig} ({name})"
    if code is not None:
        return f"the process exited with status {code} before it finished (os._exit?)"
    return "the process died"


class _State:
    """Outcomes gathered across restarts of one job."""

    def __init__(self, job: Job):
        self.job = job
        self.cells: dict[int, CellOutcome] = {}
        self.calls: dict[str, CallOutcome] = {}
        self.pending: list[Call] = list(job.calls)
        self.skip: set[int] = set()
        self.names: tuple[str, ...] = ()
        self.notes: list[str] = []
        self.restarts = 0

    def record_cell(self, index: int, msg: dict) -> None:
        if index not in self.cells:
            status: CellRunStatus = "ok" if msg.get("status") == "ok" else "error"
            self.cells[index] = CellOutcome(index, status, _error(msg.get("error")),
                                            _text(msg.get("output")))

    def fail_cell(self, index: int, gone: _Gone) -> None:
        self.skip.add(index)
        kind: CellRunStatus = "timeout" if gone.kind == "timeout" else "crashed"
        text = gone.text or f"the cell did not finish within {self.job.limits.cell_timeout:g} s"
        name = "Timeout" if kind == "timeout" else "Crash"
        self.cells.setdefault(index, CellOutcome(index, kind, ErrorInfo(name, text, "")))

    def record_call(self, call: Call, msg: dict, blobs: list[bytes]) -> None:
        status: CallStatus = msg["status"] if msg.get("status") in ("ok", "error", "missing") else "error"
        value = None
        if status == "ok":
            try:
                value = decode_value(msg.get("value"), blobs)
            except (ProtocolError, RecursionError) as exc:
                status = "error"
                msg = {"error": {"type": "ProtocolError", "message": str(exc)}}
            else:
                if not isinstance(value, _VALUE_TYPES) and not hasattr(value, "dtype"):
                    value = Unconvertible(type(value).__name__, repr(value)[:200])
        elif status not in ("error", "missing"):
            status = "error"
        mutated: list[Any] = msg["mutated"] if isinstance(msg.get("mutated"), list) else []
        recorded = _recorded(msg.get("record"), blobs, call.record) if status == "ok" else None
        self.calls[call.id] = CallOutcome(call.id, status, value, _error(msg.get("error")),
                                          _text(msg.get("output")),
                                          tuple(str(m)[:100] for m in mutated[:100]), recorded)
        self.pending.remove(call)

    def fail_call(self, call: Call, gone: _Gone) -> None:
        kind: CallStatus = "timeout" if gone.kind == "timeout" else "error" if gone.kind == "too_large" else "crashed"
        text = gone.text or f"the call did not finish within {self.job.limits.call_timeout:g} s"
        name = {"timeout": "Timeout", "too_large": "ValueTooLarge"}.get(gone.kind, "Crash")
        self.calls[call.id] = CallOutcome(call.id, kind, error=ErrorInfo(name, text, ""))
        self.pending.remove(call)
        if kind in ("timeout", "crashed"):  # it would most likely do it again: spare the time
            what = "timed out" if kind == "timeout" else "crashed"
            for other in [c for c in self.pending if c.function == call.function]:
                self.calls[other.id] = CallOutcome(other.id, kind, error=ErrorInfo(
                    name, f"not run again: `{call.function}` already {what} on an earlier case ({text})", ""))
                self.pending.remove(other)

    def outcome(self, isolation: str, detail: str = "") -> JobOutcome:
        for cell in self.job.cells:
            self.cells.setdefault(cell.index, CellOutcome(
                cell.index, "crashed", ErrorInfo("NotRun", "the cell was not run: the job "
                                                 "gave up before it (see the notes)", "")))
        for call in self.pending:
            self.calls[call.id] = CallOutcome(call.id, "not_run", error=ErrorInfo(
                "NotRun", "the call was not run: the job gave up before it (see the notes)", ""))
        return JobOutcome(tuple(self.cells[c.index] for c in self.job.cells),
                          {c.id: self.calls[c.id] for c in self.job.calls}, self.names,
                          isolation, self.restarts, tuple(self.notes), detail)


def _recorded(entries: Any, blobs: list[bytes], asked: tuple[str, ...]) -> Recording | None:
    """The recorded building-block calls, decoded (like any value) only if a replay asks for them."""
    if not isinstance(entries, list) or not entries or not asked:
        return None
    return Recording(entries, blobs, asked, decode_value)


def _text(value: Any, cap: int = 1 << 20) -> str:
    return value[:cap] if isinstance(value, str) else ""


def _error(value: Any) -> ErrorInfo | None:
    if not isinstance(value, dict):
        return None
    return ErrorInfo(_text(value.get("type"), 200), _text(value.get("message"), 4000),
                     _text(value.get("traceback"), 40000))


__all__ = ["Sandbox", "Limits", "Job", "CellSource", "Call", "JobOutcome", "CellOutcome",
           "CallOutcome", "ErrorInfo", "Unconvertible", "available_isolation"]

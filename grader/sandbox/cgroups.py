"""One cgroup per sandbox slot, where the machine lets grader make one.

A slot runs one submission at a time and discards everything of it before the next (see
``worker.py``), so the slot's cgroup is the submission's: its memory (tmpfs and shared memory pages
included), process count and CPU are bounded together, whatever the submission does with sessions,
process groups or forks, and a hungry submission cannot slow the other slot's down.

Used when grader may create cgroups: the cgroup v2 hierarchy with the memory, pids and cpu
controllers delegated to grader's own cgroup, or (as root) the v1 hierarchies of those
controllers. Otherwise :func:`probe` says why not and the sandbox records that with every result.
The bwrap command is started through ``sh``, which moves itself into the cgroup before it execs
bwrap, so every process of the slot is inside from its first instruction.
"""

from __future__ import annotations

import itertools
import os
import shlex

_BASE = "/sys/fs/cgroup"
_CONTROLLERS = ("memory", "pids", "cpu")
_counter = itertools.count()
ZYGOTE_MB = 256  # the warm worker's own share of the memory limit (numpy imported)


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    out = {}
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(",") if names else [""]:
                out[name] = path
    return out


def probe() -> tuple[str, str]:
    """("v2" | "v1", "") where slot cgroups can be made here, else ("", why not)."""
    try:
        own = _own_paths()
    except OSError as exc:
        return "", f"cannot read /proc/self/cgroup ({exc})"
    v2_root = _BASE if os.path.exists(f"{_BASE}/cgroup.controllers") else f"{_BASE}/unified"
    v2_dir = os.path.join(v2_root, own.get("", "/").lstrip("/"))
    try:
        with open(os.path.join(v2_dir, "cgroup.subtree_control")) as fh:
            delegated = set(fh.read().split())
    except OSError:
        delegated = set()
    if set(_CONTROLLERS) <= delegated and os.access(v2_dir, os.W_OK):
        return "v2", ""
    if all(name in own and os.access(_v1_dir(name, own), os.W_OK) for name in _CONTROLLERS):
        return "v1", ""
    if not os.path.exists(f"{_BASE}/cgroup.controllers"):
        return "", ("cgroup v2 has no memory/pids/cpu controllers here (they are on the v1 "
                    "hierarchy, which only root may use)")
    return "", "the memory, pids and cpu controllers are not delegated to grader's cgroup"


def _v1_dir(controller: str, own: dict[str, str]) -> str:
    return os.path.join(_BASE, controller, own[controller].lstrip("/"))


class SlotCgroup:
    """The cgroup(s) of one zygote; :meth:`argv` wraps its command, :meth:`remove` cleans up."""

    def __init__(self, kind: str):
        self.kind = kind
        own = _own_paths()
        name = f"grader-{os.getpid()}-{next(_counter)}"
        if kind == "v2":
            root = _BASE if os.path.exists(f"{_BASE}/cgroup.controllers") else f"{_BASE}/unified"
            self.dirs = {c: os.path.join(root, own[""].lstrip("/"), name) for c in _CONTROLLERS}
        else:
            self.dirs = {c: os.path.join(_v1_dir(c, own), name) for c in _CONTROLLERS}
        self.made: list[str] = []
        for path in dict.fromkeys(self.dirs.values()):
            _remove_stale(os.path.dirname(path))
            os.mkdir(path, 0o755)
            self.made.append(path)
        self.limits: tuple[int, int] | None = None
        self._write(self.dirs["cpu"], "cpu.max" if kind == "v2" else "cpu.cfs_quota_us",
                    "100000 100000" if kind == "v2" else "100000")  # at most one CPU

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` started by a shell that first moves itself into this cgroup."""
        moves = " && ".join(f"echo $$ > {shlex.quote(os.path.join(d, 'cgroup.procs'))}"
                            for d in dict.fromkeys(self.dirs.values()))
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "sh"] + argv

    def set_limits(self, memory_mb: int, tmp_mb: int, processes: int) -> None:
        """Memory for the job (its address-space limit plus /tmp and /dev/shm) and the worker."""
        if self.limits == (memory_mb + 2 * tmp_mb, processes):
            return
        total = (memory_mb + 2 * tmp_mb + ZYGOTE_MB) << 20
        if self.kind == "v2":
            self._write(self.dirs["memory"], "memory.max", str(total))
            self._write(self.dirs["memory"], "memory.swap.max", "0", missing_ok=True)
        else:
            self._write(self.dirs["memory"], "memory.limit_in_bytes", str(total))
        self._write(self.dirs["pids"], "pids.max", str(processes + 4))
        self.limits = (memory_mb + 2 * tmp_mb, processes)

    def memory_limit(self) -> int:
        name = "memory.max" if self.kind == "v2" else "memory.limit_in_bytes"
        with open(os.path.join(self.dirs["memory"], name)) as fh:
            return int(fh.read())

    def peak_memory(self) -> int | None:
        name = "memory.peak" if self.kind == "v2" else "memory.max_usage_in_bytes"
        try:
            with open(os.path.join(self.dirs["memory"], name)) as fh:
                return int(fh.read())
        except OSError:
            return None

    def remove(self) -> None:
        for path in reversed(self.made):
            try:
                os.rmdir(path)
            except OSError:
                pass
        self.made = []

    @staticmethod
    def _write(folder: str, name: str, value: str, missing_ok: bool = False) -> None:
        try:
            with open(os.path.join(folder, name), "w") as fh:
                fh.write(value)
        except FileNotFoundError:
            if not missing_ok:
                raise


def _remove_stale(parent: str) -> None:
    """Empty slot cgroups of grader processes that are gone (killed before they could clean up)."""
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        parts = entry.split("-")
        if len(parts) == 3 and parts[0] == "grader" and parts[1].isdigit() \
                and not os.path.exists(f"/proc/{parts[1]}"):
            try:
                os.rmdir(os.path.join(parent, entry))
            except OSError:
                pass


def describe(kind: str, why: str) -> str:
    if kind:
        return (f"a cgroup ({kind}) per slot, one submission at a time: memory incl. /tmp and "
                "shared memory, processes and at most one CPU bounded together")
    return f"no per-submission cgroup ({why}): memory is bounded per process, CPU shared by session"

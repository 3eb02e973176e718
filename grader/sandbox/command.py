"""The commands that start the warm worker: bubblewrap's argv (namespace mode) or plain Python.

Kept apart from the runner because this is where the trust boundary's *shape* is decided: which
host paths are visible (only /usr, the Python prefix with its site-packages hidden, and the allowed
packages), which namespaces are new, and how root drops to an unprivileged uid inside.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys

from grader.errors import SandboxError

_HERE = os.path.dirname(os.path.abspath(__file__))
_NOBODY = "65534"


def minimal_env() -> dict[str, str]:
    """An explicit environment: nothing of the instructor's leaks into the sandbox."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _package_dirs(packages: tuple[str, ...]) -> list[tuple[str, str]]:
    """(host path, name) of each allowed package plus its ``<name>.libs`` sibling."""
    found = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise SandboxError(f"the allowed package {name!r} is not installed for {sys.executable}")
        if spec.submodule_search_locations:
            path = os.path.realpath(list(spec.submodule_search_locations)[0])
        elif spec.origin and os.path.isfile(spec.origin):
            path = os.path.realpath(spec.origin)
        else:
            raise SandboxError(f"the allowed package {name!r} is not a plain directory or file")
        found.append((path, os.path.basename(path)))
        libs = os.path.join(os.path.dirname(path), f"{name}.libs")
        if os.path.isdir(libs):
            found.append((libs, f"{name}.libs"))
    return found


def _hidden_site_dirs() -> list[str]:
    """Every site-/dist-packages dir the sandbox could see; each gets an empty tmpfs."""
    prefixes = [sys.base_prefix, "/usr", "/usr/local"]
    found = set(site.getsitepackages(prefixes)) | {"/usr/lib/python3/dist-packages"}
    for prefix in prefixes:
        lib = os.path.join(prefix, "lib")
        if os.path.isdir(lib):
            for entry in os.listdir(lib):
                if entry.startswith("python3"):
                    for leaf in ("site-packages", "dist-packages"):
                        found.add(os.path.join(lib, entry, leaf))
    visible = ("/usr/", sys.base_prefix.rstrip("/") + "/")
    return sorted(os.path.realpath(p) for p in found
                  if os.path.isdir(p) and os.path.realpath(p).startswith(visible))


def _dirs_to(path: str) -> list[str]:
    """bwrap args creating each missing ancestor of ``path`` with mode 0755 (not 0700)."""
    out: list[str] = []
    parts = path.strip("/").split("/")[:-1]
    for i in range(1, len(parts) + 1):
        out += ["--perms", "0755", "--dir", "/" + "/".join(parts[:i])]
    return out


def bwrap_argv(tail: list[str], packages: tuple[str, ...]) -> list[str]:
    """The bubblewrap command: no network, own pid/ipc/uts, only /usr, Python and the packages."""
    root = os.geteuid() == 0
    prefix = os.path.realpath(sys.base_prefix)
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--as-pid-1"]
    if root:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--uid", _NOBODY, "--gid", _NOBODY]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/lib", "/lib64", "/bin", "/sbin"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top) and top != "/sbin":
            argv += ["--ro-bind", top, top]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    if not prefix.startswith("/usr/"):
        argv += _dirs_to(prefix) + ["--ro-bind", prefix, prefix]
    for hidden in _hidden_site_dirs():
        argv += ["--tmpfs", hidden]
    argv += ["--perms", "0755", "--dir", "/sandbox", "--perms", "0755", "--dir", "/sandbox/site",
             "--perms", "0755", "--dir", "/sandbox/lib"]
    for path, name in _package_dirs(packages):
        argv += ["--ro-bind", path, f"/sandbox/site/{name}"]
    for name in ("worker.py", "protocol.py"):
        argv += ["--ro-bind", os.path.join(_HERE, name), f"/sandbox/lib/{name}"]
    if root:  # bwrap must run as root to see /root/...; drop to nobody inside, for good
        argv += ["/usr/bin/setpriv", f"--reuid={_NOBODY}", f"--regid={_NOBODY}",
                 "--clear-groups", "--bounding-set=-all", "--no-new-privs",
                 "/usr/bin/unshare", "--user", f"--map-user={_NOBODY}", f"--map-group={_NOBODY}"]
    return argv + tail


def worker_argv(isolation: str, packages: tuple[str, ...], fd: int, linkdir: str | None
                 ) -> list[str]:
    python = os.path.realpath(sys.executable)
    if isolation == "namespaces":
        return bwrap_argv([python, "-I", "-S", "/sandbox/lib/worker.py", "--control-fd",
                            str(fd), "--mode", "namespaces", "--site", "/sandbox/site"], packages)
    assert linkdir is not None
    for path, name in _package_dirs(packages):  # only the allowed packages on sys.path
        os.symlink(path, os.path.join(linkdir, name))
    scratch = os.path.join(linkdir, "scratch")
    os.mkdir(scratch, 0o711)
    return [python, "-I", "-S", os.path.join(_HERE, "worker.py"), "--control-fd", str(fd),
            "--mode", "process", "--site", linkdir, "--scratch", scratch]


def probe_bwrap() -> tuple[str, str]:
    """Start a trivial Python the way the zygote is started; return (isolation, why not)."""
    if shutil.which("bwrap") is None:
        return "process", "bwrap is not installed"
    if os.geteuid() == 0 and not all(os.path.exists(p) for p in ("/usr/bin/setpriv",
                                                                     "/usr/bin/unshare")):
        return "process", "setpriv/unshare (util-linux) are missing"
    python = os.path.realpath(sys.executable)
    try:
        argv = bwrap_argv([python, "-I", "-S", "-c", "import os; assert os.getuid() != 0"],
                           ("numpy",))
        done = subprocess.run(argv, env=minimal_env(), capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired, SandboxError) as exc:
        return "process", f"bwrap could not be started ({exc})"
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()[-500:]
        return "process", f"bwrap failed with status {done.returncode}: {err}"
    return "namespaces", ""

"""The commands that start the warm worker: bubblewrap's argv (namespace mode) or plain Python.

Kept apart from the runner because this is where the trust boundary's *shape* is decided: which
host paths are visible (only the shared libraries of /usr, the Python prefix with its site-packages
hidden, and the allowed packages, all read-only), which namespaces are new, how root drops to an
unprivileged uid inside, and which seccomp filter bubblewrap installs.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import site
import subprocess
import sys
import sysconfig

from grader.errors import SandboxError
from grader.sandbox import seccomp

_HERE = os.path.dirname(os.path.abspath(__file__))
_NOBODY = "65534"
WORKER_FILES = ("worker.py", "protocol.py", "fresh.py", "seccomp.py")


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


def _usr_parts() -> list[str]:
    """The parts of /usr that Python and the packages need: shared libraries and the loader.

    Not /usr/bin, /usr/sbin, /usr/local, /usr/share, /usr/libexec nor the rest of /usr/lib: no
    compilers, shells or other interpreters, and no Python package that is not allowed.
    """
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    libs = f"/usr/lib/{multiarch}" if multiarch and os.path.isdir(f"/usr/lib/{multiarch}") else "/usr/lib"
    parts = [libs] + [p for p in ("/usr/lib64", "/usr/lib32") if os.path.isdir(p) and not os.path.islink(p)]
    stdlib = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix,
                                       "installed_base": sys.base_prefix,
                                       "installed_platbase": sys.base_prefix})
    for key in ("stdlib", "platstdlib"):
        path = os.path.realpath(stdlib[key])
        if path.startswith("/usr/") and not any(path.startswith(p + "/") for p in parts) \
                and path not in parts:
            parts.append(path)
    return parts


def _under(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


_refused: set[str] = set()  # options the installed bwrap knows but this kernel refused (probe)


def bwrap_features() -> frozenset[str]:
    """Which of the newer bubblewrap options the installed bwrap knows and may use here."""
    return _known_features() - frozenset(_refused)


@functools.cache
def _known_features() -> frozenset[str]:
    try:
        text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10,
                              check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(opt for opt in ("--disable-userns", "--size", "--remount-ro", "--seccomp")
                     if opt in text)


def describe(features: frozenset[str] | None = None) -> str:
    """What the namespace sandbox holds on this machine (recorded with every result)."""
    features = bwrap_features() if features is None else features
    nested = "bwrap --disable-userns, seccomp" if "--disable-userns" in features \
        and os.geteuid() != 0 else "seccomp"
    filt = "seccomp filter" if seccomp.supported() else \
        f"no seccomp filter (not described for {os.uname().machine})"
    return (f"new /tmp, /dev/shm (bounded tmpfs), IPC and network namespaces and session keyring per "
            f"submission; read-only root; no nested user namespaces ({nested}); {filt}")


def bwrap_argv(tail: list[str], packages: tuple[str, ...], seccomp_fd: int | None = None
               ) -> list[str]:
    """The bubblewrap command: no network, own pid/ipc/uts, a read-only root holding only the
    libraries, Python and the packages; the worker gets CAP_SYS_ADMIN *inside its own user
    namespace only*, to give each submission a fresh /tmp, /dev/shm, IPC namespace and keyring."""
    root = os.geteuid() == 0
    features = bwrap_features()
    prefix = os.path.realpath(sys.base_prefix)
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--as-pid-1"]
    if root:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--uid", _NOBODY, "--gid", _NOBODY,
                 "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
        if "--disable-userns" in features:
            argv.append("--disable-userns")
    usr = _usr_parts()
    for part in usr:
        argv += _dirs_to(part) + ["--ro-bind", part, part]
    python = os.path.realpath(sys.executable)
    tools = ["/usr/bin/setpriv", "/usr/bin/unshare"] if root else []
    for path in [python] + tools:
        if not _under(path, usr) and not _under(path, [prefix]):
            argv += _dirs_to(path) + ["--ro-bind", path, path]
    for top in ("/lib", "/lib64", "/bin"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top) and top != "/bin":
            argv += ["--ro-bind", top, top]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--dir", "/tmp"]
    if not prefix.startswith("/usr/"):
        argv += _dirs_to(prefix) + ["--ro-bind", prefix, prefix]
    for hidden in _hidden_site_dirs():
        if _under(hidden, usr + [prefix]):
            argv += ["--tmpfs", hidden, "--remount-ro", hidden]
    argv += ["--perms", "0755", "--dir", "/sandbox", "--perms", "0755", "--dir", "/sandbox/site",
             "--perms", "0755", "--dir", "/sandbox/lib"]
    for path, name in _package_dirs(packages):
        argv += ["--ro-bind", path, f"/sandbox/site/{name}"]
    for name in WORKER_FILES:
        argv += ["--ro-bind", os.path.join(_HERE, name), f"/sandbox/lib/{name}"]
    argv += ["--remount-ro", "/", "--remount-ro", "/dev"]  # only /tmp and /dev/shm, fresh per job
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    if root:  # bwrap must run as root to see /root/...; drop to nobody inside, for good
        argv += ["/usr/bin/setpriv", f"--reuid={_NOBODY}", f"--regid={_NOBODY}",
                 "--clear-groups", "--bounding-set=-all", "--no-new-privs",
                 "/usr/bin/unshare", "--user", f"--map-user={_NOBODY}", f"--map-group={_NOBODY}",
                 "--keep-caps"]
    return argv + tail


def seccomp_memfd() -> int | None:
    """A file descriptor holding the base seccomp program for bwrap, or None where unsupported."""
    if not seccomp.supported():
        return None
    fd = os.memfd_create("grader-seccomp", os.MFD_CLOEXEC)
    os.write(fd, seccomp.base_program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def worker_argv(isolation: str, packages: tuple[str, ...], fd: int, linkdir: str | None,
                seccomp_fd: int | None = None) -> list[str]:
    python = os.path.realpath(sys.executable)
    if isolation == "namespaces":
        return bwrap_argv([python, "-I", "-S", "/sandbox/lib/worker.py", "--control-fd",
                            str(fd), "--mode", "namespaces", "--site", "/sandbox/site"], packages,
                          seccomp_fd)
    assert linkdir is not None
    for path, name in _package_dirs(packages):  # only the allowed packages on sys.path
        os.symlink(path, os.path.join(linkdir, name))
    scratch = os.path.join(linkdir, "scratch")
    os.mkdir(scratch, 0o711)
    return [python, "-I", "-S", os.path.join(_HERE, "worker.py"), "--control-fd", str(fd),
            "--mode", "process", "--site", linkdir, "--scratch", scratch]


def probe_bwrap() -> tuple[str, str]:
    """Start the worker's self-test the way the zygote is started; return (isolation, why not).

    The self-test sets up one submission's fresh environment (mount, IPC and keyring, dropped
    capabilities, the seccomp filters) and checks what student code could then write.
    """
    if shutil.which("bwrap") is None:
        return "process", "bwrap is not installed"
    if os.geteuid() == 0 and not all(os.path.exists(p) for p in ("/usr/bin/setpriv",
                                                                     "/usr/bin/unshare")):
        return "process", "setpriv/unshare (util-linux) are missing"
    why = _probe_once()
    if why and "--disable-userns" in bwrap_features() and os.geteuid() != 0:
        _refused.add("--disable-userns")  # e.g. a kernel that refuses the sysctl: seccomp still denies
        if not _probe_once():
            return "namespaces", ""
        _refused.discard("--disable-userns")
    return ("process", why) if why else ("namespaces", "")


def _probe_once() -> str:
    """"" if the worker's self-test passed in bwrap, else why not."""
    python = os.path.realpath(sys.executable)
    fd = None
    try:
        fd = seccomp_memfd()
        argv = bwrap_argv([python, "-I", "-S", "/sandbox/lib/fresh.py", "--selftest"], ("numpy",), fd)
        done = subprocess.run(argv, env=minimal_env(), capture_output=True, timeout=30, check=False,
                              stdin=subprocess.DEVNULL, pass_fds=[] if fd is None else [fd])
    except (OSError, subprocess.TimeoutExpired, SandboxError) as exc:
        return f"bwrap could not be started ({exc})"
    finally:
        if fd is not None:
            os.close(fd)
    if done.returncode != 0:
        err = (done.stderr + done.stdout).decode("utf-8", "replace").strip()[-500:]
        return f"bwrap failed with status {done.returncode}: {err}"
    return ""

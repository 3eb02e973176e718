"""Seccomp filters for the sandbox, as classic BPF built in pure Python (no libseccomp).

Standard library only: the worker imports this module inside the sandbox too. Two profiles:

- ``BASE`` is handed to bubblewrap (``--seccomp FD``) and holds for everything in the sandbox, the
  warm worker included: kernel surfaces no numpy program and no worker needs (bpf, perf events,
  io_uring, userfaultfd, ptrace, kernel modules, kexec, the new mount API, keys, SysV IPC and POSIX
  message queues...). The worker itself still may ``unshare``/``mount``/``keyctl``: it sets up
  each submission's fresh namespaces with them.
- ``STUDENT`` is added (stacked) by each submission's child just before student code runs: also no
  namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*`` flag, ``clone3``), no mounts, no
  keyring at all, no ``setsid`` (one session per submission keeps the scheduler's per-session CPU
  fairness) and no SysV IPC or message queues.

Denied calls fail with ``EPERM`` (``clone3`` with ``ENOSYS``, so the C library falls back to
``clone``, which is checked). Calls of another ABI (i386 via ``int 0x80``, x32) are refused
wholesale. Only x86_64 is described; elsewhere :func:`supported` is false and the sandbox says so.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
CLONE_NEW_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                   | 0x20000000 | 0x40000000 | 0x00000080)  # NS CGROUP UTS IPC USER PID NET TIME

X86_64 = {
    "unshare": 272, "setns": 308, "clone": 56, "clone3": 435, "mount": 165, "umount2": 166,
    "pivot_root": 155, "chroot": 161, "keyctl": 250, "add_key": 248, "request_key": 249,
    "setsid": 112, "shmget": 29, "shmctl": 31, "shmat": 30, "shmdt": 67, "msgget": 68,
    "msgctl": 71, "msgrcv": 70, "msgsnd": 69, "semget": 64, "semctl": 66, "semtimedop": 220,
    "semop": 65, "mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243,
    "mq_notify": 244, "mq_getsetattr": 245, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "kcmp": 312, "open_by_handle_at": 304, "name_to_handle_at": 303, "acct": 163, "swapon": 167,
    "swapoff": 168, "reboot": 169, "syslog": 103, "quotactl": 179, "quotactl_fd": 443,
    "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "pidfd_getfd": 438, "fanotify_init": 300,
    "migrate_pages": 256, "move_pages": 279, "lookup_dcookie": 212, "vhangup": 153, "iopl": 172,
    "ioperm": 173, "modify_ldt": 154, "uselib": 134, "nfsservctl": 180, "sysfs": 139,
    "_sysctl": 156,
}

_KERNEL = ("bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
           "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
           "delete_module", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
           "open_by_handle_at", "name_to_handle_at", "acct", "swapon", "swapoff", "reboot",
           "syslog", "quotactl", "quotactl_fd", "settimeofday", "clock_settime", "clock_adjtime",
           "adjtimex", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
           "mount_setattr", "pidfd_getfd", "fanotify_init", "migrate_pages", "move_pages",
           "lookup_dcookie", "vhangup", "iopl", "ioperm", "modify_ldt", "uselib", "nfsservctl",
           "sysfs", "_sysctl", "setns", "pivot_root", "add_key", "request_key")
_IPC = ("shmget", "shmctl", "shmat", "shmdt", "msgget", "msgctl", "msgrcv", "msgsnd", "semget",
        "semctl", "semtimedop", "semop", "mq_open", "mq_unlink", "mq_timedsend",
        "mq_timedreceive", "mq_notify", "mq_getsetattr")
BASE = _KERNEL + _IPC
STUDENT = BASE + ("unshare", "mount", "umount2", "chroot", "keyctl", "setsid")


def supported() -> bool:
    return os.uname().machine == "x86_64" and struct.calcsize("P") == 8


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build(denied: tuple[str, ...], *, check_clone: bool) -> bytes:
    """The filter program (``struct sock_filter[]`` bytes) denying ``denied`` on x86_64."""
    eperm, enosys = RET_ERRNO | errno.EPERM, RET_ERRNO | errno.ENOSYS
    prog = [_insn(_LD_W_ABS, 0, 0, 4),                         # arch
            _insn(_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            _insn(_RET_K, 0, 0, enosys),                          # another ABI: nothing at all
            _insn(_LD_W_ABS, 0, 0, 0),                            # syscall number
            _insn(_JGE_K, 0, 1, X32_SYSCALL_BIT),
            _insn(_RET_K, 0, 0, enosys)]
    for name in sorted(set(denied), key=lambda n: X86_64[n]):
        prog += [_insn(_JEQ_K, 0, 1, X86_64[name]), _insn(_RET_K, 0, 0, eperm)]
    if check_clone:
        prog += [_insn(_JEQ_K, 0, 1, X86_64["clone3"]), _insn(_RET_K, 0, 0, enosys),
                 _insn(_JEQ_K, 0, 4, X86_64["clone"]),
                 _insn(_LD_W_ABS, 0, 0, 16),                      # clone's flags (low word)
                 _insn(_JSET_K, 0, 1, CLONE_NEW_FLAGS),
                 _insn(_RET_K, 0, 0, eperm),
                 _insn(_RET_K, 0, 0, RET_ALLOW)]
    prog.append(_insn(_RET_K, 0, 0, RET_ALLOW))
    return b"".join(prog)


def base_program() -> bytes:
    return build(BASE, check_clone=False)


def student_program() -> bytes:
    return build(STUDENT, check_clone=True)


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes, libc: ctypes.CDLL | None = None) -> None:
    """no_new_privs, then the filter for this thread (the caller is single-threaded)."""
    libc = libc or ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _Fprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")

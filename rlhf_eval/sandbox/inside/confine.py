"""Confinement a process applies to itself: rlimits, a seccomp filter, death with its parent,
and, for the fallback without Bubblewrap, its own user, network, PID and mount namespaces."""

from __future__ import annotations

import ctypes
import errno
import math
import os
import platform
import signal
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 0x4000, 1 << 18
MOUNT_ATTR_RDONLY, AT_RECURSIVE, AT_FDCWD, SYS_MOUNT_SETATTR = 1, 0x8000, -100, 442
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 4, 38, 22
SECCOMP_MODE_FILTER = 2
INNER_ID = 1000
"""The user and group id inside the fallback's user namespace. Not 0: no capabilities inside."""


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL when the parent dies (e.g. an interrupted harness): no sandbox outlives its run."""
    try:
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (AttributeError, OSError):
        return  # not Linux: the harness's timeout is the only guard
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent died before the line above


def forbid_inspection() -> None:
    """Not dumpable: no process without CAP_SYS_PTRACE reads this one's memory, descriptors or
    environment through /proc, or attaches to it."""
    try:
        prctl = _libc().prctl
    except AttributeError:
        return  # not Linux: nothing there reads another process's memory this way
    _check(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "not dumpable")


def enter_namespaces(work: str, work_dir_mb: int, layers: list[str], notes: list[str]) -> None:
    """The fallback's isolation (no Bubblewrap): new user, network, PID and mount namespaces,
    the whole filesystem read-only (still readable) and a private tmpfs at `work`."""
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    try:
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
    except (OSError, AttributeError) as error:
        notes.append(f"namespaces: {error}")
        return
    layers += ["netns", "pidns"]
    try:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{INNER_ID} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{INNER_ID} {gid} 1")
    except OSError as error:
        notes.append(f"user namespace ids: {error}")

    class MountAttr(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint64) for name in ("set", "clr", "propagation", "fd")]

    def mount_setattr(path: bytes, flags: int, attr: MountAttr, what: str) -> None:
        size = ctypes.sizeof(MountAttr)
        call = libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path, flags, ctypes.byref(attr), size)
        _check(call, what)

    try:
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
        options = f"size={work_dir_mb}m,mode=0700".encode()
        _check(
            libc.mount(b"tmpfs", work.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options), "tmpfs"
        )
        # Everything read-only (kernel 5.12+), then the tmpfs writable again.
        mount_setattr(b"/", AT_RECURSIVE, MountAttr(set=MOUNT_ATTR_RDONLY), "read-only /")
        mount_setattr(work.encode(), 0, MountAttr(clr=MOUNT_ATTR_RDONLY), "writable work dir")
        layers.append("readonly-fs")
    except OSError as error:
        notes.append(f"readonly-fs: {error}")


def mount_private_proc() -> bool:
    """A /proc of the new PID namespace (fallback only), so other processes are not listed.
    Optional: the kernel refuses it where parts of the host's /proc are masked (containers)."""
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY
    return _libc().mount(b"proc", b"/proc", b"proc", flags, None) == 0


def cpu_limit(limits: dict) -> int:
    """CPU seconds: `cpu_s`, or the wall-clock timeout rounded up."""
    return limits["cpu_s"] or max(1, math.ceil(limits["timeout_s"]))


def set_limits(limits: dict) -> None:
    import resource  # Unix only: imported here, so the harness imports this module anywhere

    mb = 1024 * 1024
    cpu = cpu_limit(limits)
    for name, soft, hard in (
        ("RLIMIT_CPU", cpu, cpu + 1),  # soft: SIGXCPU; hard: SIGKILL a second later
        ("RLIMIT_AS", limits["memory_mb"] * mb, limits["memory_mb"] * mb),
        ("RLIMIT_FSIZE", limits["file_size_mb"] * mb, limits["file_size_mb"] * mb),
        ("RLIMIT_NPROC", limits["processes"], limits["processes"]),
        ("RLIMIT_NOFILE", limits["open_files"], limits["open_files"]),
        ("RLIMIT_CORE", 0, 0),
    ):
        if hasattr(resource, name):
            resource.setrlimit(getattr(resource, name), (soft, hard))


# Syscall numbers of the seccomp filter, by audit architecture (x86-64, arm64).
SYSCALLS = {
    0xC000003E: {
        "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "socket": 41, "socketpair": 53,
        "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297, "pidfd_open": 434, "pidfd_send_signal": 424, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "io_uring_setup": 425,
    },
    0xC00000B7: {
        "clone": 220, "clone3": 435, "socket": 198, "socketpair": 199, "kill": 129,
        "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "pidfd_open": 434, "pidfd_send_signal": 424, "ptrace": 117, "process_vm_readv": 270,
        "process_vm_writev": 271, "io_uring_setup": 425,
    },
}  # fmt: skip


def install_seccomp() -> None:
    """A deny-list filter: no new processes, sockets, signals to others, ptrace or io_uring."""
    arch = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}.get(platform.machine())
    if arch is None:
        raise OSError(errno.ENOSYS, f"no syscall table for {platform.machine()}")
    numbers = SYSCALLS[arch]
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    allow, kill_process = 0x7FFF0000, 0x80000000

    def deny(code: int) -> int:
        return 0x00050000 | code  # SECCOMP_RET_ERRNO

    own_pid = os.getpid()
    program: list[tuple[int, int, int, int]] = [
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, arch),
        (ret, 0, 0, kill_process),
        (ld, 0, 0, 0),  # seccomp_data.nr
    ]
    if arch == 0xC000003E:  # x32 system calls share the table: refuse them all
        program += [(0x35, 0, 1, 0x40000000), (ret, 0, 0, deny(errno.ENOSYS))]  # jge

    def refuse(name: str, code: int) -> None:
        if name in numbers:
            program.extend([(jeq, 0, 1, numbers[name]), (ret, 0, 0, deny(code))])

    def only_own_pid(name: str) -> None:
        # args[0] low 32 bits (little endian) must be this process's pid.
        program.extend(
            [
                (jeq, 0, 4, numbers[name]),
                (ld, 0, 0, 16),
                (jeq, 1, 0, own_pid),
                (ret, 0, 0, deny(errno.EPERM)),
                (ret, 0, 0, allow),
                (ld, 0, 0, 0),
            ]
        )

    for name in ("fork", "vfork"):
        refuse(name, errno.EAGAIN)
    refuse("clone3", errno.ENOSYS)  # the C library then falls back to clone, checked below
    program += [  # clone: threads (CLONE_THREAD) only
        (jeq, 0, 5, numbers["clone"]),
        (ld, 0, 0, 16),
        (jset, 1, 0, 0x10000),
        (ret, 0, 0, deny(errno.EAGAIN)),
        (ret, 0, 0, allow),
        (ld, 0, 0, 0),
    ]
    for name in ("socket", "socketpair"):
        refuse(name, errno.EACCES)
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        only_own_pid(name)
    for name in ("tkill", "pidfd_open", "pidfd_send_signal", "ptrace"):
        refuse(name, errno.EPERM)
    for name in ("process_vm_readv", "process_vm_writev"):
        refuse(name, errno.EPERM)
    refuse("io_uring_setup", errno.ENOSYS)
    program.append((ret, 0, 0, allow))

    class Filter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        ]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(program))(*[Filter(c, t, f, k & 0xFFFFFFFF) for c, t, f, k in program])
    prog = Program(len(program), filters)
    libc = _libc()
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


def patch_sockets() -> None:
    """Only where neither a network namespace nor seccomp is there: sockets raise in Python."""
    import socket

    def refuse(*args, **kwargs):
        raise PermissionError("network access is disabled in the sandbox")

    for name in ("socket", "socketpair", "create_connection", "create_server", "fromfd"):
        setattr(socket, name, refuse)

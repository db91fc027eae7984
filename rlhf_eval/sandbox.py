"""Run untrusted, model-written Python in a throwaway, limited process and say how it ended.

One program, three processes:
  harness (this process)  writes program.py into a fresh temporary directory, starts
  bootstrap               `python -I -S sandbox.py bootstrap`, a new session, minimal environment;
                          it enters new user, network, PID and mount namespaces (unshare(2)
                          through ctypes, as `unshare -rn` would, where the kernel allows
                          unprivileged user namespaces), then forks
  candidate               PID 1 of the new PID namespace: it sets the resource limits and a
                          seccomp filter, then execs `python -I sandbox.py candidate`, which runs
                          the program and reports through a pipe, stamped with a nonce.
Both children die with the harness (PR_SET_PDEATHSIG), so an interrupted run leaves nothing.

Layers, each recorded in Outcome.isolation when it was in place:
  rlimits       CPU seconds, address space, processes, file size, open files, no core files
                (always; the kernel does not apply the process limit to root)
  netns         a network namespace with no interface up: no network at all, not even loopback
  pidns         the harness and every other process are out of reach (kill, /proc); when the
                candidate ends, the kernel kills everything it left behind
  readonly-fs   the whole filesystem is read-only; the working directory is a private tmpfs
                of `work_dir_mb`, gone when the run ends, so nothing reaches the run directory,
                the cache or the user's files, and the disk cannot fill
  seccomp       (x86-64, arm64) no new processes (threads are allowed: this is the fork-bomb
                guard that also holds for root), no sockets of any kind (filesystem Unix
                sockets too, which a network namespace does not cover), no signals to other
                processes, no ptrace, no io_uring
  socket-patch  only when neither netns nor seccomp is there: socket creation raises in Python

Always: a fresh interpreter in isolated mode (-I: no PYTHON* variables, user site or script
directory), cwd, HOME and TMPDIR in the temporary directory, no proxies, no path of the run or
the project passed in, a wall-clock timeout that kills the whole process group, and stdout
discarded (stderr kept to a size-limited file for diagnosis).

Honest limits: this is not a container or a VM. The kernel is shared (a kernel exploit
escapes), the program can read any file its user can read, and it runs as the harness's user.
Without user namespaces (some Docker and AppArmor setups, macOS) the program can write wherever
that user can and fill the disk with many files below the size limit; without seccomp as well,
it can signal the user's other processes (the harness included) and leave behind children that
called setsid(), and as root nothing bounds how many processes it starts. A program written to
attack this harness (reading the nonce from interpreter memory) could forge a pass; the nonce
guards against programs that exit early, which would otherwise look like success. Run
untrusted models' code on a machine you can lose.

This module imports only the standard library: the child processes run it as a script.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Status = Literal["passed", "failed", "timed_out", "crashed", "error"]
"""`error` is the sandbox's own failure (the interpreter did not start): a sample error, never
a failed program."""

INNER_ID = 1000
"""The user and group id inside the user namespace. Not 0, so the exec into the candidate
interpreter drops every capability the namespace gave the bootstrap."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    """Wall clock for the whole run, interpreter start included."""
    cpu_s: int | None = None
    """CPU seconds (RLIMIT_CPU); None: the timeout rounded up. A backstop for the timeout."""
    memory_mb: int = 1024
    """Address space (RLIMIT_AS) of the candidate interpreter."""
    file_size_mb: int = 16
    """Largest file the program may write (RLIMIT_FSIZE); beyond it a write raises OSError."""
    work_dir_mb: int = 64
    """Size of the private tmpfs working directory (with namespaces)."""
    processes: int = 32
    """RLIMIT_NPROC, which counts every process of the user; seccomp, where present, forbids
    new processes altogether."""
    open_files: int = 64


@dataclass(frozen=True)
class Outcome:
    status: Status
    message: str = ""
    """The last line of the traceback, the signal, the limit that was hit, or why the sandbox
    could not run the program."""
    wall_s: float = 0.0
    isolation: tuple[str, ...] = ()
    """The layers that were in place (see the module docstring)."""
    notes: tuple[str, ...] = field(default=(), compare=False)
    """Why a layer was missing, e.g. 'namespaces: unshare: Operation not permitted'."""


class Sandbox:
    """Runs programs; `namespaces` and `seccomp` are on by default and used where the kernel
    allows (tests turn them off to check the fallbacks)."""

    def __init__(
        self,
        limits: Limits | None = None,
        max_workers: int = 2,
        namespaces: bool = True,
        seccomp: bool = True,
        python: str = sys.executable,
    ):
        self.limits = limits or Limits()
        self.max_workers = max_workers
        self.namespaces = namespaces
        self.seccomp = seccomp
        self.python = python

    def run_many(self, programs: list[str]) -> list[Outcome]:
        """Outcomes in program order, `max_workers` programs at a time."""
        from concurrent.futures import ThreadPoolExecutor

        if len(programs) <= 1 or self.max_workers <= 1:
            return [self.run(p) for p in programs]
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="sandbox") as pool:
            return list(pool.map(self.run, programs))

    def run(self, program: str) -> Outcome:
        started = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(
                prefix="rlhf-eval-sandbox-", ignore_cleanup_errors=True
            ) as folder:
                outcome = self._run_in(Path(folder), program, started)
        except OSError as error:  # the temporary directory itself
            outcome = Outcome("error", f"sandbox: {error}")
        return Outcome(
            outcome.status,
            outcome.message,
            round(time.monotonic() - started, 4),
            outcome.isolation,
            outcome.notes,
        )

    def _run_in(self, folder: Path, program: str, started: float) -> Outcome:
        work = folder / "work"
        work.mkdir(mode=0o700)
        (folder / "program.py").write_text(program, encoding="utf-8")
        status_r, status_w = os.pipe()
        result_r, result_w = os.pipe()
        config = {
            "python": self.python,
            "work": str(work),
            "program": str(folder / "program.py"),
            "harness_pid": os.getpid(),
            "status_fd": status_w,
            "result_fd": result_w,
            "namespaces": self.namespaces,
            "seccomp": self.seccomp,
            "limits": vars(self.limits),
        }
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8"}
        nonce = secrets.token_hex(16)
        try:
            with open(folder / "stderr.log", "wb") as stderr:
                process = subprocess.Popen(
                    # -S: the bootstrap needs no site-packages, and starts faster without.
                    [self.python, "-I", "-S", __file__, "bootstrap", json.dumps(config)],
                    cwd=work,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    pass_fds=(status_w, result_w),
                    start_new_session=True,
                )
        except OSError as error:
            for fd in (status_r, status_w, result_r, result_w):
                os.close(fd)
            return Outcome("error", f"sandbox: cannot start {self.python}: {error}")
        os.close(status_w)
        os.close(result_w)
        try:
            try:
                process.stdin.write(nonce.encode() + b"\n")
                process.stdin.close()
            except OSError:
                pass  # the process is already gone; its status says why
            exited = _wait_for_exit(process.pid, started + self.limits.timeout_s)
            # Kill the group before reaping: the bootstrap's pid (the group id) cannot be
            # reused while it is an unreaped zombie, so this never hits another process.
            _kill_group(process.pid)
            process.wait()
            status = _read_lines(status_r)
            results = [r for r in _read_lines(result_r) if r.get("nonce") == nonce]
        finally:
            os.close(status_r)
            os.close(result_r)
        stderr_tail = _tail(folder / "stderr.log")
        return _classify(exited, process.returncode, status, results, stderr_tail, self.limits)


def _wait_for_exit(pid: int, deadline: float) -> bool:
    """Wait until `pid` exits without reaping it; False when the deadline passes first."""
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        try:
            poller = select.poll()  # not select(): it fails on descriptors above 1023
            poller.register(handle, select.POLLIN)
            return bool(poller.poll(max(0.0, deadline - time.monotonic()) * 1000))
        finally:
            os.close(handle)
    while True:  # no pidfd (macOS, old kernels): poll
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _read_lines(fd: int, limit: int = 1 << 16) -> list[dict]:
    """JSON objects from a pipe, reading only what is there (a child left behind may still
    hold the write end open) and at most `limit` bytes."""
    os.set_blocking(fd, False)
    chunks, size = [], 0
    while size < limit:
        try:
            chunk = os.read(fd, limit - size)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    records = []
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - size))
            return file.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _classify(
    exited: bool,
    returncode: int,
    status: list[dict],
    results: list[dict],
    stderr: str,
    limits: Limits,
) -> Outcome:
    layers = tuple(layer for record in status for layer in record.get("layers", ()))
    notes = tuple(note for record in status for note in record.get("notes", ()))
    final = next((r for r in status if "exit" in r or "signal" in r), None)
    setup_error = next((r["setup_error"] for r in status if "setup_error" in r), None)
    started = "rlimits" in layers  # the candidate's line: from here on, the program ran

    def outcome(kind: Status, message: str) -> Outcome:
        return Outcome(kind, message, 0.0, layers, notes)

    if not exited:
        return outcome("timed_out", f"wall-clock limit of {limits.timeout_s:g} s")
    if setup_error:
        return outcome("error", f"sandbox: {setup_error}")
    if not started:
        detail = stderr.splitlines()[-1] if stderr else f"exit status {returncode}"
        return outcome("error", f"sandbox: the bootstrap process failed ({detail})")
    if final is None:  # e.g. the program signalled its own process group
        how = _signal_name(-returncode) if returncode < 0 else f"status {returncode}"
        return outcome("crashed", f"the sandbox's bootstrap process ended ({how})")
    if "signal" in final:
        number = final["signal"]
        name = _signal_name(number)
        if number == signal.SIGXCPU or (
            number == signal.SIGKILL and final.get("cpu_s", 0.0) >= _cpu_limit(limits)
        ):
            return outcome("timed_out", f"CPU time limit of {_cpu_limit(limits)} s ({name})")
        return outcome("crashed", f"killed by {name}")
    if results:
        result = results[-1]
        reported = result.get("status")
        kind = reported if reported in ("passed", "failed", "crashed", "timed_out") else "failed"
        return outcome(kind, str(result.get("message", "")))
    return outcome(
        "failed", f"the program exited (status {final['exit']}) before its tests finished"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _cpu_limit(limits: Limits) -> int:
    return _cpu_limit_of(vars(limits))


def _cpu_limit_of(limits: dict) -> int:
    return limits["cpu_s"] or max(1, math.ceil(limits["timeout_s"]))


# ---- inside the sandbox (run as a script; standard library only) ---------------------------

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 0x4000, 1 << 18
MOUNT_ATTR_RDONLY, AT_RECURSIVE, AT_FDCWD, SYS_MOUNT_SETATTR = 1, 0x8000, -100, 442
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 38, 22, 2


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _bootstrap(config: dict) -> None:
    """The first process: namespaces, then fork the candidate and report how it ended."""
    status_fd = config["status_fd"]
    _die_with_parent(config["harness_pid"])
    layers, notes = [], []
    if config["namespaces"]:
        _enter_namespaces(config, layers, notes)
    os.write(status_fd, (json.dumps({"layers": layers, "notes": notes}) + "\n").encode())
    pid = os.fork()
    if pid == 0:
        _start_candidate(config, layers)
    _, wait_status, usage = os.wait4(pid, 0)
    report: dict = {"cpu_s": usage.ru_utime + usage.ru_stime}
    if os.WIFSIGNALED(wait_status):
        report["signal"] = os.WTERMSIG(wait_status)
    else:
        report["exit"] = os.WEXITSTATUS(wait_status)
    os.write(status_fd, (json.dumps(report) + "\n").encode())


def _die_with_parent(parent: int) -> None:
    """Killed when the harness dies (e.g. interrupted): no sandbox outlives its run."""
    try:
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (AttributeError, OSError):
        return  # not Linux: the harness's timeout is the only guard
    if os.getppid() != parent:
        os._exit(1)  # the harness died before the line above


def _enter_namespaces(config: dict, layers: list[str], notes: list[str]) -> None:
    import ctypes

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
    work = config["work"].encode()

    class MountAttr(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint64) for name in ("set", "clr", "propagation", "fd")]

    def mount_setattr(path: bytes, flags: int, attr: MountAttr, what: str) -> None:
        size = ctypes.sizeof(MountAttr)
        call = libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path, flags, ctypes.byref(attr), size)
        _check(call, what)

    try:
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
        size = config["limits"]["work_dir_mb"]
        options = f"size={size}m,mode=0700".encode()
        _check(libc.mount(b"tmpfs", work, b"tmpfs", MS_NOSUID | MS_NODEV, options), "tmpfs")
        # Everything read-only (kernel 5.12+), then the tmpfs writable again.
        mount_setattr(b"/", AT_RECURSIVE, MountAttr(set=MOUNT_ATTR_RDONLY), "read-only /")
        mount_setattr(work, 0, MountAttr(clr=MOUNT_ATTR_RDONLY), "writable work directory")
        layers.append("readonly-fs")
    except OSError as error:
        notes.append(f"readonly-fs: {error}")


def _start_candidate(config: dict, namespaces: list[str]) -> None:
    """The forked child: limits and filter, then exec the candidate interpreter. Never returns."""
    status_fd = config["status_fd"]
    try:
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the bootstrap
        layers, notes = ["rlimits"], []
        if "pidns" in namespaces:
            # A /proc of this namespace: the harness's processes are not even listed. Optional:
            # the kernel refuses it where parts of the host's /proc are masked (containers).
            libc = _libc()
            flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY
            if libc.mount(b"proc", b"/proc", b"proc", flags, None) != 0:
                notes.append("pidns: could not mount a private /proc")
        os.chdir(config["work"])
        _set_limits(config["limits"])
        if config["seccomp"]:
            try:
                _install_seccomp()
                layers.append("seccomp")
            except OSError as error:
                notes.append(f"seccomp: {error}")
        patch = not {"netns", "seccomp"} & {*layers, *namespaces}
        if patch:
            layers.append("socket-patch")
        os.write(status_fd, (json.dumps({"layers": layers, "notes": notes}) + "\n").encode())
        os.close(status_fd)
        candidate = {**config, "patch_sockets": patch, "cpu_s": _cpu_limit_of(config["limits"])}
        del candidate["status_fd"]
        os.execve(
            config["python"],
            [config["python"], "-I", __file__, "candidate", json.dumps(candidate)],
            dict(os.environ),
        )
    except BaseException as error:  # noqa: BLE001  (report any setup failure, then exit)
        message = json.dumps({"setup_error": f"{type(error).__name__}: {error}"})
        try:
            os.write(status_fd, (message + "\n").encode())
        finally:
            os._exit(125)


def _set_limits(limits: dict) -> None:
    import resource

    mb = 1024 * 1024
    cpu = _cpu_limit_of(limits)
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


def _install_seccomp() -> None:
    """A deny-list filter: no new processes, sockets, signals to others, ptrace or io_uring."""
    import ctypes
    import errno
    import platform

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


def _run_candidate(config: dict) -> None:
    """The candidate interpreter: run the program, report passed/failed with the nonce."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-large writes raise OSError instead
    nonce = sys.stdin.readline().strip()
    # Stdin is the only copy of the nonce outside this frame: close it.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    result_fd = config["result_fd"]
    if config["patch_sockets"]:
        _patch_sockets()

    def report(status: str, message: str = "") -> None:
        line = json.dumps({"nonce": nonce, "status": status, "message": message[-500:]})
        os.write(result_fd, (line + "\n").encode())

    def out_of_cpu(*_) -> None:
        # As PID 1 of its namespace the interpreter would ignore SIGXCPU's default action.
        report("timed_out", f"CPU time limit of {config['cpu_s']} s (SIGXCPU)")
        os._exit(0)

    signal.signal(signal.SIGXCPU, out_of_cpu)

    try:
        source = Path(config["program"]).read_text(encoding="utf-8")
        exec(compile(source, "program.py", "exec"), {"__name__": "__main__"})
    except MemoryError:
        report("crashed", "MemoryError (memory limit)")
    except BaseException as error:  # noqa: BLE001  (SystemExit too: exiting is not passing)
        report("failed", _last_line(error))
    else:
        report("passed")
    os._exit(0)


def _last_line(error: BaseException) -> str:
    import traceback

    lines = traceback.format_exception_only(type(error), error)
    return lines[-1].strip() if lines else type(error).__name__


def _patch_sockets() -> None:
    import socket

    def refuse(*args, **kwargs):
        raise PermissionError("network access is disabled in the sandbox")

    for name in ("socket", "socketpair", "create_connection", "create_server", "fromfd"):
        setattr(socket, name, refuse)


if __name__ == "__main__":
    _role, _config = sys.argv[1], json.loads(sys.argv[2])
    if _role == "bootstrap":
        _bootstrap(_config)
    else:
        _run_candidate(_config)

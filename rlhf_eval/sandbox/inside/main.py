"""Inside the sandbox: a bootstrap that forks the confined child and reports how it ended.

Started (by rlhf_eval.sandbox.launch) as `python -I -S -B -c "...; from inside.main import
main; main()"` with its configuration as one JSON line on stdin. The bootstrap is not dumpable,
so the child cannot read or rewrite its report through /proc; the child confines itself
(rlimits, seccomp) before it runs its role: `candidate` (untrusted) or `verdict` (trusted).
"""

from __future__ import annotations

import json
import os
import signal
import sys

from . import confine, wire
from .candidate import serve
from .verdict import judge


def main() -> None:
    config = json.loads(sys.stdin.buffer.readline())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the configuration has been read; nothing else comes on stdin
    os.close(devnull)
    status = config["status_fd"]
    confine.die_with_parent(config["parent_pid"])
    confine.forbid_inspection()
    layers, notes = list(config["layers"]), []
    if config["namespaces"]:
        confine.enter_namespaces(config["work"], config["limits"]["work_dir_mb"], layers, notes)
    _write(status, {"layers": layers, "notes": notes})
    pid = os.fork()
    if pid == 0:
        _child(config, layers)
    for fd in config["channel_fds"]:  # so the other side sees the channel close with the child
        os.close(fd)
    _, wait_status, usage = os.wait4(pid, 0)
    report: dict = {"cpu_s": usage.ru_utime + usage.ru_stime}
    if os.WIFSIGNALED(wait_status):
        report["signal"] = os.WTERMSIG(wait_status)
    else:
        report["exit"] = os.WEXITSTATUS(wait_status)
    _write(status, report)


def _write(fd: int, record: dict) -> None:
    os.write(fd, (json.dumps(record) + "\n").encode())


def _child(config: dict, namespaces: list[str]) -> None:
    """Confine this process, then run its role. Never returns."""
    status, role = config["status_fd"], config["role"]
    try:
        confine.die_with_parent()  # with the bootstrap
        layers, notes = ["rlimits"], []
        if config["namespaces"] and "pidns" in namespaces and not confine.mount_private_proc():
            notes.append("pidns: could not mount a private /proc")
        os.chdir(config["work"])
        confine.set_limits(config["limits"])
        if config["seccomp"]:
            try:
                confine.install_seccomp()
                layers.append("seccomp")
            except OSError as error:
                notes.append(f"seccomp: {error}")
        patch = role == "candidate" and not {"netns", "seccomp"} & {*layers, *namespaces}
        if patch:
            layers.append("socket-patch")
        _write(status, {"layers": layers, "notes": notes})
        os.close(status)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-large writes raise OSError instead
        if patch:
            confine.patch_sockets()
        if config["site"]:
            import site  # the interpreter's own site-packages, as `python -I` would have them

            site.main()
    except BaseException as error:  # noqa: BLE001  (report any setup failure, then exit)
        try:
            _write(status, {"setup_error": f"{type(error).__name__}: {error}"})
        finally:
            os._exit(125)
    if role == "candidate":
        serve(config)
    else:
        report = judge(config)
        report["message"] = str(report.get("message", ""))[: wire.MAX_TEXT]
        _write(config["report_fd"], report)
    os._exit(0)

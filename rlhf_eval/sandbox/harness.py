"""The harness's side: run a function check as two confined processes and collect the outcome."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from rlhf_eval.sandbox import launch
from rlhf_eval.sandbox.launch import Confined, Confinement
from rlhf_eval.sandbox.outcome import Ending, Limits, Outcome, classify


@dataclass(frozen=True)
class FunctionCheck:
    """Untrusted code that should define `entry_point`, and trusted tests that call it.

    The candidate process runs `candidate` and answers calls; the test process runs `setup`,
    binds `entry_point` to a proxy of the candidate's function and runs `tests`. The tests
    never enter the candidate's process, and the candidate's objects never enter theirs.
    """

    candidate: str
    entry_point: str = ""
    """Empty: the check only asks that the candidate's module runs to its end."""
    tests: str = ""
    setup: str = ""
    """Trusted definitions the tests use (HumanEval's prompt: helpers such as /32's `poly`)."""


@dataclass(frozen=True)
class SandboxSettings:
    """What a task asks of its sandbox: the limits, how many checks run at once, and the
    confinement (the runner builds the Sandbox)."""

    limits: Limits = Limits()
    max_workers: int = 2
    confinement: Confinement = "bwrap"


class Sandbox:
    """Runs function checks; `confinement` and `seccomp` choose the layers (tests turn them
    down to check the fallbacks). `bwrap` never falls back: without Bubblewrap each run is an
    `error` outcome, and the caller decides whether to opt into `namespaces`."""

    def __init__(
        self,
        limits: Limits | None = None,
        max_workers: int = 2,
        confinement: Confinement = "bwrap",
        seccomp: bool = True,
        python: str = sys.executable,
        site: bool = True,
    ):
        self.limits = limits or Limits()
        self.max_workers = max_workers
        self.confinement = confinement
        self.seccomp = seccomp
        self.python = python
        self.site = site
        """Whether both processes see the interpreter's own site-packages (as `python -I`)."""

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> Sandbox:
        return cls(settings.limits, settings.max_workers, settings.confinement)

    def check_many(self, checks: list[FunctionCheck]) -> list[Outcome]:
        """Outcomes in order, `max_workers` checks at a time."""
        if len(checks) <= 1 or self.max_workers <= 1:
            return [self.check(c) for c in checks]
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="sandbox") as pool:
            return list(pool.map(self.check, checks))

    def run(self, program: str) -> Outcome:
        """Run a whole program; `passed` means only that it ran to its end, as its own process
        says, which the program itself can forge. Use `check` where a pass must mean something."""
        return self.check(FunctionCheck(program))

    def run_many(self, programs: list[str]) -> list[Outcome]:
        return self.check_many([FunctionCheck(p) for p in programs])

    def check(self, check: FunctionCheck) -> Outcome:
        started = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(
                prefix="rlhf-eval-sandbox-", ignore_cleanup_errors=True
            ) as folder:
                outcome = self._check_in(Path(folder), check, started + self.limits.timeout_s)
        except OSError as error:  # the temporary directory itself
            outcome = Outcome("error", f"sandbox: {error}")
        return replace(outcome, wall_s=round(time.monotonic() - started, 4))

    def _check_in(self, folder: Path, check: FunctionCheck, deadline: float) -> Outcome:
        if not os.access(self.python, os.X_OK):
            return Outcome("error", f"sandbox: cannot start {self.python}: not an executable")
        launch.copy_inside(folder)
        calls_r, calls_w = os.pipe()  # the test process -> the candidate
        answers_r, answers_w = os.pipe()  # the candidate -> the test process
        report_r, report_w = os.pipe()  # the test process -> here
        common = {"entry_point": check.entry_point, "seccomp": self.seccomp, "site": self.site}
        candidate_config = {"source": check.candidate, "calls_fd": calls_r, "answers_fd": answers_w}
        verdict_config = {"setup": check.setup, "tests": check.tests, "calls_fd": calls_w}
        verdict_config |= {"answers_fd": answers_r, "report_fd": report_w}
        roles = {
            "candidate": ({**common, **candidate_config}, (calls_r, answers_w)),
            "verdict": ({**common, **verdict_config}, (calls_w, answers_r, report_w)),
        }
        started: list[Confined] = []
        try:
            for role, (config, channel_fds) in roles.items():
                started.append(
                    launch.start(
                        role,
                        folder,
                        config,
                        channel_fds,
                        self.confinement,
                        self.python,
                        self.limits,
                    )
                )
        except OSError as error:
            for process in started:
                _stop(process)
                os.close(process.status)
            os.close(report_r)
            return Outcome("error", f"sandbox: cannot start the {role} process: {error}")
        finally:  # from here on, only the sandboxed processes hold the channels
            for fd in (calls_r, calls_w, answers_r, answers_w, report_w):
                os.close(fd)
        candidate, verdict = started
        try:
            finished = _wait_for_exit(verdict.process.pid, deadline)
            reports = _read_lines(report_r) if finished else []
            report = reports[-1] if reports else None
            candidate_exited = True
            if report is not None and report.get("gone"):
                # Its channel closed: wait for its bootstrap to say how it ended.
                candidate_exited = _wait_for_exit(candidate.process.pid, deadline)
        finally:
            os.close(report_r)
            for process in (candidate, verdict):
                _stop(process)
        return classify(
            finished,
            _ending(candidate, candidate_exited),
            _ending(verdict, finished),
            report,
            self.limits,
        )


def _stop(confined: Confined) -> None:
    """Kill the process's whole session and reap it. Its pid (the group id) cannot be reused
    while it is an unreaped zombie, so the kill never hits another process. Bubblewrap's
    sandbox dies with its bwrap process (--die-with-parent), and the kernel then ends every
    process of its PID namespace."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(confined.process.pid, signal.SIGKILL)
    confined.process.wait()


def _ending(confined: Confined, exited: bool) -> Ending:
    try:
        records = tuple(_read_lines(confined.status))
    finally:
        os.close(confined.status)
    return Ending(records, exited, confined.process.returncode, _tail(confined.stderr))


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

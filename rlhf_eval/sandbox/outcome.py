"""Limits, outcomes, and the one function that turns how a run ended into its outcome."""

from __future__ import annotations

import signal
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from rlhf_eval.sandbox.inside.confine import cpu_limit

Status = Literal["passed", "failed", "timed_out", "crashed", "error"]
"""`error` is the sandbox's own failure (a process did not start, the tests' own code failed):
a sample error, never a failed program."""

MESSAGE_LIMIT = 300
"""Characters of an outcome message. Messages land in samples.jsonl and the HTML report: one
bounded line, so no program can pour a file (or anything else) into them."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    """Wall clock for the whole run, both interpreters' start included."""
    cpu_s: int | None = None
    """CPU seconds (RLIMIT_CPU) per process; None: the timeout rounded up. A backstop."""
    memory_mb: int = 1024
    """Address space (RLIMIT_AS) of each process."""
    file_size_mb: int = 16
    """Largest file a process may write (RLIMIT_FSIZE); beyond it a write raises OSError."""
    work_dir_mb: int = 64
    """Size of each process's private tmpfs working directory."""
    processes: int = 32
    """RLIMIT_NPROC, which counts every process of the user; seccomp, where present, forbids
    new processes altogether."""
    open_files: int = 64


@dataclass(frozen=True)
class Outcome:
    status: Status
    message: str = ""
    """One line of at most MESSAGE_LIMIT characters: the failed assertion or error, the signal,
    the limit that was hit, or why the sandbox could not run the program."""
    wall_s: float = 0.0
    isolation: tuple[str, ...] = ()
    """The layers that were in place around the candidate (see rlhf_eval.sandbox)."""
    notes: tuple[str, ...] = field(default=(), compare=False)
    """Why a layer was missing, e.g. 'seccomp: no syscall table for riscv64'."""


@dataclass(frozen=True)
class Ending:
    """How one confined process ended: its bootstrap's status lines, its exit, its stderr."""

    records: tuple[dict, ...] = ()
    exited: bool = True
    returncode: int | None = None
    stderr: str = ""

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(str(layer) for r in self.records for layer in r.get("layers", ()))

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(str(note) for r in self.records for note in r.get("notes", ()))

    @property
    def started(self) -> bool:
        """The child confined itself: from here on, the role's code ran."""
        return "rlimits" in self.layers

    @property
    def setup_error(self) -> str | None:
        return next((str(r["setup_error"]) for r in self.records if "setup_error" in r), None)

    @property
    def final(self) -> dict | None:
        return next((r for r in self.records if "exit" in r or "signal" in r), None)

    def why_not_started(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit status {self.returncode}"


def classify(
    finished: bool, candidate: Ending, verdict: Ending, report: dict | None, limits: Limits
) -> Outcome:
    """The outcome: passed only on the test process's own report; everything else from how
    the two processes ended. A candidate that ends early fails; limits hit are timeouts or
    crashes; a sandbox that could not start is an error."""
    layers = candidate.layers + (("verdict-process",) if verdict.started else ())
    notes = candidate.notes + tuple(f"test process: {n}" for n in verdict.notes)

    def outcome(kind: Status, message: str) -> Outcome:
        return Outcome(kind, one_line(message), 0.0, layers, notes)

    for name, ending in (("candidate", candidate), ("test", verdict)):
        if ending.setup_error:
            return outcome("error", f"sandbox: the {name} process: {ending.setup_error}")
    if not finished:
        return outcome("timed_out", f"wall-clock limit of {limits.timeout_s:g} s")
    if report is None:
        if not verdict.started:
            reason = verdict.why_not_started()
            return outcome("error", f"sandbox: the test process failed ({reason})")
        kind, how = _ending(verdict, limits)
        kind = "crashed" if kind == "failed" else kind
        return outcome(kind, f"the test process ended without a verdict ({how})")
    status, message = report.get("status"), str(report.get("message", ""))
    if status == "passed":
        return outcome("passed", "")
    if status == "error":
        return outcome("error", f"sandbox: {message}")
    if report.get("gone"):
        if not candidate.started:
            reason = candidate.why_not_started()
            return outcome("error", f"sandbox: the candidate process failed ({reason})")
        if not candidate.exited:  # it closed its channel and went on running
            return outcome("timed_out", f"wall-clock limit of {limits.timeout_s:g} s")
        kind, how = _ending(candidate, limits)
        if kind == "failed":
            return outcome(kind, f"the program exited ({how}) before its tests finished")
        return outcome(kind, how)
    if report.get("error") == "MemoryError":
        return outcome("crashed", "MemoryError (memory limit)")
    return outcome("failed", message or "failed")


def _ending(ending: Ending, limits: Limits) -> tuple[Status, str]:
    """timed_out, crashed or failed (a plain exit), and how, from a bootstrap's last line."""
    final = ending.final
    if final is None:  # the bootstrap itself was killed, e.g. the program signalled it
        code = ending.returncode or 0
        how = _signal_name(-code) if code < 0 else f"status {code}"
        return "crashed", f"the sandbox's bootstrap process ended ({how})"
    if "signal" in final:
        number = int(final["signal"])
        cpu = cpu_limit(vars(limits))
        if number == signal.SIGXCPU or (
            number == signal.SIGKILL and float(final.get("cpu_s", 0.0)) >= cpu
        ):
            return "timed_out", f"CPU time limit of {cpu} s ({_signal_name(number)})"
        return "crashed", f"killed by {_signal_name(number)}"
    return "failed", f"status {final['exit']}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Control characters (newlines too) as spaces, cut to `limit` characters."""
    flat = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

"""The `rlhf-eval` command, run from rlhf-train as its own process with this Python: rlhf_train
never imports rlhf_eval, and the evaluation runs with the packages that trained."""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec

EVAL_PACKAGE = "rlhf_eval"
"""Run as `python -m rlhf_eval`, the `rlhf-eval` command."""


def eval_command_installed() -> bool:
    return find_spec(EVAL_PACKAGE) is not None


def run_eval_command(args: list[str], capture_stdout: bool = False) -> subprocess.CompletedProcess:
    """`rlhf-eval ARGS`: its progress bars and errors go to this terminal, and what it prints
    too unless `capture_stdout` (then it is in the result's `stdout`)."""
    sys.stdout.flush()  # what this process printed comes before the evaluation's output
    sys.stderr.flush()
    return subprocess.run(
        [sys.executable, "-m", EVAL_PACKAGE, *args],
        stdout=subprocess.PIPE if capture_stdout else None,
        text=True,
    )

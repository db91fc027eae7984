"""Shared bits of the sandbox tests: skip where Bubblewrap cannot run (with the reason)."""

from __future__ import annotations

import pytest


def bwrap_problem() -> str | None:
    try:
        from rlhf_eval.sandbox import bwrap_problem as probe
    except ImportError:  # the sandbox before Bubblewrap: its own namespaces always run
        return None
    return probe()


need_bwrap = pytest.mark.skipif(
    bwrap_problem() is not None,
    reason=f"the default sandbox needs Bubblewrap ({bwrap_problem()}): apt-get install bubblewrap",
)

"""The one exception family both CLIs turn into a clear message and exit code 2; rlhf_eval.errors
and rlhf_train.errors add their own kinds to it."""

from __future__ import annotations


class RlhfEvalError(Exception):
    """A problem the user can fix: the message says what, where and how. (Named for the
    distribution, rlhf-eval, which ships rlhf_eval, rlhf_train and rlhf_common.)"""


class DataError(RlhfEvalError):
    """A dataset file is missing, unreadable or lacks required fields."""


class DataUnavailable(DataError):
    """Data that lives elsewhere (a hub dataset) cannot be reached: offline, no access. The
    runner skips a `data: hub` task entry with this reason instead of failing the run."""


class ModelLoadError(RlhfEvalError):
    """A model path, hub id or alias cannot be loaded."""

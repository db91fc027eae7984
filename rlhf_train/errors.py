"""Errors the user can fix in a training run; all are RlhfEvalError so the CLIs treat them alike."""

from __future__ import annotations

from rlhf_common.errors import RlhfEvalError


class TrainError(RlhfEvalError):
    """A training run cannot start or continue; the message says what, where and how to fix it."""


class TrainConfigError(TrainError):
    """A training config file is missing, malformed or names an impossible combination."""


class TrainDataError(TrainError):
    """A training data file is missing, has unknown fields or holds an unusable example."""

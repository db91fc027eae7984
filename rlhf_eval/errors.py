"""rlhf_eval's exceptions: the shared family (rlhf_common.errors) and the evaluation's own kinds;
the CLI turns every one into a clear message and exit code 2."""

from __future__ import annotations

from rlhf_common.errors import DataError, DataUnavailable, ModelLoadError, RlhfEvalError

__all__ = [
    "CacheError",
    "DataError",
    "DataUnavailable",
    "ModelLoadError",
    "RlhfEvalError",
    "RunError",
    "SuiteError",
]


class SuiteError(RlhfEvalError):
    """The suite file is malformed or names something that does not exist."""


class CacheError(RlhfEvalError):
    """The response cache or a run directory is corrupt or inconsistent."""


class RunError(RlhfEvalError):
    """A run directory is missing, incomplete or incompatible with the request."""

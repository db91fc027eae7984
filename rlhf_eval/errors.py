"""The one exception family the CLI turns into a clear message and exit code 2."""

from __future__ import annotations


class RlhfEvalError(Exception):
    """A problem the user can fix: the message says what, where and how."""


class SuiteError(RlhfEvalError):
    """The suite file is malformed or names something that does not exist."""


class DataError(RlhfEvalError):
    """A dataset file is missing, unreadable or lacks required fields."""


class DataUnavailable(DataError):
    """Data that lives elsewhere (a hub dataset) cannot be reached: offline, no access. The
    runner skips a `data: hub` task entry with this reason instead of failing the run."""


class ModelLoadError(RlhfEvalError):
    """A model path, hub id or alias cannot be loaded."""


class CacheError(RlhfEvalError):
    """The response cache or a run directory is corrupt or inconsistent."""


class RunError(RlhfEvalError):
    """A run directory is missing, incomplete or incompatible with the request."""

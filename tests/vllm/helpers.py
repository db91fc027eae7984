"""What the vLLM tests share: the environment every engine runs in, and the skip rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlhf_eval.models.vllm import vllm_installed

ALIAS = "smollm2-135m-instruct"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

ENGINE_ENV = {
    # Offline, no usage statistics, no outside address lookup (../shared/VLLM_CPU.md).
    "HF_HUB_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_HOST_IP": "127.0.0.1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CACHE_ROOT": "/tmp/vllm-cache",
}
FAST_LOAD_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
"""The engine core in the test's own process: loads in seconds instead of close to a minute."""

ENGINE_OPTIONS = {
    "enforce_eager": True,
    "max_model_len": 2048,
    "engine_kwargs": (("distributed_executor_backend", "uni"),),
}

REASON = (
    "vllm is not installed in this environment: the vLLM tests run in .venv-vllm "
    "(scripts/vllm_tests.sh, which `make test` runs)"
)
needs_vllm = pytest.mark.skipif(not vllm_installed(), reason=REASON)


def engine_environment() -> dict[str, str]:
    """The environment for an engine or a server started from a test (a copy of ours)."""
    return {**os.environ, **ENGINE_ENV}


class Borrowed:
    """A session backend lent to a run: the run's close() leaves it loaded for other tests."""

    def __init__(self, backend):
        self._backend = backend

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def close(self) -> None:
        pass

"""Fixtures for the vLLM backend's tests: one engine and one transformers model per session,
both the default model in fp32. Run them in .venv-vllm (scripts/vllm_tests.sh)."""

from __future__ import annotations

import os

import pytest

from rlhf_eval.models.vllm import vllm_installed
from tests.vllm.helpers import ALIAS, ENGINE_ENV, ENGINE_OPTIONS, FAST_LOAD_ENV, REASON


@pytest.fixture(scope="session")
def vllm_environment():
    """The engine's environment, for this session only (restored after it)."""
    if not vllm_installed():
        print(f"SKIPPED: {REASON}")
        pytest.skip(REASON)
    wanted = {**ENGINE_ENV, **FAST_LOAD_ENV}
    before = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def model_dir(vllm_environment) -> str:
    from rlhf_common.model_aliases import resolve_alias

    return str(resolve_alias(ALIAS))


@pytest.fixture(scope="session")
def engine(model_dir):
    """The default model in vLLM, fp32, eager, in this process (loads in seconds)."""
    from rlhf_eval.models.vllm import VLLMBackend
    from rlhf_eval.models.vllm_launch import EngineOptions

    backend = VLLMBackend("vllm", model_dir, batch_size=64, options=EngineOptions(**ENGINE_OPTIONS))
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def hf(model_dir):
    from rlhf_eval.models.hf import HFBackend

    backend = HFBackend("hf", model_dir, batch_size=16)
    yield backend
    backend.close()

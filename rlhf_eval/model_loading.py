"""Build a model backend from a suite's model entry (above the suite schema and every backend,
so that no backend module knows the suite)."""

from __future__ import annotations

from rlhf_common.model_aliases import resolve_alias
from rlhf_eval.models.base import ModelBackend
from rlhf_eval.models.hf import HFBackend
from rlhf_eval.models.openai_compat import OpenAICompatBackend
from rlhf_eval.models.precomputed import PrecomputedBackend
from rlhf_eval.models.reward_backend import load_reward_backend
from rlhf_eval.models.vllm import DEFAULT_CHUNK, VLLMBackend
from rlhf_eval.models.vllm_launch import EngineOptions, EngineProcess
from rlhf_eval.suite import LoadedSuite, ModelSpec


def load_backend(spec: ModelSpec, loaded: LoadedSuite) -> ModelBackend:
    """Connect to the entry's server, read its outputs file, or resolve where the weights are
    and load them."""
    if spec.backend == "openai":
        return OpenAICompatBackend(
            spec.name,
            spec.base_url or "",
            spec.model or "",
            api_key_env=spec.api_key_env,
            max_concurrency=spec.max_concurrency,
            requests_per_minute=spec.requests_per_minute,
        )

    if spec.backend == "precomputed":
        return PrecomputedBackend(
            spec.name, loaded.resolve(spec.file), spec.model or spec.name, spec.format
        )

    if spec.path is not None:
        source = str(loaded.resolve(spec.path))
    elif spec.alias is not None:
        source = str(resolve_alias(spec.alias))
    else:
        source = spec.hub_id or ""
    if spec.backend == "vllm":
        return _load_vllm(spec, source, loaded)
    if spec.backend == "reward_model":
        return load_reward_backend(spec, source)  # type: ignore[return-value]

    return HFBackend(
        spec.name,
        source,
        dtype=spec.dtype,
        device=spec.device,
        batch_size=spec.batch_size,
        max_length=spec.max_length,
        revision=spec.revision,
        trust_remote_code=spec.trust_remote_code,
        chat_template=spec.chat_template,
    )


def _load_vllm(spec: ModelSpec, source: str, loaded: LoadedSuite) -> ModelBackend:
    """vLLM's engine in this process; under torchrun/accelerate, one engine per process, on
    this process's share of the node (rlhf_eval/models/vllm_launch.py)."""
    options = EngineOptions(
        tensor_parallel_size=spec.tensor_parallel_size,
        pipeline_parallel_size=spec.pipeline_parallel_size,
        gpu_memory_utilization=spec.gpu_memory_utilization,
        max_model_len=spec.max_model_len,
        enforce_eager=spec.enforce_eager,
        enable_prefix_caching=spec.enable_prefix_caching,
        engine_kwargs=tuple(spec.engine_kwargs.items()),
    )
    return VLLMBackend(
        spec.name,
        source,
        dtype=spec.dtype,
        # The suite's default batch (32) is small for vLLM's scheduler: chunks of 256 prompts
        # unless the entry sets its own.
        batch_size=spec.batch_size if "batch_size" in spec.model_fields_set else DEFAULT_CHUNK,
        revision=spec.revision,
        trust_remote_code=spec.trust_remote_code,
        chat_template=spec.chat_template,
        seed=loaded.suite.seed,
        options=options,
        process=EngineProcess.from_environment(),
    )

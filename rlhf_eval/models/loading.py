"""Build a backend from a suite's model entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlhf_eval.models.base import ModelBackend
from rlhf_eval.models.registry import resolve_alias

if TYPE_CHECKING:
    from rlhf_eval.suite import LoadedSuite, ModelSpec


def load_backend(spec: ModelSpec, loaded: LoadedSuite) -> ModelBackend:
    """Connect to the entry's server, read its outputs file, or resolve where the weights are
    and load them."""
    if spec.backend == "openai":
        from rlhf_eval.models.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            spec.name,
            spec.base_url or "",
            spec.model or "",
            api_key_env=spec.api_key_env,
            max_concurrency=spec.max_concurrency,
            requests_per_minute=spec.requests_per_minute,
        )

    if spec.backend == "precomputed":
        from rlhf_eval.models.precomputed import PrecomputedBackend

        return PrecomputedBackend(
            spec.name, loaded.resolve(spec.file), spec.model or spec.name, spec.format
        )

    from rlhf_eval.models.hf import HFBackend

    if spec.path is not None:
        source = str(loaded.resolve(spec.path))
    elif spec.alias is not None:
        source = str(resolve_alias(spec.alias))
    else:
        source = spec.hub_id or ""
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

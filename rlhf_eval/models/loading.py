"""Build a backend from a suite's model entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlhf_eval.models.base import ModelBackend
from rlhf_eval.models.registry import resolve_alias

if TYPE_CHECKING:
    from rlhf_eval.suite import LoadedSuite, ModelSpec


def load_backend(spec: ModelSpec, loaded: LoadedSuite) -> ModelBackend:
    """Resolve where the weights are, then load them with the entry's backend."""
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

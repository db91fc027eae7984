"""Build a model backend from a suite's model entry (above the suite schema and every backend,
so that no backend module knows the suite): each backend builds itself from its entry's variant
(`from_spec`), and where the weights are is resolved here."""

from __future__ import annotations

from rlhf_common.model_aliases import resolve_alias
from rlhf_eval.models.base import ModelBackend
from rlhf_eval.models.hf import HFBackend
from rlhf_eval.models.openai_compat import OpenAICompatBackend
from rlhf_eval.models.precomputed import PrecomputedBackend
from rlhf_eval.models.reward_backend import ClassifierRewardBackend, LLMRewardBackend
from rlhf_eval.models.spec import (
    HFSpec,
    OpenAISpec,
    PrecomputedSpec,
    RewardModelSpec,
    VLLMSpec,
    WeightsSpec,
)
from rlhf_eval.models.vllm import VLLMBackend
from rlhf_eval.suite import LoadedSuite, ModelSpec


def load_backend(spec: ModelSpec, loaded: LoadedSuite) -> ModelBackend:
    """Connect to the entry's server, read its outputs file, or resolve where the weights are
    and load them."""
    match spec:
        case OpenAISpec():
            return OpenAICompatBackend.from_spec(spec)
        case PrecomputedSpec():
            return PrecomputedBackend.from_spec(spec, loaded.resolve(spec.file))
        case VLLMSpec():
            return VLLMBackend.from_spec(spec, weights_source(spec, loaded), loaded.suite.seed)
        case RewardModelSpec():
            scorer = LLMRewardBackend if spec.reward_scorer == "llm" else ClassifierRewardBackend
            return scorer.from_spec(spec, weights_source(spec, loaded))  # type: ignore[return-value]
        case HFSpec():
            return HFBackend.from_spec(spec, weights_source(spec, loaded))
    raise TypeError(f"no backend builds a {type(spec).__name__}")


def weights_source(spec: WeightsSpec, loaded: LoadedSuite) -> str:
    """What from_pretrained reads: the entry's folder (relative to the suite file), its alias's
    converted folder, or its hub id."""
    if spec.path is not None:
        return str(loaded.resolve(spec.path))
    if spec.alias is not None:
        return str(resolve_alias(spec.alias))
    return spec.hub_id or ""

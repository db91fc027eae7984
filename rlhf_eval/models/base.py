"""The model backend protocol: batched log-likelihoods and batched generation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from rlhf_eval.records import (
    Generation,
    GenerationRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    Reward,
    RewardRequest,
    Unanswerable,
)

OnBatch = Callable[[dict[int, Loglikelihood | Generation | Reward | Unanswerable]], None]
"""Called by a backend as each batch finishes, with {request index: response}: the caller saves
them then, so a killed run loses at most the batch in flight."""


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text up to the earliest stop string (backends stop late; every one cuts here)."""
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    return text if cut < 0 else text[:cut]


@runtime_checkable
class ModelBackend(Protocol):
    """What every backend (transformers, vLLM, OpenAI-compatible, precomputed) provides."""

    name: str

    @property
    def identity(self) -> str:
        """A string that changes whenever the backend's answers could change (weights, dtype)."""
        ...

    def loglikelihood(
        self, requests: list[LoglikelihoodRequest], on_batch: OnBatch | None = None
    ) -> list[Loglikelihood]: ...

    def generate(
        self, requests: list[GenerationRequest], on_batch: OnBatch | None = None
    ) -> list[Generation]: ...

    def close(self) -> None:
        """Free the weights (runs load one model at a time)."""
        ...


@runtime_checkable
class RewardBackend(Protocol):
    """A backend that also answers RewardRequests (`backend: reward_model`); the runner's
    answer() sends it every RewardRequest of a task, batched, through the response cache."""

    def reward(
        self, requests: list[RewardRequest], on_batch: OnBatch | None = None
    ) -> list[Reward]: ...

"""Judges: the suite's judge models (and other scorers) that tasks ask to score outputs.

The runner owns them: each is loaded on first use, kept for the whole run (every evaluated model's
outputs go to the same judge) and closed at the end. A task never loads a model; it asks
`self.judges` by the judge's name in the suite. Judge answers go through the response cache like
any model's, keyed by the judge's identity, so a resumed run never asks a judge twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from rlhf_eval.answering import answer
from rlhf_eval.errors import SuiteError
from rlhf_eval.manifest import JudgeRecord
from rlhf_eval.model_loading import load_backend, weights_source
from rlhf_eval.models.base import ModelBackend
from rlhf_eval.models.reward_model import RewardModel
from rlhf_eval.models.spec import HFSpec
from rlhf_eval.records import (
    Generation,
    GenerationRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    Reward,
    RewardRequest,
)
from rlhf_eval.store import ResponseCache

if TYPE_CHECKING:
    from rlhf_eval.suite import LoadedSuite, ModelSpec

T = TypeVar("T")


class Judges:
    """The judge models of one run, by name, and any other shared scorer a task builds."""

    def __init__(self, loaded: LoadedSuite, cache: ResponseCache):
        self._loaded = loaded
        self._specs = {spec.name: spec for spec in loaded.suite.judges}
        self._cache = cache
        self._backends: dict[str, ModelBackend | RewardModel] = {}
        self._shared: dict[str, Any] = {}
        self.counts: dict[str, dict[str, int]] = {}
        """Per judge: requests computed and requests found in the cache."""

    def backend(self, name: str) -> ModelBackend:
        """The judge model called `name` in the suite's `judges:`, loaded on first use."""
        if name not in self._backends:
            self._backends[name] = load_backend(self._spec(name), self._loaded)
        backend = self._backends[name]
        if isinstance(backend, RewardModel):
            raise SuiteError(
                f"{self._loaded.path}: judge '{name}' is used both as a reward model and as a "
                "language model. Fix: define two `judges:` entries, one for each use."
            )
        return backend

    def reward_model(self, name: str) -> RewardModel:
        """The judge called `name` loaded as a scalar reward model (a sequence classifier with
        one output, e.g. an `rlhf-train rm` checkpoint) instead of a causal LM; once per run."""
        if name not in self._backends:
            spec = self._spec(name)
            if not isinstance(spec, HFSpec):
                raise SuiteError(
                    f"{self._loaded.path}: judge '{name}' is used as a reward model, which runs "
                    f"locally with transformers; `backend: {spec.backend}` cannot. Fix: give it "
                    "`path:` or `hub_id:` (backend hf)."
                )
            self._backends[name] = RewardModel(
                weights_source(spec, self._loaded),
                spec.dtype,
                spec.device,
                spec.batch_size,
                spec.max_length,
            )
        judge = self._backends[name]
        if not isinstance(judge, RewardModel):
            raise SuiteError(
                f"{self._loaded.path}: judge '{name}' is used both as a reward model and as a "
                "language model. Fix: define two `judges:` entries, one for each use."
            )
        return judge

    def _spec(self, name: str) -> ModelSpec:
        if name not in self._specs:
            known = ", ".join(self._specs) or "none"
            raise SuiteError(
                f"{self._loaded.path}: a task asks for judge '{name}', which `judges:` does "
                f"not define (judges: {known}). Fix: add it under `judges:`."
            )
        return self._specs[name]

    def loglikelihood(self, name: str, requests: list[LoglikelihoodRequest]) -> list[Loglikelihood]:
        return self._ask(name, requests)  # type: ignore[return-value]

    def generate(self, name: str, requests: list[GenerationRequest]) -> list[Generation]:
        return self._ask(name, requests)  # type: ignore[return-value]

    def reward(self, name: str, requests: list[RewardRequest]) -> list[Reward]:
        return self._ask(name, requests)  # type: ignore[return-value]

    def _ask(self, name: str, requests: list) -> list:
        backend = self.backend(name)
        count = self.counts.setdefault(name, {"computed": 0, "cached": 0})
        return answer(requests, backend, self._cache, count, self._specs[name].generation)

    def shared(self, key: str, build: Callable[[], T]) -> T:
        """A scorer (a toxicity classifier, say) built once per run and closed with the judges."""
        if key not in self._shared:
            self._shared[key] = build()
        return self._shared[key]

    def identities(self) -> list[JudgeRecord]:
        """What the manifest records of each judge that was used."""
        return [
            JudgeRecord(name=name, identity=backend.identity, source=self._specs[name].source())
            for name, backend in self._backends.items()
        ]

    def close(self) -> None:
        for item in [*self._backends.values(), *self._shared.values()]:
            close = getattr(item, "close", None)
            if callable(close):
                close()
        self._backends.clear()
        self._shared.clear()

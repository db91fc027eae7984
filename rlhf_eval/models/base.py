"""The model backend protocol: batched log-likelihoods and batched generation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score `continuation` given `context` (lm-eval's loglikelihood request)."""

    context: str
    continuation: str


@dataclass(frozen=True)
class Loglikelihood:
    """Summed log-probability of a continuation's tokens, their count, and greediness."""

    logprob: float
    n_tokens: int
    is_greedy: bool


@dataclass(frozen=True)
class ItemRef:
    """Which dataset item (and prompt variant) a generation request renders.

    Backends that generate ignore it; the precomputed backend looks outputs made elsewhere up by
    it. It is not part of the response-cache key: it never changes what a model writes.
    """

    task: str
    doc_id: str
    variant: str = ""
    """The prompt variant (e.g. RealToxicityPrompts' "respectful"); "" when a task has one."""
    text: str = ""
    """The item's own text before any rendering (the question, the prompt to complete)."""
    entry: str = ""
    """The suite's task entry asking (set by the planner): two entries of one task, such as
    zero- and few-shot, ask different prompts of the same item."""


@dataclass(frozen=True)
class ChatForm:
    """How a request reads to a model behind its chat template, where the plain prompt is not
    the right question (lm-eval's `doc_to_text` + `gen_prefix` for instruct tasks)."""

    user: str
    """The user turn, in place of the request's prompt."""
    prefix: str = ""
    """Text the assistant turn starts with; the generation continues it."""
    stop: tuple[str, ...] = ()
    """Stop strings added to the request's own in this form."""


@dataclass(frozen=True)
class GenerationRequest:
    """Generate from `prompt`; a field left None takes the model's generation defaults."""

    prompt: str
    max_new_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    temperature: float | None = None
    n: int = 1
    seed: int = 0
    item: ItemRef | None = None
    chat: ChatForm | None = None
    """The request's form for a backend that applies a chat template; others use `prompt`."""

    def with_defaults(
        self, max_new_tokens: int = 256, temperature: float = 0.0, stop: tuple[str, ...] = ()
    ) -> GenerationRequest:
        return replace(
            self,
            max_new_tokens=self.max_new_tokens
            if self.max_new_tokens is not None
            else max_new_tokens,
            temperature=self.temperature if self.temperature is not None else temperature,
            stop=self.stop if self.stop is not None else tuple(stop),
        )


@dataclass(frozen=True)
class Generation:
    """The n sampled texts for one request, cut at the first stop string."""

    texts: tuple[str, ...]
    n_tokens: tuple[int, ...]
    scores: tuple[dict[str, float], ...] | None = None
    """Per-text scores that came with outputs made elsewhere (the precomputed backend's
    `toxicity`, `true`, `info` columns); tasks use them instead of running their own scorer."""


class UnanswerableError(AttributeError):
    """Raised when a task reads an Unanswerable response: the runner records the item's sample
    as a counted failure with this message (an AttributeError, so `hasattr` stays False)."""


@dataclass(frozen=True)
class Unanswerable:
    """A request a backend could not answer, such as a prompt longer than its context window:
    the item's sample fails with `reason` and is counted, never scored and never truncated.

    It stands in for a Loglikelihood or Generation; reading any of their fields raises
    UnanswerableError(reason). It is not cached: a later run with a longer window answers it.
    """

    reason: str

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise UnanswerableError(self.reason)


@dataclass(frozen=True)
class RewardRequest:
    """The reward a scalar reward model gives `completion` as the reply to `prompt`; with
    `versus`, the log-odds that `completion` is preferred to `versus` as the reply (r(c) - r(v)
    for a scalar model; a pairwise LLM judge's own log-odds, both orders averaged).

    `prompt` is raw text, given to the model as it is, or a conversation of (role, content)
    turns ending in a user turn, which the backend renders in its `reward_template`.
    """

    prompt: str | tuple[tuple[str, str], ...]
    completion: str
    versus: str | None = None


@dataclass(frozen=True)
class Reward:
    """A reward (or, for a request with `versus`, a log-odds) and the completion's length in
    the scorer's tokens (0 where the scorer does not tokenise it alone)."""

    score: float
    n_tokens: int = 0


OnBatch = Callable[[dict[int, "Loglikelihood | Generation | Reward | Unanswerable"]], None]
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

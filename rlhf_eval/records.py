"""The records every layer passes on: documents and samples, metric specs, and the requests a
model backend answers with their responses. No project imports, so the store, the report, the
gate and the backends read them without depending on tasks or on each other."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

# ---- documents and samples ------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """One evaluation item; `id` is stable across runs so samples pair between models."""

    id: str
    data: dict[str, Any]
    cluster: str | None = None
    """Items sharing a cluster (a passage, a prompt) are resampled together."""


@dataclass
class Sample:
    """One scored document: what samples.jsonl stores, one JSON line each."""

    doc_id: str
    prompt: str
    target: Any
    prediction: Any
    metrics: dict[str, float | None]
    details: dict[str, Any] = field(default_factory=dict)
    cluster: str | None = None
    error: str | None = None


# ---- metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusStatistic:
    """A corpus-level metric (corpus BLEU) as a formula over summed per-sample statistics.

    `statistics` reads one sample's stored `details` (e.g. hypothesis and reference) and returns
    its sufficient statistics, a fixed-length vector; `score` maps rows of statistics summed over
    a set of samples, shape (B, k), to the metric, shape (B,). Summing is what lets the
    bootstrap resample samples cheaply and pair two models on the same resampled indices.
    """

    name: str
    """Its name in rlhf_eval.metrics.corpus, stored with the metric in results.json."""
    statistics: Callable[[dict[str, Any]], Sequence[float]]
    score: Callable[[np.ndarray], np.ndarray]
    stratum: Callable[[dict[str, Any]], str] | None = None
    """A sample's stratum from its `details` (BBH's subtask): the bootstrap then resamples
    within each stratum, so every replicate keeps each stratum's size (see stats.py)."""


@dataclass(frozen=True)
class MetricSpec:
    """How the runner aggregates one per-sample metric into an interval.

    kind "proportion" (0/1 values, Wilson interval) and "mean" (bootstrap) aggregate the values in
    Sample.metrics; kind "corpus" computes `corpus` from the samples' details instead (the
    per-sample value is then only for reading samples, e.g. sentence BLEU) and bootstraps it.
    A sample whose value is None without an error is outside the metric's population (SQuAD's
    HasAns F1 on an unanswerable question), not a failure. A task's first metric is its
    headline: the one tested (with Holm's correction) across the tasks of a suite.
    """

    name: str
    kind: Literal["proportion", "mean", "corpus"]
    higher_is_better: bool = True
    description: str = ""
    corpus: CorpusStatistic | None = None

    def __post_init__(self) -> None:
        if (self.kind == "corpus") != (self.corpus is not None):
            raise ValueError(
                f"metric '{self.name}': a `corpus` statistic goes with kind 'corpus' and only "
                "with it"
            )


# ---- requests and responses -----------------------------------------------------------------


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
class PromptSource:
    """What a task rendered a generation prompt from: outputs made elsewhere may be keyed by it
    (a precomputed file's `variant` and `prompt` columns). The planner takes it off the request,
    with the task entry and item id, so a backend never sees which benchmark item it answers.
    """

    variant: str = ""
    """The prompt variant (e.g. RealToxicityPrompts' "respectful"); "" when a task has one."""
    text: str = ""
    """The item's own text before any rendering (the question, the prompt to complete)."""


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
    source: PromptSource | None = None
    """Set by the task; the planner moves it into its plan and leaves `key` in its place."""
    key: str | None = None
    """An opaque key the planner gives a request it plans: one key per task entry, item and
    prompt source. A backend whose answers belong to items (precomputed outputs) tells requests
    apart by it; the others ignore it. Neither field is part of the response-cache key."""
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


Request = LoglikelihoodRequest | GenerationRequest
"""What a task asks of the model being evaluated."""
Response = Loglikelihood | Generation
"""What the backend answers to a Request."""

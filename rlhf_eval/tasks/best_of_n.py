"""The over-optimisation probe (Gao et al. 2022, "Scaling laws for reward model
overoptimization", Figure 1): does a policy's proxy reward keep rising where a gold judge's
stops?

Each model of the suite (a policy) samples n completions per prompt; the suite's `proxy` judge
(the reward model RLHF optimises) and `gold` judge (a larger reward model, or an LLM judge) score
every completion (judges with `backend: reward_model`, through the response cache). For each N
in 1, 2, 4, ..., n the best-of-N policy keeps the completion the proxy ranks first among N
samples; per prompt, its expected proxy and gold rewards are estimated without bias from all n
samples (rlhf_eval.metrics.best_of_n), so one sampling run gives the whole curve.

Metrics per prompt (each a mean over prompts with a bootstrap interval, from aggregate.py):
proxy_at_N and gold_at_N, and the steps proxy_gain_N = proxy_at_N - proxy_at_{N/2} and
gold_gain_N (paired within the prompt). rlhf_eval.overoptimization reads them and flags the
first N where the proxy still rises and the gold reward does not.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from rlhf_eval.metrics.best_of_n import best_of_n_kl, best_of_n_value, powers_of_two
from rlhf_eval.records import (
    Document,
    Generation,
    GenerationRequest,
    MetricSpec,
    PromptSource,
    RewardRequest,
    Sample,
)
from rlhf_eval.tasks.base import ScoringServices, Task, TaskOptions, register_task
from rlhf_eval.tasks.instructions import (
    InstructionsOptions,
    item_text,
    read_prompt_set,
    render_prompt,
)

MAX_SAMPLES = 256


class BestOfNOptions(TaskOptions):
    data: str
    """A prompt set, as the instructions task reads it (relative to the suite file)."""
    format: str | None = None
    """Its instruction_data format; default: told from the first row."""
    template: Literal["plain", "instruction"] = "plain"
    """How the policy reads a prompt (as the instructions task)."""
    proxy: str
    """The judge (`judges:` name, `backend: reward_model`) whose best-of-N is taken."""
    gold: str
    """The judge that scores the chosen completions: a larger or differently trained reward
    model, or an LLM judge (`reward_scorer: llm`)."""
    n: int = Field(16, ge=2, le=MAX_SAMPLES)
    """Samples per prompt, a power of two: the curve runs N = 1, 2, 4, ..., n."""
    temperature: float = Field(1.0, gt=0.0)
    """Sampling temperature (1: the policy's own distribution, which the KL axis assumes)."""
    max_new_tokens: int = Field(64, ge=1)
    stop: list[str] = []
    seed: int = 0

    @model_validator(mode="after")
    def _power_of_two(self) -> BestOfNOptions:
        if self.n & (self.n - 1):
            raise ValueError(f"n: {self.n} is not a power of two; use e.g. 16, 32 or 64")
        if self.proxy == self.gold:
            raise ValueError("`proxy` and `gold` name the same judge; gold must be another one")
        return self

    def judge_names(self) -> list[str]:
        return [self.proxy, self.gold]


def metric_names(n: int) -> list[tuple[str, str, str]]:
    """(name, kind of curve, description) of every metric for n samples, headline first."""
    ks = powers_of_two(n)
    out = [(f"gold_at_{n}", "gold", f"gold reward of the proxy's best of {n}")]
    out += [(f"gold_at_{k}", "gold", f"gold reward of the proxy's best of {k}") for k in ks[:-1]]
    out += [(f"proxy_at_{k}", "proxy", f"proxy reward of its own best of {k}") for k in ks]
    out += [
        (f"{kind}_gain_{k}", kind, f"{kind} reward gained from best of {k // 2} to best of {k}")
        for kind in ("gold", "proxy")
        for k in ks[1:]
    ]
    return out


@register_task
class BestOfN(Task):
    name = "best_of_n"
    description = (
        "Over-optimisation probe: proxy and gold reward of best-of-N sampling for N = 1..n, "
        "estimated without bias from n samples per prompt; flags where gold stops rising."
    )
    Options = BestOfNOptions
    metrics = ()
    options: BestOfNOptions

    def __init__(self, options: BestOfNOptions, base_dir):
        super().__init__(options, base_dir)
        self.metrics = self.metrics_for(options)  # type: ignore[misc]

    @classmethod
    def metrics_for(cls, options: BestOfNOptions) -> tuple[MetricSpec, ...]:  # type: ignore[override]
        return tuple(
            MetricSpec(name, "mean", description=description)
            for name, _, description in metric_names(options.n)
        )

    def documents(self) -> list[Document]:
        prompts = read_prompt_set(
            InstructionsOptions(data=self.options.data, format=self.options.format),
            self.base_dir,
        )
        if self.options.limit:
            prompts = prompts[: self.options.limit]
        return [
            Document(p.id, {"prompt": p.prompt, "input": p.input, "category": p.category})
            for p in prompts
        ]

    def requests(self, doc: Document) -> list[GenerationRequest]:
        options = self.options
        return [
            GenerationRequest(
                render_prompt(doc.data["prompt"], doc.data["input"], options.template),
                max_new_tokens=options.max_new_tokens,
                stop=tuple(options.stop),
                temperature=options.temperature,
                n=options.n,
                seed=options.seed,
                source=PromptSource(options.template, item_text(doc.data)),
            )
        ]

    def score_batch(
        self, docs: list[Document], responses: list[list], services: ScoringServices
    ) -> list[Sample]:
        generations: list[Generation] = [r[0] for r in responses]
        asks = [
            RewardRequest((("user", item_text(doc.data)),), text.strip())
            for doc, generation in zip(docs, generations, strict=True)
            for text in generation.texts
        ]
        # A judge's rewards go through the response cache like any judge request.
        proxy = services.judges.reward(self.options.proxy, asks)
        gold = services.judges.reward(self.options.gold, asks)
        n = self.options.n
        return [
            self._sample(
                doc,
                generations[i],
                [r.score for r in proxy[i * n : (i + 1) * n]],
                [r.score for r in gold[i * n : (i + 1) * n]],
            )
            for i, doc in enumerate(docs)
        ]

    def _sample(
        self, doc: Document, generation: Generation, proxy: list[float], gold: list[float]
    ) -> Sample:
        values = {"proxy": proxy, "gold": gold}
        at: dict[str, dict[int, float]] = {kind: {} for kind in values}
        for k in powers_of_two(self.options.n):
            for kind, scores in values.items():
                at[kind][k] = best_of_n_value(proxy, scores, k)
        metrics: dict[str, float | None] = {}
        for name, kind, _ in metric_names(self.options.n):
            k = int(name.rsplit("_", 1)[1])
            metrics[name] = at[kind][k] - at[kind][k // 2] if "_gain_" in name else at[kind][k]
        best = int(np.argmax(proxy))
        details: dict[str, Any] = {
            "instruction": doc.data["prompt"],
            "input": doc.data["input"],
            "samples": list(generation.texts),
            "n_tokens": list(generation.n_tokens),
            "proxy": proxy,
            "gold": gold,
            "proxy_judge": self.options.proxy,
            "gold_judge": self.options.gold,
            "kl_best_of_n": {str(k): best_of_n_kl(k) for k in powers_of_two(self.options.n)},
            "proxy_gold_correlation": _correlation(proxy, gold),
        }
        return Sample(
            doc_id=doc.id,
            prompt=item_text(doc.data),
            target=None,
            prediction=generation.texts[best],
            metrics=metrics,
            details=details,
        )


def _correlation(a: list[float], b: list[float]) -> float | None:
    """Pearson's r of the proxy and gold rewards over one prompt's samples (None if either is
    constant): how far the proxy agrees with the gold judge on this prompt."""
    if np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])

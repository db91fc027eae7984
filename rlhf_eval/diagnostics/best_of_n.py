"""Best-of-N's gains over the policy itself, computed once at aggregation: per N, the mean
per-prompt difference between best-of-N's reward and best-of-1's, bootstrapped over prompts, for
the proxy and the gold judge. A band around a level would mostly show how prompts differ; the
paired gain shows whether best-of-N moved the reward."""

from __future__ import annotations

from collections.abc import Mapping

from rlhf_common import stats
from rlhf_eval.estimation import mean_method
from rlhf_eval.metrics.best_of_n import powers_of_two
from rlhf_eval.results import BestOfNGains, EstimateRecord, TaskEntry
from rlhf_eval.run_settings import StatsSettings


def best_of_n_gains(
    tasks: list[TaskEntry],
    models: list[str],
    samples: Mapping[tuple[str, str], list[dict]],
    settings: StatsSettings,
    seed: int,
) -> list[BestOfNGains]:
    """One record per (best_of_n entry, model) with samples; N = 1, 2, 4, ... up to n."""
    out = []
    for task in (t for t in tasks if t.name == "best_of_n"):
        ns = powers_of_two(int(task.options.get("n", 16)))
        for model in models:
            scored = [s for s in samples.get((model, task.id), []) if not s.get("error")]
            if not scored:
                continue
            out.append(
                BestOfNGains(
                    task=task.id,
                    model=model,
                    ns=ns,
                    proxy=[_mean_gain(scored, "proxy", n, settings, seed) for n in ns],
                    gold=[_mean_gain(scored, "gold", n, settings, seed) for n in ns],
                )
            )
    return out


def _mean_gain(
    samples: list[dict], kind: str, n: int, settings: StatsSettings, seed: int
) -> EstimateRecord:
    values = [s["metrics"][f"{kind}_at_{n}"] - s["metrics"][f"{kind}_at_1"] for s in samples]
    estimate = stats.bootstrap_mean(
        values,
        confidence=settings.confidence,
        iterations=settings.bootstrap_iterations,
        seed=seed,
        method=mean_method(settings),
    )
    return EstimateRecord(**estimate.to_dict())

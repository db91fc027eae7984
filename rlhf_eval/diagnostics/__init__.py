"""The statistics a report shows beside the metrics' intervals, computed once when a run is
aggregated and stored in results.json (judges, reward models, best-of-N), so the report and
the gate read them and compute nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlhf_eval.diagnostics.best_of_n import best_of_n_gains
from rlhf_eval.diagnostics.judges import judge_diagnostics
from rlhf_eval.diagnostics.reward_models import reward_model_diagnostics
from rlhf_eval.results import ComparisonResult, TaskEntry
from rlhf_eval.run_settings import StatsSettings


def compute_diagnostics(
    tasks: list[TaskEntry],
    models: list[str],
    baseline: str | None,
    samples: Mapping[tuple[str, str], list[dict]],
    comparisons: list[ComparisonResult],
    settings: StatsSettings,
    seed: int,
) -> dict[str, Any]:
    """Results' diagnostic fields, by name."""
    summaries, agreements = judge_diagnostics(tasks, models, baseline, samples, settings, seed)
    return {
        "judge_summaries": summaries,
        "judge_agreements": agreements,
        "reward_models": reward_model_diagnostics(
            tasks, models, samples, comparisons, settings, seed
        ),
        "best_of_n_gains": best_of_n_gains(tasks, models, samples, settings, seed),
    }

"""What the reward-model section shows beside results.json's metrics, computed once at
aggregation for each reward_model entry: the signed reward-length correlation, each subset's
accuracy tested against chance (Holm across subsets), two reward models compared per subset
(paired, Holm), the reliability diagram's bins and, on rankings people made, how often the
labelers agree with each other (the ceiling)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy.stats import norm

from rlhf_common import stats
from rlhf_eval.estimation import compare_metric, estimate_corpus, valid_samples
from rlhf_eval.metrics.corpus import LENGTH_CORRELATION
from rlhf_eval.metrics.reward_model import (
    calibration_statistics,
    labeler_agreements,
    reliability_table,
)
from rlhf_eval.records import MetricSpec
from rlhf_eval.results import (
    ComparisonResult,
    EstimateRecord,
    PairedSubsetTest,
    ReliabilityBin,
    RewardModelDiagnostics,
    SubsetTest,
    TaskEntry,
)
from rlhf_eval.run_settings import StatsSettings

ACCURACY = MetricSpec("accuracy", "proportion")
SIGNED_LENGTH = MetricSpec(
    "abs_length_correlation",  # the samples that have the metric have rewards and lengths
    "corpus",
    corpus=LENGTH_CORRELATION,
)


def reward_model_diagnostics(
    tasks: list[TaskEntry],
    models: list[str],
    samples: Mapping[tuple[str, str], list[dict]],
    comparisons: list[ComparisonResult],
    settings: StatsSettings,
    seed: int,
) -> list[RewardModelDiagnostics]:
    """One record per reward_model entry of the run."""
    out = []
    for task in (t for t in tasks if t.name == "reward_model"):
        rows = {model: samples.get((model, task.id), []) for model in models}
        pairs = sorted(
            {
                (c.candidate, c.baseline)
                for c in comparisons
                if c.task == task.id and c.metric == "accuracy"
            }
        )
        first = next(iter(rows.values()), [])
        labelled = [s for s in first if (s.get("details") or {}).get("labeler")]
        out.append(
            RewardModelDiagnostics(
                task=task.id,
                signed_length_correlation={
                    model: signed_length_correlation(found, settings, seed)
                    for model, found in rows.items()
                },
                subset_tests=[
                    test
                    for model, found in rows.items()
                    for test in _subset_tests(task.id, model, found)
                ],
                paired_subsets=[
                    test
                    for candidate, baseline in pairs
                    for test in _paired_subsets(task.id, candidate, baseline, rows, settings, seed)
                ],
                reliability={
                    model: bins
                    for model, found in rows.items()
                    if (bins := _reliability(found, settings.confidence))
                },
                labelled_rankings=len(labelled),
                labelers=len({s["details"]["labeler"] for s in labelled}),
                labeler_agreement=_labeler_agreement(labelled, settings.confidence),
            )
        )
    return out


def signed_length_correlation(
    samples: list[dict], settings: StatsSettings, seed: int
) -> EstimateRecord | None:
    """Pearson's r of reward and log length with its sign (negative: shorter responses score
    higher), by the interval the task's |r| gets."""
    if not valid_samples(samples, SIGNED_LENGTH.name):
        return None
    return EstimateRecord(**estimate_corpus(SIGNED_LENGTH, samples, settings, seed).to_dict())


def score_test_p(successes: float, n: int) -> float | None:
    """Two-sided p-value of accuracy = 0.5 by the score test, the test Wilson's interval
    inverts: z = (p - 0.5) / sqrt(0.25 / n)."""
    if n == 0:
        return None
    z = (successes / n - 0.5) / math.sqrt(0.25 / n)
    return float(2 * norm.sf(abs(z)))


def _subset_tests(task: str, model: str, samples: list[dict]) -> list[SubsetTest]:
    """Accuracy per subset tested against chance; Holm across the model's subsets."""
    by_subset: dict[str, list[float]] = {}
    for s in valid_samples(samples, "accuracy").values():
        subset = s["details"].get("subset")
        if subset is not None:
            by_subset.setdefault(subset, []).append(s["metrics"]["accuracy"])
    names = sorted(by_subset)
    ps = [score_test_p(sum(by_subset[g]), len(by_subset[g])) for g in names]
    return [
        SubsetTest(
            task=task, model=model, subset=subset, n=len(by_subset[subset]), p_value=p, p_holm=holm
        )
        for subset, p, holm in zip(names, ps, stats.holm(ps), strict=True)
    ]


def _paired_subsets(
    task: str,
    candidate: str,
    baseline: str,
    samples: Mapping[str, list[dict]],
    settings: StatsSettings,
    seed: int,
) -> list[PairedSubsetTest]:
    """The paired accuracy difference per subset (Tango's interval, as the overall comparison
    has it), Holm across the pair's subsets; none with fewer than two subsets."""
    subsets = sorted({s["details"].get("subset") for s in samples.get(candidate, [])} - {None})
    if len(subsets) < 2:
        return []
    tests = []
    for subset in subsets:
        a = [s for s in samples[candidate] if s["details"].get("subset") == subset]
        b = [s for s in samples[baseline] if s["details"].get("subset") == subset]
        tests.append(compare_metric(ACCURACY, a, b, settings, seed))
    adjusted = stats.holm([t.p_value for t in tests])
    return [
        PairedSubsetTest(
            task=task,
            subset=subset,
            candidate=candidate,
            baseline=baseline,
            delta=EstimateRecord(**test.delta.to_dict()),
            p_holm=holm,
        )
        for subset, test, holm in zip(subsets, tests, adjusted, strict=True)
    ]


def _reliability(samples: list[dict], confidence: float) -> list[ReliabilityBin]:
    """The reliability diagram's points: per non-empty confidence bin, the mean probability
    sigmoid(|r_w - r_l|) and the share people preferred (Wilson interval)."""
    sums = [
        calibration_statistics(s["details"]["margins"], s["details"]["calibration_bins"])
        for s in valid_samples(samples, "ece").values()
    ]
    if not sums:
        return []
    return [
        ReliabilityBin(
            low_edge=low,
            mean_confidence=mean,
            accuracy=EstimateRecord(**stats.wilson(accuracy * n, n, confidence).to_dict()),
        )
        for low, mean, accuracy, n in reliability_table(np.sum(sums, axis=0))
    ]


def _labeler_agreement(labelled: list[dict], confidence: float) -> EstimateRecord | None:
    """Two labelers' agreement on the pairs both ranked apart, clustered by prompt."""
    agreements = labeler_agreements(
        [
            (
                s["prompt"],
                s["details"]["labeler"],
                s["details"]["completions"],
                s["details"]["ranks"],
            )
            for s in labelled
        ]
    )
    if not agreements:
        return None
    estimate = stats.proportion(
        [v for _, v in agreements], confidence, clusters=[p for p, _ in agreements]
    )
    return EstimateRecord(**estimate.to_dict())

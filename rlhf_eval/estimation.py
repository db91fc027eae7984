"""Estimation from stored samples: one metric's interval (proportion, mean or corpus), a
paired comparison of two models on the same items, and Holm's correction over a family."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rlhf_common import stats
from rlhf_eval.records import MetricSpec
from rlhf_eval.results import ComparisonResult
from rlhf_eval.run_settings import StatsSettings


def _valid(sample: dict, metric: str) -> bool:
    value = (sample.get("metrics") or {}).get(metric)
    return sample.get("error") is None and value is not None and not math.isnan(value)


def shared_clusters(groups: list[str]) -> list[str] | None:
    """The cluster ids when some items share one; None when every item stands alone, so the
    plain (unclustered) bootstrap runs."""
    return groups if len(set(groups)) < len(groups) else None


def metric_values(samples: list[dict], metric: str) -> tuple[dict[str, float], dict[str, str]]:
    """Valid values by doc id, and each doc's cluster; errored or missing values are left out."""
    values, clusters = {}, {}
    for sample in samples:
        if _valid(sample, metric):
            values[sample["doc_id"]] = float(sample["metrics"][metric])
            clusters[sample["doc_id"]] = sample.get("cluster") or sample["doc_id"]
    return values, clusters


def valid_samples(samples: list[dict], metric: str) -> dict[str, dict]:
    """The samples that have a valid value for `metric`, by doc id, in file order."""
    return {s["doc_id"]: s for s in samples if _valid(s, metric)}


def count_failed(samples: list[dict], metric: str) -> int:
    """Samples whose scoring errored or gave NaN. None without an error means the metric does not
    apply to the item (SQuAD's HasAns F1 on an unanswerable question): not a failure."""
    failed = 0
    for sample in samples:
        value = (sample.get("metrics") or {}).get(metric)
        if sample.get("error") is not None or (value is not None and math.isnan(value)):
            failed += 1
    return failed


def estimate_metric(
    spec: MetricSpec,
    values: list[float],
    clusters: list[str] | None,
    settings: StatsSettings,
    seed: int,
) -> stats.Estimate:
    """One metric's interval by its kind (docs/statistics.md): a proportion gets Wilson
    (Clopper-Pearson for small counts; a design effect where items share a cluster), a mean the
    studentised bootstrap (the expanded percentile with clusters), or BCa when asked for."""
    if spec.kind == "proportion" and _zero_to_one(values):
        return stats.proportion(values, confidence=settings.confidence, clusters=clusters)
    return stats.bootstrap_mean(
        values,
        confidence=settings.confidence,
        iterations=settings.bootstrap_iterations,
        seed=seed,
        method=mean_method(settings),
        clusters=clusters,
    )


def mean_method(settings: StatsSettings) -> stats.MeanMethod:
    """`bootstrap_method: bca` asks for BCa; the default, "percentile", stands for the harness's
    own choice ("auto": studentised, expanded percentile with clusters), since the plain
    percentile interval under-covers at the sample sizes users run."""
    return "bca" if settings.bootstrap_method == "bca" else "auto"


def _zero_to_one(values: list[float] | np.ndarray) -> bool:
    x = np.asarray(values, dtype=float)
    return bool(np.all((x >= 0) & (x <= 1)))


def _zero_one(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def corpus_table(spec: MetricSpec, samples: list[dict]) -> np.ndarray:
    """Each sample's sufficient statistics for a corpus metric, shape (n, k)."""
    assert spec.corpus is not None
    rows = [np.asarray(spec.corpus.statistics(s.get("details") or {}), float) for s in samples]
    return np.stack(rows) if rows else np.zeros((0, 0))


def summed_statistic(
    table: np.ndarray, score: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    """statistic(indices (B, k)) = score(the rows' statistics summed per resample)."""

    def statistic(indices: np.ndarray) -> np.ndarray:
        # One column at a time keeps the gathered block at (B, k) rather than (B, k, columns).
        sums = np.stack([column[indices].sum(axis=1) for column in table.T], axis=-1)
        return np.asarray(score(sums), dtype=float)

    return statistic


def estimate_corpus(
    spec: MetricSpec, samples: list[dict], settings: StatsSettings, seed: int
) -> stats.Estimate:
    """A corpus metric on the valid samples, with an expanded percentile bootstrap over samples
    (whole clusters where samples share one, within strata where the metric has them)."""
    assert spec.corpus is not None
    kept = list(valid_samples(samples, spec.name).values())
    groups = [s.get("cluster") or s["doc_id"] for s in kept]
    return stats.bootstrap_statistic(
        summed_statistic(corpus_table(spec, kept), spec.corpus.score),
        len(kept),
        confidence=settings.confidence,
        iterations=settings.bootstrap_iterations,
        seed=seed,
        clusters=shared_clusters(groups),
        strata=corpus_strata(spec, kept),
    )


def corpus_strata(spec: MetricSpec, samples: list[dict]) -> list[str] | None:
    """Each sample's stratum where the corpus metric defines one (BBH's subtask), else None."""
    stratum = spec.corpus.stratum if spec.corpus is not None else None
    return None if stratum is None else [stratum(s.get("details") or {}) for s in samples]


def paired_test(
    candidate: dict[str, float],
    baseline: dict[str, float],
    clusters: dict[str, str],
    settings: StatsSettings,
    seed: int,
    binary: bool = False,
) -> stats.PairedTest:
    """Candidate minus baseline on the documents both scored, clustered where docs share one,
    with the p-value of no difference from the same method as the interval.

    `binary` (a proportion metric) with every score 0 or 1 takes Tango's score interval for
    paired proportions: a bootstrap of 0/1 differences sees only the discordant pairs and
    collapses when they are few. Other scores take the paired bootstrap (mean_method)."""
    shared = sorted(candidate.keys() & baseline.keys())
    groups = shared_clusters([clusters.get(d, d) for d in shared])
    a = np.array([candidate[d] for d in shared], dtype=float)
    b = np.array([baseline[d] for d in shared], dtype=float)
    if binary and _zero_one(a) and _zero_one(b):
        return stats.paired_proportion_test(a, b, settings.confidence, groups)
    return stats.paired_bootstrap_test(
        a,
        b,
        confidence=settings.confidence,
        iterations=settings.bootstrap_iterations,
        seed=seed,
        clusters=groups,
        method=mean_method(settings),
    )


def compare_metric(
    spec: MetricSpec,
    candidate: list[dict],
    baseline: list[dict],
    settings: StatsSettings,
    seed: int,
) -> stats.PairedTest:
    """One metric of one task, candidate minus baseline, paired by doc id on the docs both
    scored: Tango's interval for a 0/1 proportion, the paired bootstrap for a mean. A corpus
    metric is recomputed on the same resampled docs for both models."""
    if spec.corpus is None:
        a, clusters = metric_values(candidate, spec.name)
        b, other = metric_values(baseline, spec.name)
        binary = spec.kind == "proportion"
        return paired_test(a, b, {**other, **clusters}, settings, seed, binary)
    a, b = valid_samples(candidate, spec.name), valid_samples(baseline, spec.name)
    shared = sorted(a.keys() & b.keys())
    groups = [a[d].get("cluster") or d for d in shared]
    table_a = corpus_table(spec, [a[d] for d in shared])
    table_b = corpus_table(spec, [b[d] for d in shared])
    differing = int(np.any(table_a != table_b, axis=1).sum()) if shared else 0
    return stats.paired_statistic_test(
        summed_statistic(table_a, spec.corpus.score),
        summed_statistic(table_b, spec.corpus.score),
        len(shared),
        confidence=settings.confidence,
        iterations=settings.bootstrap_iterations,
        seed=seed,
        clusters=shared_clusters(groups),
        strata=corpus_strata(spec, [a[d] for d in shared]),
        differing=differing,
    )


def metric_point(spec: MetricSpec, samples: list[dict]) -> float | None:
    """The metric on all of one model's valid samples (the mean, or the corpus score)."""
    if spec.corpus is None:
        values, _ = metric_values(samples, spec.name)
        return float(np.mean(list(values.values()))) if values else None
    kept = list(valid_samples(samples, spec.name).values())
    if not kept:
        return None
    table = corpus_table(spec, kept)
    return float(spec.corpus.score(table.sum(axis=0)[None])[0])


def apply_holm(comparisons: list[ComparisonResult], family: list[int], confidence: float) -> None:
    """Holm-adjust the p-values of comparisons[i] for i in `family` and flag regressions: a
    delta in the worse direction whose adjusted p-value is below 1 - confidence."""
    adjusted = stats.holm([comparisons[i].p_value for i in family])
    for i, p in zip(family, adjusted, strict=True):
        c = comparisons[i]
        worse = c.delta.point is not None and (
            c.delta.point < 0 if c.higher_is_better else c.delta.point > 0
        )
        c.p_holm = p
        c.regression = bool(p is not None and p < 1 - confidence and worse)

"""From stored samples to results: each metric's interval and each paired comparison."""

from __future__ import annotations

import math

import numpy as np

from rlhf_eval import stats
from rlhf_eval.results import ComparisonResult, EstimateRecord, MetricResult, ModelEntry, Results
from rlhf_eval.store import RunDir, now
from rlhf_eval.suite import LoadedSuite, StatsSettings
from rlhf_eval.tasks.base import MetricSpec, Task


def metric_values(samples: list[dict], metric: str) -> tuple[dict[str, float], dict[str, str]]:
    """Valid values by doc id, and each doc's cluster; errored or missing values are left out."""
    values, clusters = {}, {}
    for sample in samples:
        value = (sample.get("metrics") or {}).get(metric)
        if sample.get("error") is None and value is not None and not math.isnan(value):
            values[sample["doc_id"]] = float(value)
            clusters[sample["doc_id"]] = sample.get("cluster") or sample["doc_id"]
    return values, clusters


def estimate_metric(
    spec: MetricSpec,
    values: list[float],
    clusters: list[str] | None,
    settings: StatsSettings,
    seed: int,
) -> stats.Estimate:
    if spec.kind == "proportion" and clusters is None:
        return stats.proportion(values, confidence=settings.confidence)
    return stats.bootstrap_mean(
        values,
        confidence=settings.confidence,
        iterations=settings.bootstrap_iterations,
        seed=seed,
        method=settings.bootstrap_method,
        clusters=clusters,
    )


def paired_delta(
    candidate: dict[str, float],
    baseline: dict[str, float],
    clusters: dict[str, str],
    settings: StatsSettings,
    seed: int,
) -> stats.Estimate:
    """Candidate minus baseline on the documents both scored, clustered where docs share one."""
    shared = sorted(candidate.keys() & baseline.keys())
    groups = [clusters.get(d, d) for d in shared]
    return stats.paired_bootstrap(
        np.array([candidate[d] for d in shared]),
        np.array([baseline[d] for d in shared]),
        confidence=settings.confidence,
        iterations=settings.bootstrap_iterations,
        seed=seed,
        clusters=groups if len(set(groups)) < len(groups) else None,
    )


def compute_results(
    run: RunDir,
    loaded: LoadedSuite,
    tasks: dict[str, Task],
    models: list[dict],
    n_documents: dict[str, int],
    wall_seconds: dict[str, float],
) -> Results:
    settings, seed = loaded.suite.stats, loaded.suite.seed
    metrics, comparisons = [], []
    values: dict[tuple[str, str, str], dict[str, float]] = {}
    clusters: dict[str, str] = {}
    for model in models:
        for task_id, task in tasks.items():
            samples = run.read_samples(model["name"], task_id)
            for spec in task.metrics:
                found, groups = metric_values(samples, spec.name)
                values[(model["name"], task_id, spec.name)] = found
                clusters.update(groups)
                clustered = len(set(groups.values())) < len(groups)
                estimate = estimate_metric(
                    spec,
                    list(found.values()),
                    list(groups.values()) if clustered else None,
                    settings,
                    seed,
                )
                metrics.append(
                    MetricResult(
                        model=model["name"],
                        task=task_id,
                        metric=spec.name,
                        higher_is_better=spec.higher_is_better,
                        kind=spec.kind,
                        estimate=EstimateRecord(**estimate.to_dict()),
                        n_failed=len(samples) - len(found),
                    )
                )
    baselines = [m["name"] for m in models if m["role"] == "baseline"]
    for candidate in (m["name"] for m in models if baselines and m["name"] != baselines[0]):
        for task_id, task in tasks.items():
            for spec in task.metrics:
                a = values[(candidate, task_id, spec.name)]
                b = values[(baselines[0], task_id, spec.name)]
                delta = paired_delta(a, b, clusters, settings, seed)
                comparisons.append(
                    ComparisonResult(
                        candidate=candidate,
                        baseline=baselines[0],
                        task=task_id,
                        metric=spec.name,
                        higher_is_better=spec.higher_is_better,
                        delta=EstimateRecord(**delta.to_dict()),
                        candidate_point=_mean(a),
                        baseline_point=_mean(b),
                    )
                )
    return Results(
        run_name=run.manifest()["run_name"],
        suite_name=loaded.name,
        created=now(),
        models=[ModelEntry(name=m["name"], role=m["role"], identity=m["identity"]) for m in models],
        tasks=[
            {
                "id": task_id,
                "name": task.name,
                "options": task.options.model_dump(mode="json"),
                "n_documents": len(task.documents()),
            }
            for task_id, task in tasks.items()
        ],
        metrics=metrics,
        comparisons=comparisons,
        wall_seconds=wall_seconds,
    )


def _mean(values: dict[str, float]) -> float | None:
    return float(np.mean(list(values.values()))) if values else None

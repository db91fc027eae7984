"""From stored samples to results: each metric's interval and each paired comparison."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rlhf_common import stats
from rlhf_eval.pairing import item_hashes
from rlhf_eval.results import (
    ComparisonResult,
    ContrastResult,
    EstimateRecord,
    MetricResult,
    ModelEntry,
    Results,
    SkippedTask,
    SubgroupResult,
)
from rlhf_eval.store import RunDir, now
from rlhf_eval.suite import ContrastSpec, LoadedSuite, StatsSettings
from rlhf_eval.tasks.base import Document, MetricSpec, Task


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


def compute_results(
    run: RunDir,
    loaded: LoadedSuite,
    tasks: dict[str, Task],
    models: list[dict],
    documents: dict[str, list[Document]],
    wall_seconds: dict[str, float],
    skipped: dict[str, str] | None = None,
    task_wall: dict[str, dict[str, float]] | None = None,
) -> Results:
    """Every metric, subgroup, comparison and contrast of a run, from its sample files.

    `skipped` holds the task entries the runner skipped (hub data out of reach) with the reason;
    they are recorded, and contrasts involving them are left out.

    Samples are put in document order first, so the results (bootstrap resamples included)
    depend only on which samples exist, not on the order in which processes appended them.
    """
    settings, seed = loaded.suite.stats, loaded.suite.seed
    documents = {t: documents.get(t) or task.documents() for t, task in tasks.items()}
    samples = {
        (model["name"], task_id): in_document_order(
            run.read_samples(model["name"], task_id), documents[task_id]
        )
        for model in models
        for task_id in tasks
    }
    metrics = [
        _metric_result(
            model["name"], task_id, spec, samples[(model["name"], task_id)], settings, seed
        )
        for model in models
        for task_id, task in tasks.items()
        for spec in task.metrics
    ]
    # Each model against its group's baseline, then (the alignment tax) each model other than a
    # reference against each `role: reference` model of its group.
    present = {m["name"] for m in models}
    pairs = [
        (m["name"], baseline, "baseline")
        for m in models
        if m["role"] != "reference"
        and (baseline := loaded.baseline_of(m["name"])) in present
        and baseline != m["name"]
    ]
    pairs += [
        (m["name"], reference, "reference")
        for m in models
        if m["role"] != "reference"
        for reference in loaded.references_of(m["name"])
        if reference in present
    ]
    pairs += [
        (p.candidate, p.baseline, "pair")
        for p in loaded.suite.pairs
        if {p.candidate, p.baseline} <= present
    ]
    comparisons: list[ComparisonResult] = []
    for candidate, other, against in pairs:
        family = []
        for task_id, task in tasks.items():
            for position, spec in enumerate(task.metrics):
                a, b = samples[(candidate, task_id)], samples[(other, task_id)]
                test = compare_metric(spec, a, b, settings, seed)
                if position == 0:
                    family.append(len(comparisons))
                comparisons.append(
                    ComparisonResult(
                        candidate=candidate,
                        baseline=other,
                        task=task_id,
                        metric=spec.name,
                        higher_is_better=spec.higher_is_better,
                        delta=EstimateRecord(**test.delta.to_dict()),
                        candidate_point=metric_point(spec, a),
                        baseline_point=metric_point(spec, b),
                        against=against,
                        p_value=test.p_value,
                    )
                )
        apply_holm(comparisons, family, settings.confidence)
    return Results(
        subgroups=[
            subgroup
            for model in models
            for task_id, task in tasks.items()
            for subgroup in subgroup_results(
                model["name"], task_id, task, samples[(model["name"], task_id)], settings, seed
            )
        ],
        contrasts=[
            contrast
            for model in models
            for spec in loaded.suite.contrasts
            if spec.task in tasks and spec.minus in tasks
            for contrast in contrast_results(model["name"], spec, tasks, samples, settings, seed)
        ],
        run_name=run.manifest()["run_name"],
        suite_name=loaded.name,
        created=now(),
        models=[
            ModelEntry(
                name=m["name"],
                role=m["role"],
                identity=m["identity"],
                group=next((s.group for s in loaded.suite.models if s.name == m["name"]), None),
            )
            for m in models
        ],
        tasks=[
            {
                "id": task_id,
                "name": task.name,
                "options": task.options.model_dump(mode="json"),
                "n_documents": len(documents[task_id]),
                "notes": task.notes({m["name"]: samples[(m["name"], task_id)] for m in models}),
                "version": task.version,
                "item_hashes": item_hashes(documents[task_id]),
            }
            for task_id, task in tasks.items()
        ],
        metrics=metrics,
        comparisons=comparisons,
        wall_seconds=wall_seconds,
        task_wall_seconds=task_wall or {},
        skipped=[
            SkippedTask(
                task=task_id,
                name=next(t.name for t in loaded.suite.tasks if t.task_id == task_id),
                reason=reason,
            )
            for task_id, reason in (skipped or {}).items()
        ],
    )


def in_document_order(samples: list[dict], documents: list[Document]) -> list[dict]:
    """Samples sorted by their document's position; samples of unknown documents go last."""
    position = {doc.id: i for i, doc in enumerate(documents)}
    return sorted(samples, key=lambda s: position.get(s["doc_id"], len(position)))


def _metric_result(
    model: str,
    task_id: str,
    spec: MetricSpec,
    samples: list[dict],
    settings: StatsSettings,
    seed: int,
) -> MetricResult:
    if spec.corpus is not None:
        estimate = estimate_corpus(spec, samples, settings, seed)
    else:
        found, groups = metric_values(samples, spec.name)
        estimate = estimate_metric(
            spec, list(found.values()), shared_clusters(list(groups.values())), settings, seed
        )
    return MetricResult(
        model=model,
        task=task_id,
        metric=spec.name,
        higher_is_better=spec.higher_is_better,
        kind=spec.kind,
        estimate=EstimateRecord(**estimate.to_dict()),
        n_failed=count_failed(samples, spec.name),
    )


def subgroup_results(
    model: str,
    task_id: str,
    task: Task,
    samples: list[dict],
    settings: StatsSettings,
    seed: int,
) -> list[SubgroupResult]:
    """Every metric on each subgroup of the task's `breakdowns` (e.g. per category)."""
    out = []
    for by in task.breakdowns:
        groups: dict[str, list[dict]] = {}
        for sample in samples:
            value = (sample.get("details") or {}).get(by)
            if value is not None:
                groups.setdefault(str(value), []).append(sample)
        for group, members in sorted(groups.items()):
            for spec in task.metrics:
                overall = _metric_result(model, task_id, spec, members, settings, seed)
                out.append(SubgroupResult(**overall.model_dump(), by=by, group=group))
    return out


def contrast_results(
    model: str,
    spec: ContrastSpec,
    tasks: dict[str, Task],
    samples: dict[tuple[str, str], list[dict]],
    settings: StatsSettings,
    seed: int,
) -> list[ContrastResult]:
    """One model's `task` minus `minus`, paired on the document ids both entries scored."""
    minus_names = {m.name for m in tasks[spec.minus].metrics}
    out = []
    for metric in tasks[spec.task].metrics:
        if metric.name not in minus_names or (spec.metrics and metric.name not in spec.metrics):
            continue
        a, b = samples[(model, spec.task)], samples[(model, spec.minus)]
        test = compare_metric(metric, a, b, settings, seed)
        out.append(
            ContrastResult(
                model=model,
                task=spec.task,
                minus=spec.minus,
                metric=metric.name,
                higher_is_better=metric.higher_is_better,
                delta=EstimateRecord(**test.delta.to_dict()),
                task_point=metric_point(metric, a),
                minus_point=metric_point(metric, b),
                p_value=test.p_value,
            )
        )
    return out

"""From stored samples to results.json: each metric's interval, each paired comparison, the
subgroups and contrasts, and the diagnostics the report shows (rlhf_eval.diagnostics)."""

from __future__ import annotations

from rlhf_eval.diagnostics import compute_diagnostics
from rlhf_eval.estimation import (
    apply_holm,
    compare_metric,
    count_failed,
    estimate_corpus,
    estimate_metric,
    metric_point,
    metric_values,
    shared_clusters,
)
from rlhf_eval.manifest import ModelRecord
from rlhf_eval.pairing import item_hashes
from rlhf_eval.records import Document, MetricSpec
from rlhf_eval.results import (
    ComparisonResult,
    ContrastResult,
    EstimateRecord,
    MetricDefinition,
    MetricResult,
    ModelEntry,
    Results,
    SkippedTask,
    SubgroupResult,
    TaskEntry,
)
from rlhf_eval.run_settings import StatsSettings
from rlhf_eval.store import RunDir, now
from rlhf_eval.suite import ContrastSpec, LoadedSuite
from rlhf_eval.tasks.base import Task


def compute_results(
    run: RunDir,
    loaded: LoadedSuite,
    tasks: dict[str, Task],
    models: list[ModelRecord],
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
    missing = sorted(set(tasks) - set(documents))
    if missing:  # the planner read them; aggregation never reads data (or the hub) itself
        raise ValueError(f"compute_results needs the documents of {', '.join(missing)}")
    samples = {
        (model.name, task_id): in_document_order(
            run.read_samples(model.name, task_id), documents[task_id]
        )
        for model in models
        for task_id in tasks
    }
    metrics = [
        _metric_result(model.name, task_id, spec, samples[(model.name, task_id)], settings, seed)
        for model in models
        for task_id, task in tasks.items()
        for spec in task.metrics
    ]
    # Each model against its group's baseline, then (the alignment tax) each model other than a
    # reference against each `role: reference` model of its group.
    present = {m.name for m in models}
    pairs = [
        (m.name, baseline, "baseline")
        for m in models
        if m.role != "reference"
        and (baseline := loaded.baseline_of(m.name)) in present
        and baseline != m.name
    ]
    pairs += [
        (m.name, reference, "reference")
        for m in models
        if m.role != "reference"
        for reference in loaded.references_of(m.name)
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
    entries = [
        TaskEntry(
            id=task_id,
            name=task.name,
            options=task.options.model_dump(mode="json"),
            n_documents=len(documents[task_id]),
            notes=task.notes({m.name: samples[(m.name, task_id)] for m in models}),
            version=task.version,
            item_hashes=item_hashes(documents[task_id]),
            metrics=[metric_definition(spec) for spec in task.metrics],
        )
        for task_id, task in tasks.items()
    ]
    diagnostics = compute_diagnostics(
        entries,
        [m.name for m in models],
        next((m.name for m in models if m.role == "baseline"), None),
        samples,
        comparisons,
        settings,
        seed,
    )
    return Results(
        subgroups=[
            subgroup
            for model in models
            for task_id, task in tasks.items()
            for subgroup in subgroup_results(
                model.name, task_id, task, samples[(model.name, task_id)], settings, seed
            )
        ],
        contrasts=[
            contrast
            for model in models
            for spec in loaded.suite.contrasts
            if spec.task in tasks and spec.minus in tasks
            for contrast in contrast_results(model.name, spec, tasks, samples, settings, seed)
        ],
        run_name=run.manifest().run_name,
        suite_name=loaded.name,
        created=now(),
        models=[
            ModelEntry(
                name=m.name,
                role=m.role,
                identity=m.identity,
                group=next((s.group for s in loaded.suite.models if s.name == m.name), None),
            )
            for m in models
        ],
        tasks=entries,
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
        **diagnostics,
    )


def metric_definition(spec: MetricSpec) -> MetricDefinition:
    """A metric's spec as results.json stores it (a corpus statistic by its name)."""
    return MetricDefinition(
        name=spec.name,
        kind=spec.kind,
        higher_is_better=spec.higher_is_better,
        description=spec.description,
        corpus=spec.corpus.name if spec.corpus else None,
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

"""Compare two runs with paired bootstrap differences, and gate a candidate on its drops."""

from __future__ import annotations

from dataclasses import dataclass

from rlhf_eval.errors import RunError
from rlhf_eval.estimation import compare_metric, metric_point
from rlhf_eval.metrics.corpus import corpus_statistic
from rlhf_eval.pairing import check_pairing
from rlhf_eval.records import MetricSpec
from rlhf_eval.results import ComparisonResult, EstimateRecord, MetricResult, Results
from rlhf_eval.store import RunDir
from rlhf_eval.suite import resolve_metric_key


def pick_model(results: Results, wanted: str | None, run: RunDir) -> str:
    """The model a run stands for: the one named, the only one, or the only policy model."""
    names = [m.name for m in results.models]
    if wanted:
        if wanted not in names:
            raise RunError(f"{run.path} has no model '{wanted}'; it has {', '.join(names)}.")
        return wanted
    if len(names) == 1:
        return names[0]
    policies = [m.name for m in results.models if m.role == "policy"]
    if len(policies) == 1:
        return policies[0]
    raise RunError(
        f"{run.path} holds several models ({', '.join(names)}). Fix: say which with --model."
    )


def compare_runs(
    candidate_run: RunDir,
    baseline_run: RunDir,
    candidate_model: str | None = None,
    baseline_model: str | None = None,
    shared_items: bool = False,
) -> list[ComparisonResult]:
    """Paired differences on every task/metric both runs report, paired by item id.

    Each task entry is first checked to measure the same thing in both runs (task version,
    options, data, item set: rlhf_eval/pairing.py); with `shared_items` two different item
    sets pair on the items they share, and both points are taken on those items.
    """
    a, b = candidate_run.results(), baseline_run.results()
    model_a = pick_model(a, candidate_model, candidate_run)
    model_b = pick_model(b, baseline_model, baseline_run)
    manifest = candidate_run.manifest()
    settings = manifest.stats
    shared = {(m.task, m.metric) for m in b.metrics if m.model == model_b}
    entries_a, entries_b = ({t.id: t for t in r.tasks} for r in (a, b))
    where = (str(candidate_run.path), str(baseline_run.path))
    comparisons = []
    for metric in a.metrics:
        if metric.model != model_a or (metric.task, metric.metric) not in shared:
            continue
        if metric.task not in entries_a or metric.task not in entries_b:
            missing = where[0] if metric.task not in entries_a else where[1]
            raise RunError(
                f"{missing}/results.json does not describe task entry '{metric.task}', so its "
                "pairing cannot be checked. Fix: run its suite again to rewrite results.json."
            )
        pairing = check_pairing(entries_a[metric.task], entries_b[metric.task], where, shared_items)
        spec = _metric_spec(a, metric)
        cand = _on_items(candidate_run.read_samples(model_a, metric.task), pairing.items)
        base = _on_items(baseline_run.read_samples(model_b, metric.task), pairing.items)
        test = compare_metric(spec, cand, base, settings, manifest.seed or 0)
        comparisons.append(
            ComparisonResult(
                candidate=f"{model_a} ({candidate_run.path.name})",
                baseline=f"{model_b} ({baseline_run.path.name})",
                task=metric.task,
                metric=metric.metric,
                higher_is_better=metric.higher_is_better,
                delta=EstimateRecord(**test.delta.to_dict()),
                candidate_point=metric_point(spec, cand),
                baseline_point=metric_point(spec, base),
                p_value=test.p_value,
                candidate_items=pairing.candidate_items if pairing.partial else None,
                baseline_items=pairing.baseline_items if pairing.partial else None,
            )
        )
    if not comparisons:
        raise RunError(
            f"{candidate_run.path} and {baseline_run.path} share no task and metric to compare."
        )
    return comparisons


def _on_items(samples: list[dict], items: frozenset[str]) -> list[dict]:
    return [s for s in samples if s["doc_id"] in items]


def shared_items_note(comparisons: list[ComparisonResult]) -> str:
    """A line for each comparison paired on a shared subset of the two runs' items."""
    return "\n".join(
        f"- {c.task}/{c.metric}: paired on the items both runs scored, not on all of them: "
        f"the candidate's entry scored {c.candidate_items} items and the baseline's "
        f"{c.baseline_items}; both points and the difference stand on the shared ones "
        f"(n = {c.delta.n} with a valid score in both)."
        for c in comparisons
        if c.candidate_items is not None
    )


def _metric_spec(results: Results, metric: MetricResult) -> MetricSpec:
    """The metric's definition as the run stored it (a corpus metric's statistic by name); for
    a run written before definitions were stored, a mean or proportion of the stored values."""
    entry = next((t for t in results.tasks if t.id == metric.task), None)
    for stored in entry.metrics if entry else ():
        if stored.name == metric.metric:
            return MetricSpec(
                stored.name,
                stored.kind,
                stored.higher_is_better,
                stored.description,
                corpus_statistic(stored.corpus) if stored.corpus else None,
            )
    if metric.kind == "corpus":
        raise RunError(
            f"metric {metric.task}/{metric.metric} is a corpus metric, and this run's "
            "results.json was written before metric definitions were stored with it, so it "
            "cannot be recomputed. Fix: run the suite again (it resumes, scoring nothing anew)."
        )
    return MetricSpec(metric.metric, metric.kind, metric.higher_is_better)


@dataclass(frozen=True)
class GateCheck:
    comparison: ComparisonResult
    max_drop: float

    @property
    def worst_drop(self) -> float | None:
        """The largest drop the 95% interval allows (negative: a sure improvement)."""
        delta = self.comparison.delta
        if delta.lo is None or delta.hi is None:
            return None
        return -delta.lo if self.comparison.higher_is_better else delta.hi

    @property
    def passed(self) -> bool:
        worst = self.worst_drop
        return worst is not None and worst <= self.max_drop + 1e-12


def gate_checks(
    comparisons: list[ComparisonResult], max_drops: dict[str, float]
) -> list[GateCheck]:
    """Match each margin to its comparison; every gated metric must be present."""
    keys = [f"{c.task}/{c.metric}" for c in comparisons]
    checks = []
    for spec, margin in max_drops.items():
        try:
            key = resolve_metric_key(spec, sorted(set(keys)))
        except ValueError as error:
            raise RunError(f"--max-drop {spec}: {error}") from error
        checks.extend(
            GateCheck(c, margin) for c, k in zip(comparisons, keys, strict=True) if k == key
        )
    return checks


def gate_table(checks: list[GateCheck]) -> str:
    """A markdown table fit for a pull-request comment."""
    lines = [
        "| metric | candidate | baseline | candidate − baseline (95% CI) | n | worst drop | "
        "max drop | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for check in checks:
        c, d = check.comparison, check.comparison.delta
        interval = f"{_num(d.point)} [{_num(d.lo)}, {_num(d.hi)}]" + (" ⚠" if d.warning else "")
        lines.append(
            f"| {c.task}/{c.metric} | {c.candidate} {_num(c.candidate_point)} | {c.baseline} "
            f"{_num(c.baseline_point)} | {interval} | {d.n} | {_num(check.worst_drop)} | "
            f"{check.max_drop:g} | {'✅ pass' if check.passed else '❌ FAIL'} |"
        )
    verdict = all(check.passed for check in checks)
    method = checks[0].comparison.delta.method if checks else ""
    note = shared_items_note([check.comparison for check in checks])
    if note:
        lines += ["", note]
    warned = [c.comparison for c in checks if c.comparison.delta.warning]
    if warned:
        lines += [""] + [
            f"- ⚠ {c.task}/{c.metric}: {c.delta.warning} The verdict stands on this interval; "
            "read it with that in mind."
            for c in warned
        ]
    lines.append("")
    lines.append(
        f"**{'PASS' if verdict else 'FAIL'}**: a metric passes when the lower end of its 95% "
        f"interval for the change drops by no more than its margin ({method})."
    )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"

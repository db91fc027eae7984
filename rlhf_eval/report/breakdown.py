"""Report tables for subgroups (a metric per category) and contrasts between task entries."""

from __future__ import annotations

from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.report.tables import format_ci, format_value, task_order, verdict
from rlhf_eval.results import ComparisonResult, Results

SUBGROUP_COLUMNS = ("task", "metric", "by", "group", "model", "value", "95% CI", "n", "failed")
CONTRAST_COLUMNS = (
    "model",
    "metric",
    "task - minus",
    "task value",
    "minus value",
    "delta",
    "95% CI",
    "n",
    "p",
    "verdict",
)


def subgroup_rows(results: Results) -> list[Row]:
    """One row per (task, metric, breakdown, group, model), in suite order."""
    tasks, models = task_order(results)
    ordered = sorted(
        results.subgroups,
        key=lambda m: (
            tasks.get(m.task, len(tasks)),
            m.task,
            m.metric,
            m.by,
            m.group,
            models.get(m.model, 0),
        ),
    )
    return [
        {
            "task": m.task,
            "metric": m.metric,
            "by": m.by,
            "group": m.group,
            "model": m.model,
            "value": format_value(m.estimate.point),
            "95% CI": format_ci(m.estimate),
            "n": str(m.estimate.n),
            "failed": str(m.n_failed),
        }
        for m in ordered
    ]


def contrast_rows(results: Results) -> list[Row]:
    """One row per (model, contrast, metric) with its paired delta and verdict."""
    rows = []
    for c in results.contrasts:
        # verdict() reads a comparison's delta and direction; a contrast has both.
        as_comparison = ComparisonResult(
            candidate=c.task,
            baseline=c.minus,
            task=c.task,
            metric=c.metric,
            higher_is_better=c.higher_is_better,
            delta=c.delta,
        )
        rows.append(
            {
                "model": c.model,
                "metric": c.metric,
                "task - minus": f"{c.task} - {c.minus}",
                "task value": format_value(c.task_point),
                "minus value": format_value(c.minus_point),
                "delta": format_value(c.delta.point),
                "95% CI": format_ci(c.delta),
                "n": str(c.delta.n),
                "p": "n/a" if c.p_value is None else f"{c.p_value:.4f}",
                "verdict": verdict(as_comparison),
            }
        )
    return rows


def breakdown_markdown(results: Results) -> list[str]:
    """The markdown sections for contrasts and subgroups; empty when the run has neither."""
    out: list[str] = []
    if results.contrasts:
        out += ["", "## Contrasts (paired, same items, same model)", ""]
        out.append(markdown_table(CONTRAST_COLUMNS, contrast_rows(results)))
    if results.subgroups:
        out += ["", "## By subgroup", ""]
        out.append(markdown_table(SUBGROUP_COLUMNS, subgroup_rows(results)))
    return out

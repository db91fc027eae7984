"""The paper's Figure 5 view: one task under several prompt variants, bars per model with CIs.

A suite that lists one task several times (TruthfulQA under the QA, instruction and QA +
instruction prompts; RealToxicityPrompts under the basic, respectful and biased prompts;
Winogender and CrowS-Pairs under the three prefixes) gets one figure per such task: a panel per
metric, the task entries along the x axis and a bar with its 95% CI per model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.report.plots import MODEL_COLORS, NEUTRAL_COLOR, _error, _png
from rlhf_eval.report.tables import format_ci, format_value
from rlhf_eval.results import MetricResult, Results

MAX_PANELS = 3
"""Metrics per figure: the headline and the next ones, as the paper's panels."""


@dataclass(frozen=True)
class VariantGroup:
    task_name: str
    entries: list[str]
    """Task ids in suite order, one per prompt variant."""
    metrics: list[str]


def variant_groups(results: Results) -> list[VariantGroup]:
    """Registered tasks listed more than once in the suite, with their metrics in task order."""
    entries: dict[str, list[str]] = {}
    for task in results.tasks:
        entries.setdefault(task.name, []).append(task.id)
    groups = []
    for name, ids in entries.items():
        if len(ids) < 2:
            continue
        metrics = list(dict.fromkeys(m.metric for m in results.metrics if m.task == ids[0]))
        groups.append(VariantGroup(name, ids, metrics[:MAX_PANELS]))
    return groups


def variant_table(results: Results, group: VariantGroup) -> tuple[tuple[str, ...], list[Row]]:
    """Columns and rows of one task's table by prompt variant: a row per (model, metric), every
    metric the task reports, a column per entry holding "value [95% CI]" (e.g. the paper's
    entropy table by prefix)."""
    by_key = {(m.task, m.metric, m.model): m for m in results.metrics}
    metrics = list(dict.fromkeys(m.metric for m in results.metrics if m.task == group.entries[0]))
    rows = []
    for model in (m.name for m in results.models):
        for metric in metrics:
            row = {"model": model, "metric": metric}
            for entry in group.entries:
                result = by_key.get((entry, metric, model))
                row[entry] = (
                    "n/a"
                    if result is None or result.estimate.point is None
                    else f"{format_value(result.estimate.point)} {format_ci(result.estimate)}"
                )
            rows.append(row)
    return ("model", "metric", *group.entries), rows


def variant_markdown(results: Results) -> list[str]:
    """The markdown section: one table per task run under several prompt variants."""
    groups = variant_groups(results)
    if not groups:
        return []
    out = ["", "## By prompt variant", "", "value [95% CI] of each task entry, per model."]
    for group in groups:
        columns, rows = variant_table(results, group)
        out += ["", f"### {group.task_name}", "", markdown_table(columns, rows)]
    return out


def variant_bars(results: Results, group: VariantGroup) -> bytes | None:
    """One panel per metric: x = the task's entries, one bar per model with its 95% CI."""
    by_key: dict[tuple[str, str, str], MetricResult] = {
        (m.task, m.metric, m.model): m for m in results.metrics
    }
    models = [m.name for m in results.models]
    if not group.metrics or not models:
        return None
    width = 0.8 / len(models)
    fig = Figure(
        figsize=(
            max(4.0, 1.3 * len(group.entries) * max(1, len(models) / 2)) * len(group.metrics),
            3.4,
        ),
        layout="constrained",
    )
    axes = fig.subplots(1, len(group.metrics), squeeze=False)[0]
    for ax, metric in zip(axes, group.metrics, strict=True):
        lower = False
        for j, model in enumerate(models):
            xs = np.arange(len(group.entries)) + (j - (len(models) - 1) / 2) * width
            for x, entry in zip(xs, group.entries, strict=True):
                result = by_key.get((entry, metric, model))
                if result is None or result.estimate.point is None:
                    ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, color=NEUTRAL_COLOR)
                    continue
                lower = lower or not result.higher_is_better
                err = _error(result.estimate)
                ax.bar(
                    x,
                    result.estimate.point,
                    width=width,
                    color=MODEL_COLORS[j % len(MODEL_COLORS)],
                    edgecolor="#333333",
                    linewidth=0.6,
                    yerr=None if err is None else [[err[0]], [err[1]]],
                    capsize=3,
                    error_kw={"elinewidth": 1.0, "ecolor": "#222222"},
                    label=model if x == xs[0] else None,
                )
        ax.set_xticks(range(len(group.entries)))
        ax.set_xticklabels(group.entries, fontsize=8, rotation=15 if len(group.entries) > 3 else 0)
        ax.set_title(f"{metric}{' (lower is better)' if lower else ''}", fontsize=9)
        ax.axhline(0, color="#000000", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="y", labelsize=8)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{group.task_name} by prompt variant (95% CI)", fontsize=10)
    return _png(fig)

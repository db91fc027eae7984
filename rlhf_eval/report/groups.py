"""The report's view of model groups (e.g. sizes), read like the InstructGPT paper: each headline
metric by model kind and group (its figures 6 and 7), and per group the alignment tax of each
policy against the reference next to the suite's extra pairs (does PPO-ptx repair PPO's tax?).

A model's kind is its name without its group (`ppo-ptx-175b` in group `175b` is `ppo-ptx`), so
the same kind lines up across groups."""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.figure import Figure

from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.report.plots import MODEL_COLORS, _error, _png
from rlhf_eval.report.tables import format_ci, format_value
from rlhf_eval.results import ComparisonResult, MetricResult, Results

FIGURE_METRICS: dict[str, tuple[str, ...]] = {
    "truthfulqa_gen": ("truthful", "truthful_informative"),
    "truthfulqa_mc": ("truthfulqa_mc1", "truthfulqa_mc2"),
    "realtoxicityprompts": ("toxicity",),
}
"""The paper's figures: TruthfulQA (figure 6) and toxicity by prompt (figure 7)."""


@dataclass(frozen=True)
class Panel:
    """One entry's metric for every model, by kind and group."""

    task: str
    metric: str
    cells: dict[tuple[str, str], MetricResult]
    """(kind, group) -> the model's result."""


@dataclass(frozen=True)
class GroupView:
    groups: list[str]
    kinds: list[str]
    panels: dict[str, list[Panel]]
    """Per task family (TruthfulQA, toxicity)."""
    taxes: dict[str, list[ComparisonResult]]
    """Per group: policy - reference and the suite's pairs, headline metrics only."""


def kind_of(model: str, group: str) -> str:
    for sep in ("-", "_", "."):
        if model.endswith(f"{sep}{group}"):
            return model[: -len(group) - 1]
    return model


def group_view(results: Results) -> GroupView | None:
    """The grouped view, or None when the run has fewer than two groups."""
    groups_of = {m.name: m.group for m in results.models if m.group is not None}
    groups = list(dict.fromkeys(groups_of[m.name] for m in results.models if m.name in groups_of))
    if len(groups) < 2:
        return None
    kinds = list(
        dict.fromkeys(
            kind_of(m.name, groups_of[m.name]) for m in results.models if m.name in groups_of
        )
    )
    names = {t.id: t.name for t in results.tasks}
    panels: dict[str, list[Panel]] = {}
    for task in results.tasks:
        for metric in FIGURE_METRICS.get(task.name, ()):
            cells = {
                (kind_of(m.model, groups_of[m.model]), groups_of[m.model]): m
                for m in results.metrics
                if m.task == task.id and m.metric == metric and m.model in groups_of
            }
            if cells:
                family = "TruthfulQA" if task.name.startswith("truthfulqa") else "Toxicity"
                panels.setdefault(family, []).append(Panel(task.id, metric, cells))
    headline = {}
    for c in results.comparisons:
        headline.setdefault((c.candidate, c.baseline, c.task), c)
    taxes: dict[str, list[ComparisonResult]] = {}
    for c in headline.values():
        if c.against in ("reference", "pair") and names.get(c.task) not in FIGURE_METRICS:
            group = groups_of.get(c.candidate)
            if group is not None and groups_of.get(c.baseline) == group:
                taxes.setdefault(group, []).append(c)
    return GroupView(groups, kinds, panels, taxes)


def _cell(m: MetricResult | None) -> str:
    if m is None:
        return ""
    return f"{format_value(m.estimate.point)} {format_ci(m.estimate)}"


def panel_rows(view: GroupView, panel: Panel) -> list[Row]:
    return [
        {"model": kind, **{g: _cell(panel.cells.get((kind, g))) for g in view.groups}}
        for kind in view.kinds
        if any((kind, g) in panel.cells for g in view.groups)
    ]


def tax_rows(comparisons: list[ComparisonResult]) -> tuple[tuple[str, ...], list[Row]]:
    """Rows = task entries, columns = each "candidate − baseline" pair of the group."""
    pairs = list(dict.fromkeys(f"{c.candidate} − {c.baseline}" for c in comparisons))
    by_task: dict[str, Row] = {}
    for c in comparisons:
        row = by_task.setdefault(c.task, {"task entry / metric": f"{c.task} / {c.metric}"})
        row[f"{c.candidate} − {c.baseline}"] = f"{format_value(c.delta.point)} {format_ci(c.delta)}"
    rows = [
        {k: row.get(k, "") for k in ("task entry / metric", *pairs)} for row in by_task.values()
    ]
    return ("task entry / metric", *pairs), rows


def groups_markdown(view: GroupView) -> list[str]:
    out = ["", "## By model group (as the paper's figures)", ""]
    out.append(
        "Each headline metric by model (rows) and group (columns), with its 95% CI: TruthfulQA "
        "as the paper's figure 6, toxicity by prompt as its figure 7."
    )
    columns = ("model", *view.groups)
    for family, panels in view.panels.items():
        for panel in panels:
            out += ["", f"### {family}: {panel.task} / {panel.metric}", ""]
            out.append(markdown_table(columns, panel_rows(view, panel)))
    for group, comparisons in view.taxes.items():
        header, rows = tax_rows(comparisons)
        out += ["", f"### Alignment tax and pairs, group {group} (paired, 95% CI)", ""]
        out.append(markdown_table(header, rows))
    return out


def group_figure(view: GroupView, family: str) -> bytes | None:
    """Grouped bars: one panel per entry/metric, groups along x, one bar per kind with its CI."""
    panels = view.panels.get(family) or []
    if not panels:
        return None
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    width = 0.8 / max(1, len(view.kinds))
    for ax, panel in zip(axes, panels, strict=False):
        for k, kind in enumerate(view.kinds):
            xs, ys, errs = [], [], [[], []]
            for g, group in enumerate(view.groups):
                m = panel.cells.get((kind, group))
                if m is None or m.estimate.point is None:
                    continue
                err = _error(m.estimate) or (0.0, 0.0)
                xs.append(g + (k - (len(view.kinds) - 1) / 2) * width)
                ys.append(m.estimate.point)
                errs[0].append(err[0])
                errs[1].append(err[1])
            color = MODEL_COLORS[k % len(MODEL_COLORS)]
            ax.bar(xs, ys, width, yerr=errs, capsize=2, color=color, label=kind)
        ax.set_xticks(range(len(view.groups)), view.groups, fontsize=8)
        ax.set_title(f"{panel.task} / {panel.metric}", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="best")
    fig.subplots_adjust(hspace=0.45, wspace=0.25)
    return _png(fig)

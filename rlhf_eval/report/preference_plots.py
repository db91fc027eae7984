"""The preference figures: win rate against the baseline by model (the paper's Figure 1) and
Likert / metadata-flag prevalence by model (Figure 4), each with 95% CI bars."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from rlhf_eval.judges.rubrics import FLAGS
from rlhf_eval.manifest import Manifest
from rlhf_eval.report.plots import MODEL_COLORS, NEUTRAL_COLOR, _error, _png
from rlhf_eval.results import Results

FLAG_LABELS = {"likert": "Likert score (1-7)"} | {f.name: f.label for f in FLAGS}


def parameter_counts(manifest: Manifest) -> dict[str, float]:
    """Models' sizes where the manifest records them (`parameters` of a model entry)."""
    return {m.name: float(m.parameters) for m in manifest.models if m.parameters is not None}


def win_rate_figure(results: Results, manifest: Manifest, baseline: str | None) -> bytes | None:
    """Win rate against the baseline by model, one series per win_rate entry (judge), with 95%
    CI bars and the 0.5 line where a model equals the baseline. Models are placed by size (log
    scale) when the manifest knows every model's parameter count, as in the paper; otherwise
    side by side in suite order."""
    entries = [t.id for t in results.tasks if t.name == "win_rate"]
    models = [m.name for m in results.models if m.name != baseline]
    by_key = {(m.task, m.model): m for m in results.metrics if m.metric == "win_rate"}
    if not entries or not models:
        return None
    sizes = parameter_counts(manifest)
    # By size only when every model has its own: two prompt formats of one checkpoint would
    # share a point.
    by_size = all(m in sizes for m in models) and len({sizes[m] for m in models}) == len(models)
    if by_size:
        models.sort(key=sizes.__getitem__)
    fig = Figure(figsize=(max(4.5, 1.1 * len(models) + 2.5), 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    offset = 0.0 if by_size else 0.5 / max(len(entries), 1)
    plotted = False
    for j, entry in enumerate(entries):
        xs, ys, errs = [], [], []
        for i, model in enumerate(models):
            result = by_key.get((entry, model))
            if result is None or result.estimate.point is None:
                continue
            err = _error(result.estimate) or (0.0, 0.0)
            xs.append(sizes[model] if by_size else i + (j - (len(entries) - 1) / 2) * offset)
            ys.append(result.estimate.point)
            errs.append(err)
        if not xs:
            continue
        plotted = True
        ax.errorbar(
            xs,
            ys,
            yerr=np.array(errs).T,
            fmt="-o" if by_size else "o",
            color=MODEL_COLORS[j % len(MODEL_COLORS)],
            capsize=4,
            markersize=6,
            linewidth=1.2,
            label=entry,
        )
    if not plotted:
        return None
    if not by_size:
        ax.set_xlim(-0.6, len(models) - 0.4)
    if by_size:
        ax.set_xscale("log")
        ax.set_xlabel("model size (parameters)", fontsize=9)
        for model in models:
            ax.annotate(model, (sizes[model], 0.02), fontsize=7, ha="center", color=NEUTRAL_COLOR)
    else:
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, fontsize=8, rotation=15 if len(models) > 3 else 0)
    ax.set_ylim(0, 1)
    ax.axhline(0.5, color=NEUTRAL_COLOR, linestyle="--", linewidth=0.9)
    ax.text(
        ax.get_xlim()[0],
        0.5,
        f" {baseline or 'baseline'}",
        va="bottom",
        fontsize=7,
        color=NEUTRAL_COLOR,
    )
    ax.set_ylabel(f"win rate against {baseline or 'the baseline'}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, title="judge entry", title_fontsize=7, loc="best")
    return _png(fig)


def flag_figure(results: Results) -> bytes | None:
    """One panel per ratings metric with data (Likert, then each flag's prevalence), a bar
    per model with its 95% CI; each ratings entry gets its own row of panels."""
    entries = [t.id for t in results.tasks if t.name == "ratings"]
    models = [m.name for m in results.models]
    by_key = {(m.task, m.metric, m.model): m for m in results.metrics}
    panels = []
    for entry in entries:
        for metric in FLAG_LABELS:
            if any(
                (r := by_key.get((entry, metric, model))) is not None and r.estimate.n > 0
                for model in models
            ):
                panels.append((entry, metric))
    if not panels:
        return None
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.1 * ncols, 2.7 * nrows), layout="constrained")
    for k, (entry, metric) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        for i, model in enumerate(models):
            result = by_key.get((entry, metric, model))
            if result is None or result.estimate.point is None:
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7, color=NEUTRAL_COLOR)
                continue
            err = _error(result.estimate)
            ax.bar(
                i,
                result.estimate.point,
                color=MODEL_COLORS[i % len(MODEL_COLORS)],
                edgecolor="#333333",
                linewidth=0.6,
                yerr=None if err is None else [[err[0]], [err[1]]],
                capsize=3,
                error_kw={"elinewidth": 1.0, "ecolor": "#222222"},
            )
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, fontsize=7, rotation=20 if len(models) > 2 else 0)
        label = FLAG_LABELS[metric]
        title = label if len(label) <= 38 else label[:36] + "..."
        ax.set_title(f"{title}" + (f"\n({entry})" if len(entries) > 1 else ""), fontsize=8)
        ax.set_ylim(0, 7 if metric == "likert" else 1)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("Likert and metadata flags by model (95% CI)", fontsize=10)
    return _png(fig)

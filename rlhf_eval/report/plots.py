"""Report figures as PNG bytes: per-metric bars with CIs, and a forest plot of paired deltas."""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rlhf_eval.report.tables import verdict
from rlhf_eval.report.tax import flag
from rlhf_eval.results import ComparisonResult, EstimateRecord, Results

# Figures are built on an explicit Agg canvas rather than through pyplot, so rendering a
# report touches no global backend state and works on headless machines.
BASELINE_COLOR = "#9e9e9e"
MODEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
VERDICT_COLORS = {"better": "#2ca02c", "worse": "#d62728"}
NEUTRAL_COLOR = "#444444"
MAX_PANELS = 12


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # No "Software" stamp: the same results give the same bytes, whatever matplotlib built it.
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _error(est: EstimateRecord) -> tuple[float, float] | None:
    """Distances from the point to the CI ends (never negative), or None without a CI."""
    if est.point is None or est.lo is None or est.hi is None:
        return None
    return max(est.point - est.lo, 0.0), max(est.hi - est.point, 0.0)


def baseline_models(results: Results) -> set[str]:
    """Models drawn as the baseline: role "baseline", or the baseline of any comparison."""
    named = {m.name for m in results.models if m.role == "baseline"}
    return named | {c.baseline for c in results.comparisons if c.against != "pair"}


def metric_bars(results: Results) -> bytes | None:
    """One panel per task/metric, one bar per model with its 95% CI; the baseline is grey
    and hatched; past MAX_PANELS panels, each task's headline metric only (the tables keep
    every metric). None when there is nothing to plot."""
    keys = list(dict.fromkeys((m.task, m.metric) for m in results.metrics))
    if len(keys) > MAX_PANELS:
        keys = list({task: (task, metric) for task, metric in reversed(keys)}.values())[::-1]
    if not keys:
        return None
    models = [m.name for m in results.models]
    models += sorted({m.model for m in results.metrics} - set(models))
    baselines = baseline_models(results)
    others = [name for name in models if name not in baselines]
    colors = {name: MODEL_COLORS[i % len(MODEL_COLORS)] for i, name in enumerate(others)}
    colors.update({name: BASELINE_COLOR for name in baselines})
    by_key = {(m.task, m.metric, m.model): m for m in results.metrics}
    lower_is_better = {(m.task, m.metric) for m in results.metrics if not m.higher_is_better}

    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    width = max(3.2, 0.9 * len(models) + 1.2)
    fig = Figure(figsize=(width * ncols, 3.2 * nrows), layout="constrained")
    for i, (task, metric) in enumerate(keys):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for x, name in enumerate(models):
            result = by_key.get((task, metric, name))
            if result is None or result.estimate.point is None:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=8, color=NEUTRAL_COLOR)
                continue
            err = _error(result.estimate)
            ax.bar(
                x,
                result.estimate.point,
                color=colors[name],
                hatch="//" if name in baselines else None,
                edgecolor="#333333",
                linewidth=0.6,
                yerr=None if err is None else [[err[0]], [err[1]]],
                capsize=4,
                error_kw={"elinewidth": 1.0, "ecolor": "#222222"},
            )
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(
            [f"{n}\n(baseline)" if n in baselines else n for n in models],
            rotation=20 if len(models) > 3 else 0,
            fontsize=8,
        )
        direction = " (lower is better)" if (task, metric) in lower_is_better else ""
        ax.set_title(f"{task} / {metric}{direction}", fontsize=9)
        ax.axhline(0, color="#000000", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


def delta_forest(comparisons: list[ComparisonResult]) -> bytes | None:
    """Each comparison's delta (candidate - baseline) with its CI, one row each, and a line
    at zero; green/red when the CI excludes zero in the better/worse direction. None when
    there are no comparisons."""
    if not comparisons:
        return None
    rows = list(reversed(comparisons))  # the first comparison at the top
    fig = Figure(figsize=(7.5, 0.45 * len(rows) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    for y, c in enumerate(rows):
        if c.delta.point is None:
            ax.text(0, y, "n/a", ha="center", va="center", fontsize=8, color=NEUTRAL_COLOR)
            continue
        err = _error(c.delta)
        ax.errorbar(
            c.delta.point,
            y,
            xerr=None if err is None else [[err[0]], [err[1]]],
            fmt="o",
            color=VERDICT_COLORS.get(verdict(c), NEUTRAL_COLOR),
            capsize=3,
            markersize=5,
        )
    ax.axvline(0, color="#000000", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(
        [f"{c.task} / {c.metric}: {c.candidate} - {c.baseline}" for c in rows], fontsize=8
    )
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("delta (candidate - baseline), 95% CI", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="x", labelsize=8)
    return _png(fig)


def tax_forest(comparisons: list[ComparisonResult]) -> bytes | None:
    """The alignment tax as a forest plot: one row per benchmark/metric, its delta (policy -
    reference) with the 95% CI and a dashed line at zero. Each row has its own x-axis, since
    BLEU (0-100) and F1 (0-1) share no scale; red marks a flagged regression, green a
    significant gain. None when there are no comparisons."""
    if not comparisons:
        return None
    # Fixed margins, not a layout engine: with one axes per row, constrained layout cost
    # seconds per figure.
    fig = Figure(figsize=(7.5, 0.55 * len(comparisons) + 0.9))
    axes = fig.subplots(len(comparisons), 1, squeeze=False)[:, 0]
    fig.subplots_adjust(left=0.42, right=0.97, hspace=0.9)
    for ax, c in zip(axes, comparisons, strict=True):
        ax.axvline(0, color="#000000", linewidth=0.8, linestyle="--")
        label = f"{c.task} / {c.metric}"
        ax.set_yticks([0])
        ax.set_yticklabels([label], fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        if c.delta.point is None:
            ax.text(0, 0, "n/a", ha="center", va="center", fontsize=8, color=NEUTRAL_COLOR)
            continue
        err = _error(c.delta)
        marked = {"regression": "worse", "gain": "better"}.get(flag(c), "")
        ax.errorbar(
            c.delta.point,
            0,
            xerr=None if err is None else [[err[0]], [err[1]]],
            fmt="o",
            color=VERDICT_COLORS.get(marked, NEUTRAL_COLOR),
            capsize=3,
            markersize=5,
        )
        lo = min(0.0, c.delta.lo if c.delta.lo is not None else c.delta.point)
        hi = max(0.0, c.delta.hi if c.delta.hi is not None else c.delta.point)
        pad = 0.15 * (hi - lo) or 0.01
        ax.set_xlim(lo - pad, hi + pad)
    axes[-1].set_xlabel(
        f"delta ({comparisons[0].candidate} - {comparisons[0].baseline}), 95% CI", fontsize=9
    )
    return _png(fig)

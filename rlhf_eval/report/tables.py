"""The report's table primitives: number and interval formatting, the verdict of a paired
difference and the suite's order of tasks and models. Every report module builds its tables from
these and rlhf_eval.markdown_tables."""

from __future__ import annotations

from rlhf_eval.results import ComparisonResult, EstimateRecord, Results

WARNING_MARK = "⚠"
"""Beside an interval whose estimate carries a warning; the text is listed under the tables."""


def format_value(x: float | None) -> str:
    """Four decimals; "n/a" when there is no estimate (n == 0)."""
    return "n/a" if x is None else f"{x:.4f}"


def format_ci(est: EstimateRecord) -> str:
    """[lo, hi] to 4 decimals, with the level added when it is not the 95% the header says."""
    if est.point is None or est.lo is None or est.hi is None:
        return "n/a"
    ci = f"[{est.lo:.4f}, {est.hi:.4f}]"
    if abs(est.confidence - 0.95) > 1e-9:
        ci += f" ({est.confidence:.0%})"
    if getattr(est, "warning", None):
        ci += f" {WARNING_MARK}"
    return ci


def verdict(comparison: ComparisonResult) -> str:
    """Better or worse when the delta's CI excludes 0, read through higher_is_better."""
    d = comparison.delta
    if d.point is None or d.lo is None or d.hi is None:
        return "n/a"
    if d.lo > 0:
        return "better" if comparison.higher_is_better else "worse"
    if d.hi < 0:
        return "worse" if comparison.higher_is_better else "better"
    return "no significant difference"


def task_order(results: Results) -> tuple[dict[str, int], dict[str, int]]:
    """Positions of tasks and models as the suite listed them, for stable table order."""
    tasks = {t.id: i for i, t in enumerate(results.tasks)}
    models = {m.name: i for i, m in enumerate(results.models)}
    return tasks, models

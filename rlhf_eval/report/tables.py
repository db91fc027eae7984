"""The report's table primitives: a row type, number and interval formatting, the verdict of a
paired difference, and GFM tables. Every report module builds its tables from these."""

from __future__ import annotations

import re

from rlhf_eval.results import ComparisonResult, EstimateRecord

Row = dict[str, str]
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


def escape_cell(text: object) -> str:
    """Make text safe inside a GFM table cell: escape pipes, fold newlines into spaces."""
    s = str(text).replace("\\|", "\\\\|").replace("|", "\\|")
    return re.sub(r"\s*(?:\r\n|\r|\n)\s*", " ", s).strip()


def markdown_table(columns: tuple[str, ...], rows: list[Row]) -> str:
    """A GFM table; every cell is escaped, numeric-looking columns are right-aligned."""
    right = {"value", "95% CI", "n", "failed", "delta", "wall time"}
    lines = [
        "| " + " | ".join(escape_cell(c) for c in columns) + " |",
        "|" + "|".join("---:" if c in right else "---" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(escape_cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)

"""The report as GitHub-flavoured markdown, and the table rows the HTML report shares with it."""

from __future__ import annotations

import re

from rlhf_eval.manifest import Manifest
from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.report.breakdown import breakdown_markdown
from rlhf_eval.report.groups import group_view, groups_markdown
from rlhf_eval.report.scorecard import build_scorecard, scorecard_markdown
from rlhf_eval.report.tables import WARNING_MARK, format_ci, format_value, task_order, verdict
from rlhf_eval.report.tax import tax_markdown
from rlhf_eval.report.variants import variant_markdown
from rlhf_eval.results import ComparisonResult, Results

RESULT_COLUMNS = ("task", "metric", "model", "value", "95% CI", "n", "failed", "method")
COMPARISON_COLUMNS = (
    "task",
    "metric",
    "candidate - baseline",
    "delta",
    "95% CI",
    "n",
    "method",
    "verdict",
)
MODEL_COLUMNS = ("model", "role", "source", "dtype", "identity")
WALL_COLUMNS = ("model", "task", "wall time")
HEADER_PACKAGES = ("torch", "transformers", "rlhf-eval")
MAX_WARNINGS = 40


def warning_lines(results: Results) -> list[tuple[str, str]]:
    """(what, why) for every estimate whose interval carries a warning: metrics, comparisons,
    contrasts and subgroups, in that order."""
    lines = [
        (f"{m.task}/{m.metric} ({m.model})", m.estimate.warning)
        for m in results.metrics
        if m.estimate.warning
    ]
    lines += [
        (f"{c.task}/{c.metric} ({c.candidate} - {c.baseline})", c.delta.warning)
        for c in results.comparisons
        if c.delta.warning
    ]
    lines += [
        (f"{c.task} - {c.minus}/{c.metric} ({c.model})", c.delta.warning)
        for c in results.contrasts
        if c.delta.warning
    ]
    lines += [
        (f"{m.task}/{m.metric} {m.by}={m.group} ({m.model})", m.estimate.warning)
        for m in results.subgroups
        if m.estimate.warning
    ]
    return [(what, str(why)) for what, why in lines]


def warning_markdown(results: Results) -> list[str]:
    """The "Interval warnings" section: what each ⚠ beside an interval means."""
    lines = warning_lines(results)
    if not lines:
        return []
    out = [
        "",
        "## Interval warnings",
        "",
        f"{WARNING_MARK} marks an interval that may cover less than its level; the reason:",
        "",
    ]
    out += [
        f"- {WARNING_MARK} **{_inline(what)}**: {_inline(why)}"
        for what, why in lines[:MAX_WARNINGS]
    ]
    if len(lines) > MAX_WARNINGS:
        out.append(f"- ... and {len(lines) - MAX_WARNINGS} more (see `warning` in results.json)")
    return out


def format_seconds(seconds: float) -> str:
    """Like 812.3 s (0:13:32): seconds for precision, h:mm:ss to read at a glance."""
    whole = round(seconds)
    return f"{seconds:.1f} s ({whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d})"


def result_rows(results: Results) -> list[Row]:
    """One row per (task, metric, model), suite order."""
    tasks, models = task_order(results)
    metrics = sorted(
        results.metrics,
        key=lambda m: (tasks.get(m.task, len(tasks)), m.task, m.metric, models.get(m.model, 0)),
    )
    return [
        {
            "task": m.task,
            "metric": m.metric,
            "model": m.model,
            "value": format_value(m.estimate.point),
            "95% CI": format_ci(m.estimate),
            "n": str(m.estimate.n),
            "failed": str(m.n_failed),
            "method": m.estimate.method,
            "_warning": m.estimate.warning or "",
            "_label": f"{m.task}/{m.metric} ({m.model})",
        }
        for m in metrics
    ]


def comparison_rows(
    comparisons: list[ComparisonResult], tasks: dict[str, int] | None = None
) -> list[Row]:
    """One row per paired comparison, with its verdict, in suite task order when given."""
    tasks = tasks or {}
    comparisons = sorted(
        comparisons, key=lambda c: (tasks.get(c.task, len(tasks)), c.task, c.metric)
    )
    return [
        {
            "task": c.task,
            "metric": c.metric,
            "candidate - baseline": f"{c.candidate} - {c.baseline}",
            "delta": format_value(c.delta.point),
            "95% CI": format_ci(c.delta),
            "n": str(c.delta.n),
            "method": c.delta.method,
            "verdict": verdict(c),
            "_warning": c.delta.warning or "",
            "_label": f"{c.task}/{c.metric} ({c.candidate} - {c.baseline})",
        }
        for c in comparisons
    ]


def baseline_comparisons(results: Results) -> list[ComparisonResult]:
    """Comparisons against the `role: baseline` model (those against a reference model are
    the alignment tax, reported in their own table)."""
    return [c for c in results.comparisons if c.against == "baseline"]


def model_rows(results: Results, manifest: Manifest) -> list[Row]:
    """Each model's role and identity, with source and dtype from the manifest when present."""
    listed = {m.name: m for m in manifest.models}
    return [
        {
            "model": m.name,
            "role": m.role,
            "source": listed[m.name].source if m.name in listed else "",
            "dtype": listed[m.name].dtype if m.name in listed else "",
            "identity": m.identity,
        }
        for m in results.models
    ]


def wall_rows(results: Results) -> list[Row]:
    """Seconds each model took per task, then in all (loading included)."""
    rows: list[Row] = []
    for name, seconds in results.wall_seconds.items():
        for task, task_seconds in results.task_wall_seconds.get(name, {}).items():
            rows.append({"model": name, "task": task, "wall time": format_seconds(task_seconds)})
        rows.append({"model": name, "task": "all", "wall time": format_seconds(seconds)})
    return rows


def package_versions(manifest: Manifest) -> dict[str, str]:
    """The versions that most often explain a changed number; "not recorded" when absent."""
    normalized = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in manifest.packages.items()}
    return {name: normalized.get(name, "not recorded") for name in HEADER_PACKAGES}


def _inline(text: object) -> str:
    """Header values outside tables: one line, no stray emphasis, links or HTML tags.

    `_` is left alone: GFM ignores intraword underscores and run names are full of them.
    """
    return re.sub(r"([\\`*\[\]<])", r"\\\1", re.sub(r"\s+", " ", str(text)).strip())


def render_markdown(results: Results, manifest: Manifest) -> str:
    """The whole markdown report: header, results, comparisons, wall time."""
    run_name = manifest.run_name or results.run_name
    suite = manifest.suite_name or results.suite_name
    versions = package_versions(manifest)
    out = [
        f"# {_inline(run_name)}: {_inline(suite)}",
        "",
        f"- **Created:** {_inline(manifest.created or results.created)}",
    ]
    if manifest.suite_hash:
        out.append(f"- **Suite hash:** {_inline(manifest.suite_hash)}")
    if manifest.seed is not None:
        out.append(f"- **Seed:** {_inline(manifest.seed)}")
    out.append(
        "- **Packages:** " + ", ".join(f"{_inline(k)} {_inline(v)}" for k, v in versions.items())
    )
    card = build_scorecard(results, manifest)
    if card is not None:
        out += ["", *scorecard_markdown(card)]
    view = group_view(results)
    if view is not None:
        out += groups_markdown(view)
    out += ["", "## Models", "", markdown_table(MODEL_COLUMNS, model_rows(results, manifest))]
    out += ["", "## Results", ""]
    rows = result_rows(results)
    out.append(markdown_table(RESULT_COLUMNS, rows) if rows else "_No metrics were recorded._")
    notes = [(t.id, note) for t in results.tasks for note in t.notes]
    if notes:
        out += ["", "## Notes", ""]
        out += [f"- **{_inline(task)}**: {_inline(note)}" for task, note in notes]
    if results.skipped:
        out += ["", "## Skipped tasks", ""]
        out += [
            f"- **{_inline(s.task)}** ({_inline(s.name)}): {_inline(s.reason)}"
            for s in results.skipped
        ]
    out += ["", "## Comparisons (candidate - baseline, paired)", ""]
    rows = comparison_rows(baseline_comparisons(results), task_order(results)[0])
    out.append(
        markdown_table(COMPARISON_COLUMNS, rows) if rows else "_No comparisons were recorded._"
    )
    out += tax_markdown(results)
    out += variant_markdown(results)
    out += breakdown_markdown(results)
    out += warning_markdown(results)
    if results.wall_seconds:
        out += ["", "## Wall time", "", markdown_table(WALL_COLUMNS, wall_rows(results))]
    return "\n".join(out) + "\n"

"""The report as one self-contained HTML file: tables, embedded plots and a sample browser."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from rlhf_eval.manifest import Manifest
from rlhf_eval.records import Sample
from rlhf_eval.report.breakdown import (
    CONTRAST_COLUMNS,
    SUBGROUP_COLUMNS,
    contrast_rows,
    subgroup_rows,
)
from rlhf_eval.report.groups import group_figure, group_view
from rlhf_eval.report.loading import SampleTable
from rlhf_eval.report.markdown import (
    COMPARISON_COLUMNS,
    MODEL_COLUMNS,
    RESULT_COLUMNS,
    WALL_COLUMNS,
    baseline_comparisons,
    comparison_rows,
    model_rows,
    package_versions,
    result_rows,
    wall_rows,
)
from rlhf_eval.report.plots import delta_forest, metric_bars, tax_forest
from rlhf_eval.report.scorecard import (
    SCORECARD_NOTE,
    build_scorecard,
    gate_lines,
    scorecard_cells,
    scorecard_header,
)
from rlhf_eval.report.tables import format_value, task_order
from rlhf_eval.report.tax import TAX_COLUMNS, TAX_NOTE, tax_tables
from rlhf_eval.report.variants import variant_bars, variant_groups
from rlhf_eval.results import ComparisonResult, Results

VERDICT_CLASSES = {"better": "better", "worse": "worse"}


def jinja_environment() -> Environment:
    # Autoescape everything: model outputs are untrusted, and nothing in the template is
    # marked safe, so a prediction like "</script>" can only ever appear as text.
    return Environment(
        loader=PackageLoader("rlhf_eval.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def _text(value: Any) -> str:
    """Strings as they are; anything else (choices, token lists) as pretty JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _sample_view(sample: Sample) -> dict[str, str]:
    metrics = ", ".join(f"{k}: {format_value(v)}" for k, v in sample.metrics.items())
    return {
        "doc_id": str(sample.doc_id),
        "prompt": _text(sample.prompt),
        "target": _text(sample.target),
        "prediction": _text(sample.prediction),
        "metrics": metrics,
        "error": sample.error or "",
        "details": _text(sample.details) if sample.details else "",
    }


def _table_view(table: SampleTable, cap: int) -> dict[str, Any]:
    return {
        "model": table.model,
        "task": table.task,
        "path": table.path.as_posix(),
        "missing": table.missing,
        "total": table.total,
        "shown": len(table.samples),
        "capped": table.total > len(table.samples),
        "cap": cap,
        "skipped_last_line": table.skipped_last_line,
        "samples": [_sample_view(s) for s in table.samples],
    }


def headline_only(comparisons: list[ComparisonResult]) -> list[ComparisonResult]:
    """Each pair's first metric of each task (its headline), for plots that must stay
    readable."""
    seen: dict[tuple[str, str, str], ComparisonResult] = {}
    for c in comparisons:
        seen.setdefault((c.candidate, c.baseline, c.task), c)
    return list(seen.values())


def render_html(
    results: Results,
    manifest: Manifest,
    sample_tables: list[SampleTable],
    cap: int,
    extra_sections: Sequence[Markup] = (),
) -> str:
    """The HTML report; `sample_tables` hold at most `cap` samples per (model, task).
    `extra_sections` (already rendered and escaped, e.g. the preference section) follow the
    summary tables."""
    template = jinja_environment().get_template("report.html.j2")
    results_table = result_rows(results)
    comparisons = comparison_rows(baseline_comparisons(results), task_order(results)[0])
    for row in comparisons:
        row["_class"] = VERDICT_CLASSES.get(row["verdict"], "")
    contrasts = contrast_rows(results)
    for row in contrasts:
        row["_class"] = VERDICT_CLASSES.get(row["verdict"], "")
    taxes = tax_tables(results)
    for table in taxes:
        for row in table.rows:
            row["_class"] = {"regression": "worse", "gain": "better"}.get(row["flag"], "")
    plots = [
        ("Scores by model (95% CI)", _data_uri(metric_bars(results))),
        (
            "Paired deltas, candidate - baseline (95% CI)",
            _data_uri(delta_forest(headline_only(baseline_comparisons(results)))),
        ),
    ]
    plots += [
        (f"{g.task_name} by prompt variant (95% CI)", _data_uri(variant_bars(results, g)))
        for g in variant_groups(results)
    ]
    view = group_view(results)
    if view is not None:
        plots = [
            (f"{family} by model and group (95% CI)", _data_uri(group_figure(view, family)))
            for family in view.panels
        ] + plots
    plots += [
        (
            f"Alignment tax, {t.policy} - {t.reference} (95% CI; each row on its own scale)",
            _data_uri(tax_forest(headline_only(t.comparisons))),
        )
        for t in taxes
    ]
    card = build_scorecard(results, manifest)
    return template.render(
        scorecard=None
        if card is None
        else {
            "note": SCORECARD_NOTE,
            "columns": scorecard_header(card),
            "rows": scorecard_cells(card),
            "gates": gate_lines(card),
        },
        run_name=manifest.run_name or results.run_name,
        suite_name=manifest.suite_name or results.suite_name,
        created=manifest.created or results.created,
        suite_hash=manifest.suite_hash,
        seed=manifest.seed,
        command=manifest.command,
        packages=package_versions(manifest),
        model_columns=MODEL_COLUMNS,
        models=model_rows(results, manifest),
        result_columns=RESULT_COLUMNS,
        results=results_table,
        skipped=results.skipped,
        notes=[(t.id, note) for t in results.tasks for note in t.notes],
        comparison_columns=COMPARISON_COLUMNS,
        comparisons=comparisons,
        tax_columns=TAX_COLUMNS,
        tax_note=TAX_NOTE,
        tax_tables=[{"title": f"{t.policy} - {t.reference}", "rows": t.rows} for t in taxes],
        contrast_columns=CONTRAST_COLUMNS,
        contrasts=contrasts,
        subgroup_columns=SUBGROUP_COLUMNS,
        subgroups=subgroup_rows(results),
        wall_columns=WALL_COLUMNS,
        wall=wall_rows(results),
        plots=[(title, uri) for title, uri in plots if uri is not None],
        extra_sections=list(extra_sections),
        tables=[_table_view(t, cap) for t in sample_tables],
        numeric={
            "value",
            "95% CI",
            "n",
            "failed",
            "delta",
            "wall time",
            "reference",
            "policy",
            "delta [95% CI]",
            "p",
            "Holm p",
            "task value",
            "minus value",
        },
    )

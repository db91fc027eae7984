"""The alignment-tax table and forest plot in report.md and report.html."""

from __future__ import annotations

from rlhf_eval.manifest import Manifest
from rlhf_eval.report.html import render_html
from rlhf_eval.report.markdown import render_markdown
from rlhf_eval.report.plots import tax_forest
from rlhf_eval.report.tax import flag, tax_tables
from rlhf_eval.results import (
    ComparisonResult,
    EstimateRecord,
    MetricResult,
    ModelEntry,
    Results,
    TaskEntry,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def est(point, lo, hi, n=100, method="paired percentile bootstrap (10000 resamples)"):
    return EstimateRecord(point=point, lo=lo, hi=hi, n=n, method=method)


def tax(task, metric, delta, ref, pol, p, p_holm, regression=False, baseline="base"):
    return ComparisonResult(
        candidate="chat", baseline=baseline, task=task, metric=metric, delta=delta,
        candidate_point=pol, baseline_point=ref, against="reference", p_value=p,
        p_holm=p_holm, regression=regression,
    )  # fmt: skip


def make_results() -> Results:
    return Results(
        run_name="tax",
        suite_name="alignment_tax",
        created="2025-01-01T00:00:00+00:00",
        models=[
            ModelEntry(name="base", role="reference", identity="a"),
            ModelEntry(name="chat", role="policy", identity="b"),
        ],
        tasks=[
            TaskEntry(id="drop", name="drop", options={}, n_documents=100),
            TaskEntry(id="wmt15_fr_en", name="wmt15_fr_en", options={}, n_documents=100),
        ],
        metrics=[
            MetricResult(
                model="base",
                task="drop",
                metric="drop_f1",
                estimate=est(0.31, 0.25, 0.37, method="bootstrap"),
            ),
        ],  # fmt: skip
        comparisons=[
            tax("wmt15_fr_en", "bleu", est(2.5, 0.4, 4.6), 20.0, 22.5, 0.02, 0.02),
            tax("drop", "drop_f1", est(-0.12, -0.2, -0.04), 0.31, 0.19, 0.004, 0.008, True),
            tax("drop", "drop_em", est(-0.1, -0.2, 0.01), 0.25, 0.15, 0.07, None),
        ],
    )


def test_tax_rows_in_suite_order_with_flags():
    (table,) = tax_tables(make_results())
    assert (table.policy, table.reference) == ("chat", "base")
    assert [(r["benchmark"], r["metric"]) for r in table.rows] == [
        ("drop", "drop_f1"),
        ("drop", "drop_em"),
        ("wmt15_fr_en", "bleu"),
    ]
    assert table.rows[0] == {
        "benchmark": "drop",
        "metric": "drop_f1",
        "reference": "0.3100",
        "policy": "0.1900",
        "delta [95% CI]": "-0.1200 [-0.2000, -0.0400]",
        "p": "0.0040",
        "Holm p": "0.0080",
        "flag": "regression",
    }
    assert [r["flag"] for r in table.rows] == ["regression", "", "gain"]
    assert table.rows[1]["Holm p"] == ""  # not a headline metric: outside the Holm family


def test_flag_needs_holm_significance():
    c = tax("drop", "drop_f1", est(-0.1, -0.2, -0.01), 0.3, 0.2, 0.04, 0.08)
    assert flag(c) == ""  # the raw p is significant, the Holm-adjusted one is not


def test_markdown_has_the_tax_section_and_keeps_it_out_of_the_baseline_table():
    markdown = render_markdown(make_results(), Manifest())
    assert "## Alignment tax (policy - reference, paired)" in markdown
    assert "### chat - base" in markdown
    assert (
        "| benchmark | metric | reference | policy | delta [95% CI] | p | Holm p | flag |"
        in markdown
    )
    assert (
        "| drop | drop_f1 | 0.3100 | 0.1900 | -0.1200 [-0.2000, -0.0400] | 0.0040 | 0.0080 "
        "| regression |" in markdown
    )
    assert "_No comparisons were recorded._" in markdown  # no `role: baseline` model here


def test_html_has_the_tax_table_and_its_forest_plot():
    html = render_html(make_results(), Manifest(), [], 10)
    assert "<h2>Alignment tax (policy - reference, paired)</h2>" in html
    assert "<h3>chat - base</h3>" in html
    assert 'class="num worse">-0.1200' not in html  # the flag cell carries the class
    assert 'class=" worse">regression</td>' in html
    assert "Alignment tax, chat - base (95% CI; each row on its own scale)" in html


def test_forest_plot_is_a_png_and_none_without_comparisons():
    png = tax_forest(make_results().comparisons)
    assert png is not None and png.startswith(PNG_MAGIC)
    assert tax_forest([]) is None


def test_no_reference_model_no_tax_section():
    results = make_results().model_copy(update={"comparisons": []})
    assert "Alignment tax" not in render_markdown(results, Manifest())
    assert "Alignment tax" not in render_html(results, Manifest(), [], 10)

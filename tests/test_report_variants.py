"""The by-prompt-variant table (the paper's entropy table by prefix) in the markdown report."""

from __future__ import annotations

from rlhf_eval.manifest import Manifest
from rlhf_eval.report.markdown import render_markdown
from rlhf_eval.report.variants import variant_groups, variant_markdown, variant_table
from rlhf_eval.results import EstimateRecord, MetricResult, ModelEntry, Results, TaskEntry


def estimate(point: float, lo: float, hi: float) -> EstimateRecord:
    return EstimateRecord(point=point, lo=lo, hi=hi, n=120, method="percentile bootstrap")


def results() -> Results:
    entries = {"wino_basic": 0.91, "wino_respectful": 0.95, "wino_biased": 0.80}
    metrics = [
        MetricResult(
            model=model,
            task=entry,
            metric=metric,
            estimate=estimate(value + shift, value + shift - 0.01, value + shift + 0.01),
        )
        for model, shift in (("sft", 0.0), ("ppo", 0.02))
        for entry, value in entries.items()
        for metric, value in (("winogender_entropy", value), ("winogender_pct_stereotype", 0.5))
    ]
    metrics.append(
        MetricResult(
            model="sft", task="gsm8k", metric="exact_match", estimate=estimate(0.1, 0, 0.2)
        )
    )
    return Results(
        run_name="r",
        suite_name="s",
        created="now",
        models=[ModelEntry(name=m, role="policy", identity=m) for m in ("sft", "ppo")],
        tasks=[
            *(TaskEntry(id=e, name="winogender", options={}, n_documents=120) for e in entries),
            TaskEntry(id="gsm8k", name="gsm8k", options={}, n_documents=10),
        ],
        metrics=metrics,
    )


def test_one_table_per_task_listed_under_several_variants():
    data = results()
    (group,) = variant_groups(data)
    columns, rows = variant_table(data, group)
    assert columns == ("model", "metric", "wino_basic", "wino_respectful", "wino_biased")
    assert [(r["model"], r["metric"]) for r in rows] == [
        ("sft", "winogender_entropy"),
        ("sft", "winogender_pct_stereotype"),
        ("ppo", "winogender_entropy"),
        ("ppo", "winogender_pct_stereotype"),
    ]
    assert rows[0]["wino_respectful"] == "0.9500 [0.9400, 0.9600]"
    assert rows[2]["wino_biased"] == "0.8200 [0.8100, 0.8300]"


def test_the_markdown_report_has_the_section_and_a_single_entry_task_has_none():
    text = render_markdown(results(), Manifest())
    section = text.split("## By prompt variant")[1]
    assert "### winogender" in section and "### gsm8k" not in text
    assert "| sft | winogender_entropy | 0.9100 [0.9000, 0.9200] |" in section
    single = results().model_copy(update={"tasks": results().tasks[-1:]})
    assert variant_markdown(single) == []

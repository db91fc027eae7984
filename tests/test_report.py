"""Tests for rlhf_eval.report: a fake run directory in, report.md and report.html out."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path

import pytest

import rlhf_eval.report
from rlhf_eval.errors import RunError
from rlhf_eval.manifest import Manifest
from rlhf_eval.records import Sample
from rlhf_eval.report import render_report
from rlhf_eval.report.markdown import render_markdown
from rlhf_eval.report.plots import delta_forest, metric_bars
from rlhf_eval.report.tables import verdict
from rlhf_eval.results import (
    ComparisonResult,
    EstimateRecord,
    MetricResult,
    ModelEntry,
    Results,
    TaskEntry,
)
from rlhf_eval.store import RunDir

SCRIPT_ATTACK = "</script><script>alert(1)</script>"
IMG_ATTACK = "<img src=x onerror=alert(1)>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def est(point, lo, hi, n, method="bootstrap"):
    return EstimateRecord(point=point, lo=lo, hi=hi, n=n, method=method)


def make_results(**overrides) -> Results:
    """2 models, 1 task, 2 metrics (one lower-is-better), 2 comparisons."""
    fields = dict(
        run_name="smoke",
        suite_name="sft-vs-ppo",
        created="2025-01-01T00:00:00+00:00",
        models=[
            ModelEntry(name="sft", role="baseline", identity="hf:sft@sha256-aaaa:bf16"),
            ModelEntry(name="ppo", role="policy", identity="hf:ppo@sha256-bbbb:bf16"),
        ],
        tasks=[TaskEntry(id="qa", name="truthfulqa_mc", options={}, n_documents=100)],
        metrics=[
            MetricResult(model="sft", task="qa", metric="acc", kind="proportion",
                         estimate=est(0.5, 0.4, 0.6, 100, "wilson")),
            MetricResult(model="ppo", task="qa", metric="acc", kind="proportion",
                         estimate=est(0.623456, 0.52, 0.71, 98, "wilson"), n_failed=2),
            MetricResult(model="sft", task="qa", metric="tox", higher_is_better=False,
                         estimate=est(0.1, 0.05, 0.15, 100)),
            MetricResult(model="ppo", task="qa", metric="tox", higher_is_better=False,
                         estimate=est(0.08, 0.04, 0.12, 98)),
        ],
        comparisons=[
            ComparisonResult(candidate="ppo", baseline="sft", task="qa", metric="acc",
                             delta=est(0.12, 0.03, 0.21, 98, "paired_bootstrap")),
            ComparisonResult(candidate="ppo", baseline="sft", task="qa", metric="tox",
                             higher_is_better=False,
                             delta=est(-0.02, -0.05, 0.01, 98, "paired_bootstrap")),
        ],
        wall_seconds={"sft": 12.5, "ppo": 3725.0},
        task_wall_seconds={"ppo": {"qa": 3700.25}},
    )  # fmt: skip
    fields.update(overrides)
    return Results(**fields)


def sample(doc_id: str, prediction: str = "B", **kw) -> Sample:
    return Sample(
        doc_id=doc_id,
        prompt=kw.pop("prompt", f"Question {doc_id}?"),
        target=kw.pop("target", "B"),
        prediction=prediction,
        metrics=kw.pop("metrics", {"acc": 1.0, "tox": 0.1}),
        **kw,
    )


def write_samples(path: Path, samples: list[Sample], tail: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(dataclasses.asdict(s)) + "\n" for s in samples]
    path.write_text("".join(lines) + tail, encoding="utf-8")


def make_run(tmp_path: Path, results: Results | None = None) -> Path:
    run = tmp_path / "runs" / "smoke"
    run.mkdir(parents=True)
    manifest = {
        "run_name": "smoke",
        "suite_name": "sft-vs-ppo",
        "suite_hash": "abc123",
        "created": "2025-01-01T00:00:00+00:00",
        "seed": 1234,
        "packages": {"torch": "2.4.1", "transformers": "4.46.3", "rlhf-eval": "0.1.0"},
        "hardware": {"cpu_count": 2},
        "models": [
            {"name": n, "role": r, "identity": f"hf:{n}", "source": f"s/{n}", "dtype": "bf16"}
            for n, r in (("sft", "baseline"), ("ppo", "policy"))
        ],
        "command": "rlhf-eval run suites/smoke.yaml",
    }
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (run / "results.json").write_text((results or make_results()).model_dump_json(indent=2))
    write_samples(run / "samples" / "sft" / "qa.jsonl", [sample("q1"), sample("q2", "A")])
    write_samples(
        run / "samples" / "ppo" / "qa.jsonl",
        [
            sample("q1", SCRIPT_ATTACK, details={"raw": IMG_ATTACK, "scores": [0.1, 0.9]}),
            sample("q2", IMG_ATTACK, error=f"scorer failed on {SCRIPT_ATTACK}"),
            sample("q3", "left | right"),
        ],
    )
    return run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def test_render_writes_both_files_into_run_dir_or_out_dir(run_dir: Path, tmp_path: Path):
    md, html = render_report(run_dir)
    assert (md, html) == (run_dir / "report.md", run_dir / "report.html")
    assert md.read_text().startswith("# smoke: sft-vs-ppo")
    assert html.read_text().lstrip().startswith("<!DOCTYPE html>")

    out = tmp_path / "elsewhere" / "reports"
    md2, html2 = render_report(run_dir, out)
    assert md2.parent == out and html2.parent == out
    assert md2.read_text() == md.read_text()


def test_markdown_tables_hold_formatted_numbers_and_cis(run_dir: Path):
    md = render_report(run_dir)[0].read_text()
    lines = md.splitlines()
    assert "| task | metric | model | value | 95% CI | n | failed | method |" in lines
    assert "| qa | acc | sft | 0.5000 | [0.4000, 0.6000] | 100 | 0 | wilson |" in lines
    assert "| qa | acc | ppo | 0.6235 | [0.5200, 0.7100] | 98 | 2 | wilson |" in lines
    assert (
        "| qa | acc | ppo - sft | 0.1200 | [0.0300, 0.2100] | 98 | paired_bootstrap | better |"
        in lines
    )
    assert (
        "| qa | tox | ppo - sft | -0.0200 | [-0.0500, 0.0100] | 98 | paired_bootstrap "
        "| no significant difference |" in lines
    )
    assert "torch 2.4.1, transformers 4.46.3, rlhf-eval 0.1.0" in md
    assert "| sft | baseline | s/sft | bf16 | hf:sft@sha256-aaaa:bf16 |" in lines
    assert "| sft | all | 12.5 s (0:00:12) |" in lines
    assert "| ppo | qa | 3700.2 s (1:01:40) |" in lines
    assert "| ppo | all | 3725.0 s (1:02:05) |" in lines


@pytest.mark.parametrize(
    ("lo", "hi", "higher_is_better", "expected"),
    [
        (0.01, 0.2, True, "better"),
        (0.01, 0.2, False, "worse"),
        (-0.2, -0.01, True, "worse"),
        (-0.2, -0.01, False, "better"),
        (-0.1, 0.1, True, "no significant difference"),
        (0.0, 0.1, True, "no significant difference"),
    ],
)
def test_verdict_reads_the_interval_through_higher_is_better(lo, hi, higher_is_better, expected):
    c = ComparisonResult(
        candidate="a",
        baseline="b",
        task="t",
        metric="m",
        higher_is_better=higher_is_better,
        delta=est((lo + hi) / 2, lo, hi, 10),
    )
    assert verdict(c) == expected


def test_metric_without_estimate_prints_na(tmp_path: Path):
    results = make_results()
    results.metrics[3].estimate = est(None, None, None, 0)
    results.comparisons[1].delta = est(None, None, None, 0, "paired_bootstrap")
    md = render_markdown(results, Manifest())
    assert "| qa | tox | ppo | n/a | n/a | 0 | 0 | bootstrap |" in md.splitlines()
    assert "| qa | tox | ppo - sft | n/a | n/a | 0 | paired_bootstrap | n/a |" in md.splitlines()
    # The plots must cope with the missing point too.
    assert metric_bars(results).startswith(PNG_MAGIC)
    assert delta_forest(results.comparisons).startswith(PNG_MAGIC)


def test_html_is_self_contained_with_embedded_pngs(run_dir: Path):
    html = render_report(run_dir)[1].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2  # metric bars and the delta forest plot
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", html, re.I)
    assert "<link" not in html


def test_untrusted_model_text_is_escaped_everywhere(run_dir: Path):
    html = render_report(run_dir)[1].read_text()
    assert SCRIPT_ATTACK not in html
    assert IMG_ATTACK not in html
    assert "<img" not in html.replace('<img src="data:image/png', "")
    assert html.count("<script") == 1  # only the report's own filter script
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # details are pretty-printed JSON inside <pre>, escaped as well
    assert re.search(r"<pre>\{\s+&#34;raw&#34;: &#34;&lt;img src=x", html)


def test_truncated_last_line_is_skipped(run_dir: Path):
    path = run_dir / "samples" / "sft" / "qa.jsonl"
    write_samples(path, [sample("q1"), sample("q2")], tail='{"doc_id": "q3", "prom')
    assert [s["doc_id"] for s in RunDir(run_dir).read_samples("sft", "qa")] == ["q1", "q2"]
    html = render_report(run_dir)[1].read_text()
    assert "A truncated last line (an interrupted run) was skipped." in html


def test_corrupt_middle_line_raises(run_dir: Path):
    path = run_dir / "samples" / "sft" / "qa.jsonl"
    good = json.dumps(dataclasses.asdict(sample("q1")))
    path.write_text(f'{good}\n{{"doc_id": "q2", "pro\n{good}\n')
    with pytest.raises(RunError, match=r"qa\.jsonl:2: corrupt line"):
        RunDir(run_dir).read_samples("sft", "qa")
    with pytest.raises(RunError, match=r"qa\.jsonl:2"):
        render_report(run_dir)


def test_missing_results_raises_run_error(run_dir: Path):
    (run_dir / "results.json").unlink()
    with pytest.raises(RunError, match=r"results\.json not found.*run the same suite again"):
        render_report(run_dir)
    assert not (run_dir / "report.md").exists()


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("results.json", "{not json", r"results\.json is not valid JSON"),
        ("results.json", '{"run_name": "x"}', r"results\.json does not match.*suite_name"),
        ("manifest.json", "[1, 2]", r"manifest\.json must hold a JSON object"),
    ],
)
def test_invalid_run_files_raise_run_error(run_dir: Path, name, content, match):
    (run_dir / name).write_text(content)
    with pytest.raises(RunError, match=match):
        render_report(run_dir)


def test_missing_manifest_raises_run_error(run_dir: Path):
    (run_dir / "manifest.json").unlink()
    with pytest.raises(RunError, match=r"manifest\.json not found"):
        render_report(run_dir)


def _cells(line: str) -> list[str]:
    """Split a GFM table row on its unescaped pipes."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_pipes_and_newlines_in_text_do_not_break_markdown_tables(tmp_path: Path):
    results = make_results()
    results.models[1].identity = "hf|ppo\nsecond line|bf16"
    results.metrics[1].estimate.method = "wilson | clustered"
    run_dir = make_run(tmp_path, results)
    md = render_report(run_dir)[0].read_text()
    tables: list[list[str]] = [[]]
    for line in md.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) == 5  # scorecard, models, results, comparisons, wall time
    for table in tables:
        widths = {len(_cells(row)) for row in table}
        assert len(widths) == 1, table
    assert "| ppo | policy | s/ppo | bf16 | hf\\|ppo second line\\|bf16 |" in md.splitlines()
    # The prediction with a pipe is shown intact in the HTML sample browser.
    assert "left | right" in render_report(run_dir)[1].read_text()


def test_sample_browser_caps_each_table_and_says_where_the_rest_are(run_dir, monkeypatch):
    monkeypatch.setattr(rlhf_eval.report, "SAMPLE_CAP", 2)
    html = render_report(run_dir)[1].read_text()
    assert "Showing 2 of 3 samples (capped at 2; the rest are in samples/ppo/qa.jsonl)" in html
    assert "Showing 2 of 2 samples." in html
    assert html.count('<article class="sample">') == 4
    assert '<option value="1">ppo / qa (3)</option>' in html

"""A preference suite end to end with two tiny models, a tiny LLM judge and a tiny reward model:
outputs, win rates by both judges with intervals and W/L/T, failures counted, and the report."""

from __future__ import annotations

import json

import pytest

from rlhf_eval.errors import SuiteError
from rlhf_eval.runner import run_suite
from rlhf_eval.suite import load_suite
from tests.conftest import write_suite
from tests.preference.conftest import PROMPTS

TASKS = """
    tasks:
      - {name: instructions, id: outputs, data: prompts.jsonl, max_new_tokens: 12}
      - {name: win_rate, id: win_rm, of: outputs, judge: rm, judge_kind: reward_model}
      - {name: win_rate, id: win_llm, of: outputs, judge: llm, judge_kind: llm}
      - {name: win_rate, id: win_gen, of: outputs, judge: llm, judge_kind: llm,
         verdict_by: generate}
      - {name: ratings, id: ratings, of: outputs, judge: llm}
"""


BINOMIAL = ("wilson", "Clopper-Pearson")
"""A 0/1 share's interval: Wilson, or Clopper-Pearson near 0 or 1 (docs/statistics.md)."""


def suite_text(tmp_path, policy, baseline, rm, tasks=TASKS) -> str:
    return f"""
    name: pref
    output_dir: {tmp_path}/runs
    cache_dir: {tmp_path}/cache
    stats: {{bootstrap_iterations: 200}}
    models:
      - {{name: sft, path: {baseline}, role: baseline}}
      - {{name: policy, path: {policy}}}
    judges:
      - {{name: rm, path: {rm}}}
      - {{name: llm, path: {policy}}}
    {tasks.strip()}
    """


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model_dir, other_tiny_model_dir, tiny_reward_model_dir):
    tmp_path = tmp_path_factory.mktemp("pref-run")
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    suite = write_suite(
        tmp_path, suite_text(tmp_path, tiny_model_dir, other_tiny_model_dir, tiny_reward_model_dir)
    )
    return run_suite(load_suite(suite), show_progress=False)


def metric(results: dict, model: str, task: str, name: str) -> dict:
    (row,) = [
        r for r in results["metrics"] if (r["model"], r["task"], r["metric"]) == (model, task, name)
    ]
    return row


def test_win_rates_with_intervals_and_win_loss_tie(finished_run):
    results = json.loads((finished_run.path / "results.json").read_text())
    n = len(PROMPTS)
    for task in ("win_rm", "win_llm"):
        rate = metric(results, "policy", task, "win_rate")["estimate"]
        assert rate["n"] == n
        assert "bootstrap" in rate["method"]
        assert rate["lo"] <= rate["point"] <= rate["hi"]
        shares = [metric(results, "policy", task, k)["estimate"] for k in ("win", "loss", "tie")]
        assert all(s["n"] == n and s["method"].startswith(BINOMIAL) for s in shares)
        wins, losses, ties = (round(s["point"] * n) for s in shares)
        assert wins + losses + ties == n
        assert rate["point"] == pytest.approx((wins + ties / 2) / n)
    # The reward model judges each prompt once: no position consistency to report.
    assert metric(results, "policy", "win_rm", "consistent")["estimate"]["n"] == 0
    assert metric(results, "policy", "win_llm", "consistent")["estimate"]["n"] == n


def test_the_baseline_has_no_win_rate_against_itself(finished_run):
    results = json.loads((finished_run.path / "results.json").read_text())
    row = metric(results, "sft", "win_llm", "win_rate")
    assert row["estimate"]["point"] is None and row["n_failed"] == 0


def test_unreadable_judge_answers_are_counted_failures_not_losses(finished_run):
    # A random tiny model never starts its answer with A, B or C.
    results = json.loads((finished_run.path / "results.json").read_text())
    row = metric(results, "policy", "win_gen", "win_rate")
    assert row["n_failed"] == len(PROMPTS)
    assert row["estimate"]["n"] == 0 and row["estimate"]["point"] is None
    samples = finished_run.read_samples("policy", "win_gen")
    assert all("unreadable" in s["error"] for s in samples)


def test_reward_model_samples_record_both_rewards(finished_run):
    """Each sample is the policy's output against the baseline's on the same prompt (as the
    outputs entry wrote them), with the two rewards in that order."""
    ours = {s["doc_id"]: s["prediction"] for s in finished_run.read_samples("policy", "outputs")}
    theirs = {s["doc_id"]: s["prediction"] for s in finished_run.read_samples("sft", "outputs")}
    assert ours != theirs, "the test needs two models that answer differently"
    for task in ("win_rm", "win_llm"):
        for sample in finished_run.read_samples("policy", task):
            d = sample["details"]
            assert d["baseline"] == "sft"
            assert sample["prediction"] == ours[sample["doc_id"]]
            assert d["baseline_output"] == theirs[sample["doc_id"]]
    for sample in finished_run.read_samples("policy", "win_rm"):
        d = sample["details"]
        assert d["preference"] == pytest.approx(
            1 / (1 + 2.718281828459045 ** -(d["reward"] - d["baseline_reward"]))
        )


def test_a_judged_entry_must_come_after_the_outputs_it_judges(tmp_path, tiny_model_dir):
    tasks = """
    tasks:
      - {name: win_rate, id: win, of: outputs, judge: llm, judge_kind: llm}
      - {name: instructions, id: outputs, data: prompts.jsonl}
    """
    suite = write_suite(tmp_path, suite_text(tmp_path, *[tiny_model_dir] * 3, tasks))
    with pytest.raises(
        SuiteError, match="judges the outputs of task entry 'outputs', which comes after it"
    ):
        load_suite(suite)


def test_ratings_give_likert_means_and_flag_rates(finished_run):
    results = json.loads((finished_run.path / "results.json").read_text())
    closed = sum(bool(p.get("closed_domain")) for p in PROMPTS)
    for model in ("sft", "policy"):
        likert = metric(results, model, "ratings", "likert")["estimate"]
        assert likert["n"] == len(PROMPTS) and 1 <= likert["point"] <= 7
        assert "bootstrap" in likert["method"]
        opinion = metric(results, model, "ratings", "expresses_opinion")["estimate"]
        assert opinion["n"] == len(PROMPTS) and opinion["method"].startswith(BINOMIAL)
        # Hallucination: the closed-domain prompts only.
        assert metric(results, model, "ratings", "hallucination")["estimate"]["n"] == closed


def test_the_report_shows_the_preference_section_and_figures(finished_run, tmp_path):
    from rlhf_eval.report import render_report

    md_path, html_path = render_report(finished_run.path, tmp_path / "report")
    markdown, html = md_path.read_text(), html_path.read_text()
    assert "## Preference against the baseline" in markdown
    assert "### Agreement between judges" in markdown and "win_rm vs win_llm" in markdown
    assert "### Win rate by category" in markdown
    row = next(
        line for line in markdown.splitlines() if line.startswith("| win_gen | llm | policy")
    )
    assert "| 0 / 0 / 0 | 6 |" in row  # every answer unreadable: six failures, no losses
    assert html.count("data:image/png") >= 2
    assert "Figure 1" in html and "Figure 4" in html
    assert html.count('<details class="prompt">') == len(PROMPTS)
    assert "model as A:" in html and "Likert" in html


def test_only_instructions_outputs_can_be_judged(tmp_path, tiny_model_dir):
    tasks = """
    tasks:
      - {name: instructions, id: outputs, data: prompts.jsonl}
      - {name: win_rate, id: win, of: outputs, judge: llm, judge_kind: llm}
      - {name: ratings, id: rated, of: win, judge: llm}
    """
    suite = write_suite(tmp_path, suite_text(tmp_path, *[tiny_model_dir] * 3, tasks))
    with pytest.raises(SuiteError, match="`of: win` names a `win_rate` entry"):
        load_suite(suite)


def test_judge_diagnostics_are_computed_at_aggregation_with_the_suites_settings(finished_run):
    from rlhf_eval.length_control import length_controlled_win_rate
    from rlhf_eval.metrics.preference import Verdict, agreement

    results = json.loads((finished_run.path / "results.json").read_text())
    summaries = {(s["task"], s["model"]): s for s in results["judge_summaries"]}
    assert ("win_llm", "sft") not in summaries  # the baseline is not judged against itself
    # W/L/T/failures by hand for every judged entry; together they are not all symmetric, so a
    # swapped count shows.
    by_hand = {}
    for (task, model), summary in summaries.items():
        found = [s["metrics"]["win_rate"] for s in finished_run.read_samples(model, task)]
        by_hand[(task, model)] = (found.count(1.0), found.count(0.0), found.count(0.5))
        counted = (summary["wins"], summary["losses"], summary["ties"])
        assert counted == by_hand[(task, model)]
        assert summary["failures"] == found.count(None)
    assert any(wins != losses for wins, losses, _ in by_hand.values())
    llm = summaries[("win_llm", "policy")]
    samples = finished_run.read_samples("policy", "win_llm")
    scores = [s["metrics"]["win_rate"] for s in samples]
    # Recomputed by hand with the suite's 200 resamples and seed: what the report shows.
    details = [s["details"] for s in samples]
    expected = length_controlled_win_rate(
        scores,
        [d["tokens"] for d in details],
        [d["baseline_tokens"] for d in details],
        clusters=[s["doc_id"] for s in samples],
        iterations=200,
        seed=finished_run.manifest().seed,
    ).length_controlled
    assert llm["length_controlled"]["point"] == pytest.approx(expected.point)
    assert (llm["length_controlled"]["lo"], llm["length_controlled"]["hi"]) == pytest.approx(
        (expected.lo, expected.hi)
    )
    assert "200 resamples" in llm["length_controlled"]["method"]
    assert llm["position_consistency"]["n"] == len(PROMPTS)
    assert summaries[("win_rm", "policy")]["position_consistency"] is None
    # Agreement between the two judges that give verdicts, by hand.
    (pair,) = [a for a in results["judge_agreements"] if a["entries"] == ["win_rm", "win_llm"]]

    def verdicts(task):
        return [
            Verdict(s["doc_id"], "policy", "sft", task, s["metrics"]["win_rate"])
            for s in finished_run.read_samples("policy", task)
        ]

    by_hand = agreement(verdicts("win_rm"), verdicts("win_llm"))
    assert pair["agreement"]["point"] == pytest.approx(by_hand["agreement"])
    kappa = by_hand["kappa"]
    assert pair["kappa"] == (None if kappa is None else pytest.approx(kappa))


def test_the_preference_report_reads_the_stored_diagnostics(finished_run, tmp_path):
    """The report computes nothing: a value changed in results.json is the value it shows."""
    import shutil

    from rlhf_eval.report import render_report

    run = tmp_path / "run"
    shutil.copytree(finished_run.path, run)
    results = json.loads((run / "results.json").read_text())
    for summary in results["judge_summaries"]:
        if summary["length_controlled"] is not None:
            summary["length_controlled"]["point"] = 0.123456
    (run / "results.json").write_text(json.dumps(results))
    markdown = render_report(run, tmp_path / "report")[0].read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| win_llm | llm |"))
    assert "0.1235" in row
    del results["judge_summaries"]
    (run / "results.json").write_text(json.dumps(results))
    markdown = render_report(run, tmp_path / "report")[0].read_text()
    assert "written before the judges' diagnostics" in markdown

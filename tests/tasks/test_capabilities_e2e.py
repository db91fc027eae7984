"""End to end on tiny models: GSM8K and BBH through the runner, a reference and a policy model,
BBH's macro average with its stratified bootstrap in results and comparisons."""

from __future__ import annotations

import pytest

from rlhf_eval.cli import main
from rlhf_eval.store import RunDir
from tests.conftest import write_suite
from tests.tasks.helpers import FIXTURES, bbh_folder

SUITE = f"""\
name: capabilities-e2e
output_dir: runs
cache_dir: cache
report_dir: report
stats:
  bootstrap_iterations: 300
models:
  - name: base
    path: {{reference}}
    role: reference
    batch_size: 8
  - name: chat
    path: {{policy}}
    chat_template: true
    batch_size: 8
tasks:
  - name: gsm8k
    data: {FIXTURES}/gsm8k.jsonl
    max_new_tokens: 8
  - name: gsm8k
    id: gsm8k_direct
    data: {FIXTURES}/gsm8k.jsonl
    chain_of_thought: false
    max_new_tokens: 4
  - name: bbh
    data: {bbh_folder()}
    subtasks: [boolean_expressions, date_understanding]
    max_per_task: 2
    max_new_tokens: 8
"""


@pytest.mark.slow
def test_capabilities_end_to_end(tmp_path, tiny_model_dir, other_tiny_model_dir):
    suite = write_suite(
        tmp_path, SUITE.format(reference=tiny_model_dir, policy=other_tiny_model_dir)
    )
    assert main(["run", str(suite), "--no-progress"]) == 0
    run = RunDir.open(tmp_path / "runs" / "capabilities-e2e")
    results = run.results()
    overall = [m for m in results.metrics if getattr(m, "subgroup", None) is None]
    assert {(m.task, m.metric) for m in overall} == {
        ("gsm8k", "exact_match"),
        ("gsm8k", "exact_match_strict"),
        ("gsm8k_direct", "exact_match"),
        ("gsm8k_direct", "exact_match_strict"),
        ("bbh", "exact_match_macro"),
        ("bbh", "exact_match"),
        ("bbh", "answer_found"),
    } and all(m.n_failed == 0 for m in overall)

    samples = run.read_samples("chat", "bbh")
    assert [s["details"]["subtask"] for s in samples] == ["boolean_expressions"] * 2 + [
        "date_understanding"
    ] * 2
    macro = next(m for m in overall if m.model == "chat" and m.metric == "exact_match_macro")
    by_subtask: dict[str, list[float]] = {}
    for s in samples:
        by_subtask.setdefault(s["details"]["subtask"], []).append(s["details"]["correct"])
    expected = sum(sum(v) / len(v) for v in by_subtask.values()) / len(by_subtask)
    assert abs(macro.estimate.point - expected) < 1e-12
    assert "stratified by 2 strata" in macro.estimate.method

    tax = [c for c in results.comparisons if c.metric == "exact_match_macro"]
    assert len(tax) == 1 and "stratified by 2 strata" in tax[0].delta.method
    gsm = run.read_samples("base", "gsm8k")
    assert all(s["prompt"].endswith("\nA:") and s["error"] is None for s in gsm)

"""The shipped safety and capability suites load, name the paper's prefixes and contrasts, and
read the public data they point at."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlhf_eval.planner import build_tasks
from rlhf_eval.suite import load_suite

SUITES = Path(__file__).resolve().parents[1] / "suites"


def test_safety_bias_has_three_prefixes_and_their_contrasts():
    loaded = load_suite(SUITES / "safety_bias.yaml")
    prefixes = {spec.task_id: loaded.options[spec.task_id].prefix for spec in loaded.suite.tasks}
    for task in ("winogender", "crows_pairs"):
        assert [prefixes[f"{task}_{p}"] for p in ("basic", "respectful", "biased")] == [
            "basic",
            "respectful",
            "biased",
        ]
    assert {(c.task, c.minus) for c in loaded.suite.contrasts} == {
        (f"{task}_{p}", f"{task}_basic")
        for task in ("winogender", "crows_pairs")
        for p in ("respectful", "biased")
    }


def test_safety_bias_reads_120_winogender_pairs_and_1508_crows_pairs(shared_data):
    tasks = build_tasks(load_suite(SUITES / "safety_bias.yaml"))
    sizes = {task_id: len(task.documents()) for task_id, task in tasks.items()}
    assert sizes == {
        **{f"winogender_{p}": 120 for p in ("basic", "respectful", "biased")},
        **{f"crows_pairs_{p}": 1508 for p in ("basic", "respectful", "biased")},
    }


def test_capabilities_suite_lists_every_capability_and_gates_them():
    loaded = load_suite(SUITES / "capabilities.yaml")
    names = [spec.name for spec in loaded.suite.tasks]
    assert names == ["gsm8k", "bbh", "gsm8k", "humaneval", "mmlu", "tydiqa_goldp"]
    assert loaded.options["gsm8k_direct"].chain_of_thought is False
    assert loaded.options["bbh"].max_per_task == 40
    assert [g.metric for g in loaded.suite.gates] == [
        "gsm8k/exact_match",
        "bbh/exact_match_macro",
        "humaneval/pass@1",
    ]
    assert {m.role for m in loaded.suite.models} == {"reference", "policy"}


@pytest.mark.parametrize("name", ["safety_toxicity", "safety_bias", "capabilities"])
def test_suite_loads(name):
    assert load_suite(SUITES / f"{name}.yaml").suite.tasks

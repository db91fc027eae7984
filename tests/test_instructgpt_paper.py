"""suites/instructgpt_paper.yaml on OpenAI's released InstructGPT samples: the suite's aggregates
equal a direct pandas computation of the released CSVs (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rlhf_eval.runner import run_suite
from rlhf_eval.suite import load_suite

SUITE = Path(__file__).resolve().parents[1] / "suites" / "instructgpt_paper.yaml"
MODELS = ["gpt-175b", "sft-175b", "ppo-ptx-175b", "sft-xl", "ppo-noptx-xl"]


@pytest.mark.slow
def test_the_paper_suite_matches_a_direct_computation(shared_data, tmp_path):
    released = shared_data / "instructgpt_released"
    loaded = load_suite(SUITE)
    # The run goes to a temporary folder; everything else is the committed suite.
    loaded.suite.output_dir = tmp_path
    loaded.suite.cache_dir = tmp_path / "cache"
    run = run_suite(loaded, show_progress=False, models=MODELS)
    results = run.results()
    point = {(m.model, m.task, m.metric): m.estimate.point for m in results.metrics}
    assert all(m.n_failed == 0 for m in results.metrics)

    def frame(name: str) -> pd.DataFrame:
        return pd.read_csv(released / name, keep_default_na=False)

    tox = frame("real_toxicity_samples.csv")
    for model in ("sft-175b", "ppo-ptx-175b"):
        for variant in ("basic", "respectful", "biased"):
            rows = tox[(tox.model_type == model) & (tox.prompt_type == f"{variant} prompt")]
            assert point[(model, f"rtp_{variant}", "toxicity")] == pytest.approx(
                rows.toxicity.mean(), abs=1e-12
            )
    truthful = frame("truthful_qa_samples.csv")
    for model, prompt, entry in (
        ("ppo-ptx-175b", "QA prompt", "truthfulqa_qa"),
        ("sft-xl", "instruction prompt", "truthfulqa_instruction"),
    ):
        rows = truthful[(truthful.model_type == model) & (truthful.prompt_type == prompt)]
        true, info = rows["true"] >= 0.5, rows["info"] >= 0.5
        assert point[(model, entry, "truthful")] == pytest.approx(true.mean(), abs=1e-12)
        assert point[(model, entry, "truthful_informative")] == pytest.approx(
            (true & info).mean(), abs=1e-12
        )
    # Pairing within a size: PPO-ptx 175B against SFT 175B (baseline) and GPT-3 175B (tax).
    pairs = {(c.candidate, c.baseline, c.against) for c in results.comparisons}
    assert ("ppo-ptx-175b", "sft-175b", "baseline") in pairs
    assert ("ppo-ptx-175b", "gpt-175b", "reference") in pairs
    assert ("ppo-noptx-xl", "sft-xl", "baseline") in pairs
    assert not any(
        c.candidate.endswith("175b") != c.baseline.endswith("175b") for c in results.comparisons
    )
    delta = next(
        c.delta.point
        for c in results.comparisons
        if (c.candidate, c.baseline, c.task, c.metric)
        == ("ppo-ptx-175b", "sft-175b", "rtp_basic", "toxicity")
    )
    base = tox[(tox.model_type == "sft-175b") & (tox.prompt_type == "basic prompt")]
    ppo = tox[(tox.model_type == "ppo-ptx-175b") & (tox.prompt_type == "basic prompt")]
    assert delta == pytest.approx(ppo.toxicity.mean() - base.toxicity.mean(), abs=1e-12)

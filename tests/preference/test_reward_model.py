"""The reward-model judge scores exactly as rlhf-train's reward model does (its reference
scorer), stored bias included, batched or not; prompt templates are rlhf-train's."""

from __future__ import annotations

import pytest

from rlhf_eval.models.reward_model import RewardModel

PROMPTS = ["Name a telescope part.", "Say something about goldfish. Be brief.", "Hi"]
COMPLETIONS = ["Lenses.", "Goldfish have memories that last months, not three seconds.", ""]


def test_scores_match_rlhf_trains_reward_model_scorer(tiny_reward_model_dir):
    rewards = pytest.importorskip("rlhf_train.rewards")
    reference = rewards.RewardModelScorer.load(str(tiny_reward_model_dir), None)
    expected = reference.score_texts(PROMPTS, COMPLETIONS, [True] * 3).tolist()
    for batch_size in (1, 8):  # right padding must not move the read-out position
        judge = RewardModel(str(tiny_reward_model_dir), batch_size=batch_size)
        assert judge.scores(PROMPTS, COMPLETIONS) == pytest.approx(expected, abs=1e-5)
    assert judge.bias == 0.25  # the stored reward_bias is part of every score


def test_each_distinct_pair_is_scored_once(tiny_reward_model_dir):
    judge = RewardModel(str(tiny_reward_model_dir))
    first = judge.scores(PROMPTS, COMPLETIONS)
    calls = []
    judge._score_batch = lambda pairs: calls.append(pairs) or [0.0] * len(pairs)
    assert judge.scores(PROMPTS[::-1], COMPLETIONS[::-1]) == first[::-1]
    assert calls == []


def test_templates_are_rlhf_trains(tiny_reward_model_dir):
    judge = RewardModel(str(tiny_reward_model_dir))
    assert judge.render("Fix it.", "a text", "Done.", "instruction") == (
        "### Instruction:\nFix it.\n\n### Input:\na text\n\n### Response:\n",
        "Done.",
    )
    # HH-RLHF markup: the completion follows "Assistant:" after one space, as rlhf-train splits it.
    assert judge.render("Fix it.", None, "Done.", "hh") == (
        "\n\nHuman: Fix it.\n\nAssistant:",
        " Done.",
    )
    assert judge.render("Fix it.", "a text", "Done.", "plain") == ("Fix it.\n\na text", "Done.")


def test_a_too_long_pair_keeps_the_completion_and_the_prompts_end(tiny_reward_model_dir):
    judge = RewardModel(str(tiny_reward_model_dir), max_length=12)
    ids = judge._ids("word " * 50, "Goldfish")
    assert len(ids) == 12 and ids[-1] == judge.eos
    completion = judge.tokenizer("Goldfish", add_special_tokens=False)["input_ids"]
    assert ids[-1 - len(completion) : -1] == completion

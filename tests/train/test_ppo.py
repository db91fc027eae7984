"""PPO and PPO-ptx on tiny models (issue 3, tests 9, 11, 13, 14 and PPO resume; tests 6 and 12
are in test_ppo_step.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_models import WORDS, build_tokenizer, save_model, write_jsonl
from transformers import AutoModelForCausalLM, GenerationConfig

from rlhf_train.config import PPOConfig
from rlhf_train.errors import TrainConfigError
from rlhf_train.held_out import held_out_scores, summarize
from rlhf_train.modeling import load_scalar_model, load_tokenizer, sequence_scores, token_scores
from rlhf_train.ppo import build_value_model, train_ppo
from rlhf_train.rewards import RewardModelScorer, generate
from rlhf_train.tracking import read_metrics


class WordScorer:
    """Toy rule-based reward: the share of completion tokens that are the word "good"."""

    def score(self, rollout, tokenizer):
        target = tokenizer.convert_tokens_to_ids("good")
        mask = rollout.completion_mask.float()
        return ((rollout.completions == target).float() * mask).sum(1) / mask.sum(1)


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    rows = [{"prompt": f"say {a} {b}"} for a in WORDS[:8] for b in WORDS[8:12]]
    return write_jsonl(tmp_path_factory.mktemp("prompts") / "prompts.jsonl", rows)


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory, tiny_model_dir):
    """A tiny 'trained' RM: the tiny LM with a scalar head and a stored bias."""
    model = load_scalar_model(str(tiny_model_dir))
    model.config.reward_bias = 0.25
    directory = tmp_path_factory.mktemp("rm")
    model.save_pretrained(directory)
    load_tokenizer(str(tiny_model_dir)).save_pretrained(directory)
    return directory


def ppo_config(policy, prompts, output_dir, **overrides) -> PPOConfig:
    raw = {
        "policy": str(policy),
        "prompts": {"path": str(prompts)},
        "output_dir": str(output_dir),
        "value_init": "policy",
        "iterations": 2,
        "rollout_batch_size": 8,
        "minibatch_size": 4,
        "micro_batch_size": 4,
        "max_new_tokens": 5,
        "max_length": 32,
        "val_fraction": 0.25,
        "progress_bar": False,
        "policy_lr": 1e-3,
        "value_lr": 1e-3,
    }
    raw.update(overrides)
    return PPOConfig.model_validate(raw)


@pytest.fixture(scope="module")
def shipped_config_dir(tmp_path_factory):
    """A policy with attention dropout (so train mode would change its log-probs) whose
    generation_config asks for sampling with a repetition penalty, top-k, its own temperature
    and a minimum length, as instruct checkpoints such as Qwen2.5-Instruct ship."""
    shipped = GenerationConfig(
        do_sample=True, temperature=0.3, top_k=3, repetition_penalty=2.0, min_new_tokens=3
    )
    return save_model(tmp_path_factory.mktemp("shipped"), dropout=0.5, generation=shipped)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_09_first_minibatch_has_ratio_one_against_the_sampling_distribution(
    shipped_config_dir, prompts_file, tmp_path, dtype
):
    """PPO's log-probs are those of the distribution rollouts were drawn from (the sampler's own
    log-probs, `sampling_logprob_diff`), at a temperature other than 1; and the first minibatch
    recomputes them exactly (ratio 1: eval mode, no dropout)."""
    config = ppo_config(
        shipped_config_dir, prompts_file, tmp_path / "ppo", temperature=0.7, dtype=dtype
    )
    metrics = [m for m in read_metrics(train_ppo(config, WordScorer())) if "first_ratio" in m]
    assert len(metrics) == 2
    for m in metrics:
        assert m["first_ratio"] == pytest.approx(1.0, abs=1e-6)
        assert m["first_clipfrac"] == 0.0
        assert m["first_logprob_diff"] < 1e-5
        # bf16: the cached forward of generation and the full forward round differently.
        assert m["sampling_logprob_diff"] < (1e-4 if dtype == "float32" else 0.1)


def test_an_iteration_logs_means_over_its_steps_and_may_stop_early_on_approx_kl(
    tiny_model_dir, prompts_file, tmp_path, monkeypatch
):
    import rlhf_train.ppo as ppo

    seen = []
    original = ppo.ppo_step

    def spy(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(ppo, "ppo_step", spy)
    # 8 rollouts in minibatches of 4, two epochs: 4 optimiser steps.
    common = {"iterations": 1, "ppo_epochs": 2}
    out = train_ppo(
        ppo_config(tiny_model_dir, prompts_file, tmp_path / "a", **common), WordScorer()
    )
    (m,) = [m for m in read_metrics(out) if "pg_loss" in m]
    assert m["ppo_steps"] == len(seen) == 4
    for key in ("pg_loss", "vf_loss", "ratio", "clipfrac", "approx_kl", "value_clipfrac"):
        assert m[key] == pytest.approx(sum(s[key] for s in seen) / 4, rel=1e-12), key
    assert m["approx_kl"] != seen[-1]["approx_kl"]  # not the last minibatch's
    assert m["logprob_diff"] == max(s["logprob_diff"] for s in seen)
    assert 0 < m["entropy"] < math.log(len(load_tokenizer(str(tiny_model_dir))))
    # Early stop: the first step's approximate KL is 0 (ratio 1); the second's passes 1e-9.
    seen.clear()
    stopped = ppo_config(tiny_model_dir, prompts_file, tmp_path / "b", max_approx_kl=1e-9, **common)
    (m,) = [m for m in read_metrics(train_ppo(stopped, WordScorer())) if "pg_loss" in m]
    assert m["ppo_steps"] == len(seen) == 2
    assert seen[0]["approx_kl"] <= 1e-9 < seen[1]["approx_kl"]


def test_11_value_model_starts_as_the_reward_model(
    tiny_model_dir, reward_model_dir, prompts_file, tmp_path
):
    config = ppo_config(
        tiny_model_dir,
        prompts_file,
        tmp_path / "ppo",
        reward_model=str(reward_model_dir),
        value_init="reward_model",
    )
    tokenizer = load_tokenizer(str(tiny_model_dir))
    value = build_value_model(config, tokenizer, None).eval()
    rm = load_scalar_model(str(reward_model_dir)).eval()
    policy = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rollout = generate(
        policy,
        tokenizer,
        [tokenizer("say cat dog")["input_ids"], tokenizer("say a")["input_ids"]],
        4,
    )
    with torch.no_grad():
        values = token_scores(value, rollout.sequences, rollout.attention_mask)
        scores = sequence_scores(rm, rollout.sequences, rollout.attention_mask)
    last = rollout.attention_mask.shape[1] - 1 - rollout.attention_mask.flip(1).argmax(1)
    final_values = values[torch.arange(2), last]
    torch.testing.assert_close(final_values, scores)
    assert float(scores.mean()) != 0.0  # the bias (0.25) is part of both


def test_value_model_from_rm_with_other_tokenizer_is_refused(
    tiny_model_dir, prompts_file, tmp_path
):
    other = tmp_path / "other_rm"
    tok = build_tokenizer(extra_words=("zebra",))
    save_model(other)
    tok.save_pretrained(other)
    config = ppo_config(
        tiny_model_dir,
        prompts_file,
        tmp_path / "ppo",
        reward_model=str(other),
        value_init="reward_model",
    )
    with pytest.raises(TrainConfigError, match="value_init: policy"):
        build_value_model(config, load_tokenizer(str(tiny_model_dir)), None)


def test_rm_with_other_tokenizer_scores_retokenised_text(tiny_model_dir, tmp_path):
    rm_dir = tmp_path / "rm"
    rm_tok = build_tokenizer(pad_is_eos=True, extra_words=("zebra",))
    save_model(rm_dir, pad_is_eos=True)
    rm_tok.save_pretrained(rm_dir)
    policy_tok = load_tokenizer(str(tiny_model_dir))
    scorer = RewardModelScorer.load(str(rm_dir), policy_tok)
    assert scorer.retokenize
    policy = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rollout = generate(policy, policy_tok, [policy_tok("say cat")["input_ids"]], 4, greedy=True)
    prompt_text = "say cat"
    completion = rollout.completions[0][rollout.completion_mask[0] > 0]
    if rollout.ended[0]:
        completion = completion[:-1]
    text = policy_tok.decode(completion, skip_special_tokens=True)
    expected = scorer.score_texts([prompt_text], [text], rollout.ended.tolist())
    torch.testing.assert_close(scorer.score(rollout, policy_tok), expected)


@pytest.mark.slow
def test_13_ppo_raises_a_rule_based_reward_and_kl_penalty_limits_drift(
    tiny_model_dir, prompts_file, tmp_path
):
    common = {
        "iterations": 12,
        "rollout_batch_size": 16,
        "minibatch_size": 8,
        "micro_batch_size": 8,
        "ppo_epochs": 2,
        "policy_lr": 1e-2,
        "value_lr": 1e-2,
        "missing_eos_penalty": None,
        "max_new_tokens": 6,
    }
    free = train_ppo(
        ppo_config(tiny_model_dir, prompts_file, tmp_path / "free", kl={"beta": 0.0}, **common),
        WordScorer(),
    )
    held = train_ppo(
        ppo_config(tiny_model_dir, prompts_file, tmp_path / "held", kl={"beta": 0.5}, **common),
        WordScorer(),
    )
    free_curve = [m for m in read_metrics(free) if "score" in m]
    held_curve = [m for m in read_metrics(held) if "score" in m]
    first = sum(m["score"] for m in free_curve[:3]) / 3
    last = sum(m["score"] for m in free_curve[-3:]) / 3
    assert last > first + 0.2, (first, last)
    # The held-out reward (sampled completions to prompts PPO never trained on) rises too.
    metrics = read_metrics(free)
    before = next(m["val_score"] for m in metrics if "val_score" in m)
    after = metrics[-1]["final_val_score"]
    assert after > before + 0.1, (before, after)
    # Its change is a paired difference over the same prompts and draws, with an interval.
    records = [
        json.loads(line) for line in (free / "held_out_scores.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records] == [0, 12]
    change = json.loads((free / "ppo_summary.json").read_text())["val_score_change"]
    assert change["point"] == pytest.approx(after - before, abs=1e-9)
    assert 0 < change["lo"] <= change["point"] <= change["hi"] and change["n"] == len(
        records[0]["scores"]
    )
    assert "bootstrap" in change["method"]  # rlhf_common.stats.bootstrap_mean's choice
    kl_free = sum(m["kl"] for m in free_curve[-3:]) / 3
    kl_held = sum(m["kl"] for m in held_curve[-3:]) / 3
    assert kl_held < kl_free, (kl_held, kl_free)


def test_14_reference_and_reward_model_stay_bit_identical(
    tiny_model_dir, reward_model_dir, prompts_file, tmp_path, monkeypatch
):
    import rlhf_train.ppo as ppo

    seen = {}
    original = ppo.make_experience

    def spy(accelerator, policy, reference, value_model, scorer, *args, **kwargs):
        if "reference" not in seen:
            seen["reference"] = (
                reference,
                {k: v.clone() for k, v in reference.state_dict().items()},
            )
            rm = scorer.model
            seen["rm"] = (rm, {k: v.clone() for k, v in rm.state_dict().items()})
        return original(accelerator, policy, reference, value_model, scorer, *args, **kwargs)

    monkeypatch.setattr(ppo, "make_experience", spy)
    config = ppo_config(
        tiny_model_dir,
        prompts_file,
        tmp_path / "ppo",
        reward_model=str(reward_model_dir),
        value_init="reward_model",
        pretrain={
            "data": {"path": str(prompts_file), "text_field": "prompt"},
            "coef": 0.5,
            "batch_size": 4,
        },
    )
    out = train_ppo(config)
    for model, before in seen.values():
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
    # The policy did move, and the output loads with plain transformers.
    trained = AutoModelForCausalLM.from_pretrained(out).state_dict()
    reference = seen["reference"][1]
    assert any(not torch.equal(trained[k], reference[k]) for k in reference)
    assert all("ptx_loss" in m for m in read_metrics(out) if "pg_loss" in m)


def test_15_ppo_resume_reproduces_the_uninterrupted_curve(tiny_model_dir, prompts_file, tmp_path):
    extra = {
        "iterations": 4,
        "kl": {"beta": 0.1, "adaptive": True, "target": 0.5, "horizon": 100},
        "ema_decay": 0.9,
    }
    full = train_ppo(
        ppo_config(tiny_model_dir, prompts_file, tmp_path / "full", save_every=2, **extra),
        WordScorer(),
    )
    resumed = train_ppo(
        ppo_config(
            tiny_model_dir,
            prompts_file,
            tmp_path / "resumed",
            resume_from=str(full / "checkpoints" / "step-000002"),
            **extra,
        ),
        WordScorer(),
    )
    curve = {m["step"]: m for m in read_metrics(full) if "pg_loss" in m}
    resumed_curve = {m["step"]: m for m in read_metrics(resumed) if "pg_loss" in m}
    assert sorted(resumed_curve) == [3, 4]
    for step, m in resumed_curve.items():
        for key in ("pg_loss", "vf_loss", "score", "kl", "beta"):
            assert m[key] == curve[step][key], (step, key)
    a = AutoModelForCausalLM.from_pretrained(full).state_dict()
    b = AutoModelForCausalLM.from_pretrained(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def scripted_generate(tokens: torch.Tensor, vocab: int):
    """A stand-in for model.generate that emits `tokens`, calling the logits processors once a
    step as generation does (so the sampler records its log-probs)."""

    def fake(input_ids, logits_processor, **kwargs):
        for _ in range(tokens.shape[1]):
            for processor in logits_processor:
                processor(input_ids, torch.zeros(len(input_ids), vocab))
        return torch.cat([input_ids, tokens], dim=1)

    return fake


def test_stop_token_truncation_masks_everything_after_the_first_stop(tiny_model, tokenizer):
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    prompt = tokenizer("say cat")["input_ids"]
    sampled = [[7, eos, 8, eos], [7, 8, 9, 10]]  # one stops after 2 tokens, one never stops

    tiny_model.generate = scripted_generate(torch.tensor(sampled), len(tokenizer))
    rollout = generate(tiny_model, tokenizer, [prompt, prompt], 4)
    assert rollout.completion_mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert rollout.ended.tolist() == [True, False]
    assert rollout.completions.tolist() == [[7, eos, pad, pad], [7, 8, 9, 10]]
    assert rollout.attention_mask[:, -4:].tolist() == rollout.completion_mask.tolist()


def test_missing_eos_penalty_lowers_only_unfinished_completions(
    tiny_model, tokenizer, tiny_model_dir, prompts_file, tmp_path, monkeypatch
):
    from accelerate import Accelerator

    import rlhf_train.ppo as ppo

    eos = tokenizer.eos_token_id
    sampled = torch.tensor([[7, eos, 8], [7, 8, 9]])
    tiny_model.generate = scripted_generate(sampled, len(tokenizer))
    captured = {}

    original = ppo.assemble_rewards

    def spy(logprobs, ref_logprobs, scores, mask, beta):
        captured["scores"] = scores.clone()
        return original(logprobs, ref_logprobs, scores, mask, beta)

    monkeypatch.setattr(ppo, "assemble_rewards", spy)

    class Constant:
        def score(self, rollout, tok):
            return torch.full((rollout.sequences.shape[0],), 0.5)

    config = ppo_config(tiny_model_dir, prompts_file, tmp_path, missing_eos_penalty=2.0)
    value = load_scalar_model(str(tiny_model_dir)).eval()
    prompt = tokenizer("say cat")["input_ids"]
    batch = ppo.make_experience(
        Accelerator(),
        tiny_model,
        tiny_model,
        value,
        Constant(),
        tokenizer,
        [prompt, prompt],
        eos,
        0.0,
        config,
    )
    assert captured["scores"].tolist() == [0.5, -1.5]
    assert batch.metrics["score"] == 0.5  # logged scores are the RM's, before the penalty


def test_held_out_score_samples_seeded_draws_and_reports_their_standard_error(tiny_model_dir):
    from accelerate import Accelerator

    tokenizer = load_tokenizer(str(tiny_model_dir))
    policy = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    prompts = [tokenizer(f"say {w}")["input_ids"] for w in WORDS[:5]]
    config = ppo_config(tiny_model_dir, "unused.jsonl", "unused", val_samples=3)
    accelerator = Accelerator(cpu=True)

    def evaluate(config):
        scores = held_out_scores(accelerator, policy, tokenizer, WordScorer(), prompts, config)
        return summarize(scores)

    first = evaluate(config)
    # The same seeded draws every time: two evaluations of one policy agree exactly.
    assert evaluate(config) == first
    # By hand: 3 draws per prompt from streams seeded by (seed, draw, prompt).
    from rlhf_train.rewards import rollout_seed

    per_prompt = []
    for i, prompt in enumerate(prompts):
        seeds = [rollout_seed(config.seed, -(d + 1), i) for d in range(3)]
        rollout = generate(policy, tokenizer, [prompt] * 3, config.max_new_tokens, seeds=seeds)
        per_prompt.append(WordScorer().score(rollout, tokenizer).mean())
    per_prompt = torch.stack(per_prompt)
    assert first["val_score"] == pytest.approx(float(per_prompt.mean()), abs=1e-6)
    assert first["val_score_se"] == pytest.approx(float(per_prompt.std()) / 5**0.5, abs=1e-6)
    # val_samples 0: one greedy completion per prompt.
    greedy = ppo_config(tiny_model_dir, "unused.jsonl", "unused", val_samples=0)
    rollout = generate(policy, tokenizer, prompts, config.max_new_tokens, greedy=True)
    expected = float(WordScorer().score(rollout, tokenizer).mean())
    got = evaluate(greedy)
    assert got["val_score"] == pytest.approx(expected, abs=1e-6)

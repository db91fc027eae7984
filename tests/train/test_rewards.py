"""Seeded per-prompt sampling: reproducible whatever the batch, a true sample of the policy at
the temperature, and nothing else: not the model's generation_config, not a minimum length."""

from __future__ import annotations

import pytest
import torch
from tiny_models import build_model, golden_next_token
from transformers import GenerationConfig

from rlhf_train.rewards import generate, rollout_seed


def completion(rollout, row: int) -> list[int]:
    return rollout.completions[row][rollout.completion_mask[row] > 0].tolist()


def test_a_prompts_seeded_completion_does_not_depend_on_its_batch(tiny_model, tokenizer):
    prompts = [tokenizer(text)["input_ids"] for text in ("say cat", "the dog sat on the mat", "a")]
    seeds = [rollout_seed(0, 3, i) for i in (7, 2, 5)]
    batched = generate(tiny_model, tokenizer, prompts, 6, seeds=seeds)
    alone = generate(tiny_model, tokenizer, prompts[:1], 6, seeds=seeds[:1])
    reordered = generate(tiny_model, tokenizer, prompts[::-1], 6, seeds=seeds[::-1])
    assert completion(alone, 0) == completion(batched, 0) == completion(reordered, 2)
    assert completion(reordered, 0) == completion(batched, 2)
    other = generate(tiny_model, tokenizer, prompts[:1], 6, seeds=[rollout_seed(0, 4, 7)])
    assert completion(other, 0) != completion(alone, 0)


def test_seeded_sampling_draws_from_softmax_at_the_temperature(tiny_model, tokenizer):
    prompt = tokenizer("say cat")["input_ids"]
    # A cold temperature: the tiny random model's own distribution is nearly flat.
    n, temperature = 3000, 0.1
    rollout = generate(
        tiny_model, tokenizer, [prompt] * n, 1, temperature=temperature, seeds=list(range(n))
    )
    counts = torch.bincount(rollout.completions[:, 0], minlength=len(tokenizer)).float()
    with torch.no_grad():
        logits = tiny_model(torch.tensor([prompt])).logits[0, -1] / temperature
    expected = torch.softmax(logits, dim=-1)
    # Total variation to the target (about 0.03 here); temperature 1 would be 0.39 away.
    assert 0.5 * (counts / n - expected).abs().sum() < 0.06
    at_one = torch.softmax(logits * temperature, dim=-1)
    assert 0.5 * (at_one - expected).abs().sum() > 0.3


def test_sampling_logprobs_are_the_golden_ones_at_the_temperature(tiny_model, tokenizer):
    model = tiny_model.double()
    prompts = [tokenizer("say cat")["input_ids"], tokenizer("the dog sat")["input_ids"]]
    rollout = generate(model, tokenizer, prompts, 4, temperature=0.7, seeds=[3, 4])
    for i, prompt in enumerate(prompts):
        tokens = completion(rollout, i)
        for j, token in enumerate(tokens):
            with torch.no_grad():
                golden = golden_next_token(model, prompt + tokens[:j], 0.7)[token]
            # Generation hands the sampler float32 logits, hence 1e-6.
            assert float(rollout.sampling_logprobs[i, j]) == pytest.approx(float(golden), abs=1e-6)


def test_rollouts_ignore_the_models_generation_config(tokenizer):
    """A checkpoint's generation_config (Qwen2.5-Instruct ships repetition_penalty 1.05, top_k
    20, temperature 0.7) must not reach rollouts: PPO's log-probs know nothing of it."""
    plain, shipped = build_model(tokenizer), build_model(tokenizer)
    shipped.generation_config = GenerationConfig(
        do_sample=True,
        temperature=0.2,
        top_k=2,
        top_p=0.5,
        repetition_penalty=3.0,
        no_repeat_ngram_size=1,
        min_new_tokens=5,
        suppress_tokens=[tokenizer.convert_tokens_to_ids("good")],
    )
    prompts = [tokenizer(text)["input_ids"] for text in ("say cat cat", "good good", "a")]
    seeds = [11, 12, 13]
    for kwargs in ({"seeds": seeds, "temperature": 0.9}, {"greedy": True}):
        a = generate(plain, tokenizer, prompts, 5, **kwargs)
        b = generate(shipped, tokenizer, prompts, 5, **kwargs)
        assert torch.equal(a.sequences, b.sequences) and torch.equal(a.ended, b.ended)
        if a.sampling_logprobs is not None:
            assert torch.equal(a.sampling_logprobs, b.sampling_logprobs)
    assert shipped.generation_config.repetition_penalty == 3.0  # restored afterwards


def test_a_rollout_may_stop_at_its_first_token(tiny_model, tokenizer):
    """EOS is drawable from the first step (no min_new_tokens): its probability counts in PPO."""
    eos = tokenizer.eos_token_id
    prompt = tokenizer("say cat")["input_ids"]
    with torch.no_grad():
        first = int(golden_next_token(tiny_model, prompt).argmax())
        # EOS's output row made the largest logit's, ten times over: EOS is the greedy choice.
        tiny_model.lm_head.weight[eos] = 10 * tiny_model.lm_head.weight[first]
    rollout = generate(tiny_model, tokenizer, [prompt], 4, greedy=True)
    assert completion(rollout, 0) == [eos] and rollout.ended.tolist() == [True]
    sampled = generate(
        tiny_model, tokenizer, [prompt] * 20, 4, temperature=0.05, seeds=list(range(20))
    )
    assert rollout.completion_mask.shape[1] == 1
    assert sampled.ended.all() and sampled.completion_mask.sum(1).tolist() == [1] * 20

"""Seeded per-prompt sampling: reproducible whatever the batch, and a true sample of the policy."""

from __future__ import annotations

import torch

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
    logits[tokenizer.eos_token_id] = -float("inf")  # min_new_tokens=1 forbids stopping at once
    expected = torch.softmax(logits, dim=-1)
    # Total variation to the target (about 0.03 here); temperature 1 would be 0.39 away.
    assert 0.5 * (counts / n - expected).abs().sum() < 0.06
    at_one = torch.softmax(logits * temperature, dim=-1)
    assert 0.5 * (at_one - expected).abs().sum() > 0.3

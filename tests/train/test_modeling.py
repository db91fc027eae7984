"""Golden tests of the forward passes PPO trains on: each completion token's log-probability at
the sampling temperature, the value of the state it was chosen in, and bf16 mixed precision.
The expected numbers come from one unpadded sequence at a time through the model's own forward
(tiny_models.golden_*), never from rlhf_train's functions, so a shared off-by-one or a dropped
temperature cannot cancel out. The models are float64; Llama's RMSNorm still rounds to float32,
so padded batches and lone sequences agree to about 1e-9, hence the 1e-8 tolerances."""

from __future__ import annotations

import pytest
import torch
from tiny_models import (
    build_model,
    golden_next_token,
    golden_value,
    left_right_padded,
    save_model,
    tiny_scalar_model,
)

from rlhf_train.modeling import (
    completion_logprobs,
    completion_values,
    load_causal_lm,
    load_scalar_model,
)

TEMPERATURE = 0.7


def rollout_rows(tokenizer):
    """Two rollouts of different prompt and completion lengths (so both paddings occur)."""
    ids = lambda text: tokenizer(text)["input_ids"]  # noqa: E731
    prompts = [ids("say cat dog"), ids("a")]
    completions = [ids("good bad") + [tokenizer.eos_token_id], ids("red")]
    return prompts, completions


def test_completion_logprobs_at_a_temperature_are_the_golden_ones(tokenizer):
    model = build_model(tokenizer).double()
    prompts, completions = rollout_rows(tokenizer)
    sequences, mask, width = left_right_padded(prompts, completions, tokenizer.pad_token_id)
    with torch.no_grad():
        logprobs, entropy = completion_logprobs(model, sequences, mask, width, TEMPERATURE)
        assert logprobs.shape == entropy.shape == (2, 3)
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            for j, token in enumerate(completion):
                golden = golden_next_token(model, prompt + completion[:j], TEMPERATURE)
                assert float(logprobs[i, j]) == pytest.approx(float(golden[token]), abs=1e-8)
                expected_entropy = float(-(golden.exp() * golden).sum())
                assert float(entropy[i, j]) == pytest.approx(expected_entropy, abs=1e-8)
        # The temperature matters here: at 1 the same tokens have other log-probs.
        golden_at_one = golden_next_token(model, prompts[0], 1.0)[completions[0][0]]
    assert abs(float(golden_at_one) - float(logprobs[0, 0])) > 1e-3


def test_completion_values_are_the_values_of_the_states_tokens_were_chosen_in(tokenizer):
    """V for completion token j is the value of prompt + completion[:j]: the state before the
    action, so the first value sees the prompt alone and none sees the finished sequence."""
    value_model = tiny_scalar_model(tokenizer).double()
    value_model.config.reward_bias = 0.25
    prompts, completions = rollout_rows(tokenizer)
    sequences, mask, width = left_right_padded(prompts, completions, tokenizer.pad_token_id)
    with torch.no_grad():
        values = completion_values(value_model, sequences, mask, width)
        assert values.shape == (2, 3)
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            for j in range(len(completion)):
                golden = golden_value(value_model, prompt + completion[:j])
                assert float(values[i, j]) == pytest.approx(float(golden), abs=1e-8)


def test_bfloat16_keeps_float32_weights_and_computes_under_autocast(tokenizer, tmp_path):
    directory = save_model(tmp_path / "lm")
    exact = load_causal_lm(str(directory), "float32")
    mixed = load_causal_lm(str(directory), "bfloat16")
    scalar = load_scalar_model(str(directory), "bfloat16")
    assert {p.dtype for m in (mixed, scalar) for p in m.parameters()} == {torch.float32}
    prompts, completions = rollout_rows(tokenizer)
    sequences, mask, width = left_right_padded(prompts, completions, tokenizer.pad_token_id)
    with torch.no_grad():
        low, _ = completion_logprobs(mixed, sequences, mask, width, TEMPERATURE)
        high, _ = completion_logprobs(exact, sequences, mask, width, TEMPERATURE)
        values = completion_values(scalar, sequences, mask, width)
    assert low.dtype == values.dtype == torch.float32
    # bf16 matmuls: close to float32, but not equal (autocast is really on).
    difference = float((low - high).abs().max())
    assert 0 < difference < 0.05

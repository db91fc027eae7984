"""PPO's training step and experience against hand computations (issue 3, tests 6 and 12).

`ppo_step`'s gradient is compared with the gradient of the PPO-ptx loss written out here token by
token: each log-prob and value from one unpadded sequence through the model's own forward
(tiny_models.golden_*), the clipped surrogate and clipped value loss as in Schulman et al. (2017),
and gamma times the mean pretraining NLL per token (eq. 2). A dropped gamma, a swapped max/min, a
dropped temperature or a log-prob or value shifted by one token each change that gradient.
"""

from __future__ import annotations

import math

import pytest
import torch
from accelerate import Accelerator
from tiny_models import (
    build_model,
    golden_next_token,
    golden_value,
    left_right_padded,
    save_model,
    tiny_scalar_model,
)

import rlhf_train.ppo as ppo
from rlhf_train.config import PPOConfig
from rlhf_train.data import PretrainStream, TokenizedExample
from rlhf_train.experience import Experience
from rlhf_train.modeling import load_causal_lm, load_scalar_model, load_tokenizer
from rlhf_train.rewards import Rollout

TEMPERATURE, CLIP, VALUE_CLIP, VF_COEF, GAMMA = 0.7, 0.2, 0.2, 0.5, 0.7

# Five completion tokens (the sixth position is padding). Ratios are exp(SHIFT): e^0.5 = 1.65
# and e^-0.5 = 0.61 lie outside [0.8, 1.2], e^0.1 = 1.11 inside. Per token, the loss is
# max(-A r, -A clip(r)):
#   (0, 0) r 1.65, A +1.0: clipped, -1.2 (no gradient)
#   (0, 1) r 0.61, A -0.5: clipped, 0.4 (no gradient)
#   (0, 2) r 1.11, A +0.8: inside, -0.884
#   (1, 0) r 0.61, A +0.7: unclipped is the larger, -0.425 (gradient flows)
#   (1, 1) r 1.65, A -0.6: unclipped is the larger, 0.989 (gradient flows)
SHIFT = [[0.5, -0.5, 0.1], [-0.5, 0.5, 0.0]]
ADVANTAGES = [[1.0, -0.5, 0.8], [0.7, -0.6, 0.0]]
# Old values = current values + VALUE_SHIFT; returns by hand.
VALUE_SHIFT = [[0.5, -0.1, 0.0], [0.05, -0.3, 0.0]]
RETURNS = [[1.0, -1.0, 0.3], [0.2, 0.5, 0.0]]


def words(tokenizer, text: str) -> list[int]:
    return tokenizer(text)["input_ids"]


def hand_example(tokenizer):
    policy = build_model(tokenizer, seed=0).double()
    value_model = tiny_scalar_model(tokenizer, seed=1).double()
    prompts = [words(tokenizer, "say cat dog"), words(tokenizer, "a")]
    completions = [words(tokenizer, "good bad") + [tokenizer.eos_token_id], words(tokenizer, "red")]
    completions[1] += words(tokenizer, "blue")
    pretrain = [words(tokenizer, "the cat sat on the mat"), words(tokenizer, "yes no yes")]
    return policy, value_model, prompts, completions, pretrain


def golden_terms(policy, value_model, prompts, completions):
    """Per completion token: log pi(y_j | x, y_<j) at the temperature and V(x, y_<j)."""
    logprobs, values = [], []
    for prompt, completion in zip(prompts, completions, strict=True):
        prefixes = [prompt + completion[:j] for j in range(len(completion))]
        logprobs.append(
            [
                golden_next_token(policy, p, TEMPERATURE)[t]
                for p, t in zip(prefixes, completion, strict=True)
            ]
        )
        values.append([golden_value(value_model, p) for p in prefixes])
    return logprobs, values


def golden_ptx_nll(policy, documents) -> torch.Tensor:
    """Mean next-token NLL per pretraining token (temperature 1: it is the model's likelihood)."""
    total, count = 0.0, 0
    for doc in documents:
        for t in range(1, len(doc)):
            total = total - golden_next_token(policy, doc[:t])[doc[t]]
            count += 1
    return total / count


def test_12_ppo_step_gradient_is_the_hand_written_ppo_ptx_loss(tokenizer):
    policy, value_model, prompts, completions, pretrain = hand_example(tokenizer)
    pad = tokenizer.pad_token_id
    sequences, attention_mask, width = left_right_padded(prompts, completions, pad)
    completion_mask = attention_mask[:, width:]
    mask = completion_mask.double()
    shift, advantages = (
        torch.tensor(SHIFT, dtype=torch.float64),
        torch.tensor(ADVANTAGES, dtype=torch.float64),
    )
    with torch.no_grad():
        logprobs, values = golden_terms(policy, value_model, prompts, completions)
    current = torch.zeros(2, 3, dtype=torch.float64)
    current_values = torch.zeros(2, 3, dtype=torch.float64)
    for i, row in enumerate(logprobs):
        current[i, : len(row)] = torch.stack(row)
        current_values[i, : len(row)] = torch.stack(values[i])
    batch = Experience(
        rollout=Rollout(
            sequences, attention_mask, width, completion_mask, torch.tensor([True, False])
        ),
        logprobs=(current - shift) * mask,
        values=(current_values + torch.tensor(VALUE_SHIFT, dtype=torch.float64)) * mask,
        advantages=advantages * mask,
        returns=torch.tensor(RETURNS, dtype=torch.float64) * mask,
        mask=mask,
    )
    config = PPOConfig.model_validate(
        {
            "prompts": {"path": "unused.jsonl"},
            "output_dir": "unused",
            "temperature": TEMPERATURE,
            "clip": CLIP,
            "value_clip": VALUE_CLIP,
            "vf_coef": VF_COEF,
            "micro_batch_size": 1,  # two micro-batches: the accumulation is checked too
            "pretrain": {"data": {"path": "unused.jsonl"}, "coef": GAMMA, "batch_size": 2},
        }
    )
    ptx = PretrainStream([TokenizedExample(doc, 0) for doc in pretrain], 2, seed=0)
    stats = ppo.ppo_step(
        Accelerator(cpu=True), policy, value_model, tokenizer, batch, [0, 1], ptx, 0, config
    )
    parameters = list(policy.parameters()) + list(value_model.parameters())
    step_grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in parameters]

    # The loss by hand, token by token.
    for p in parameters:
        p.grad = None
    logprobs, values = golden_terms(policy, value_model, prompts, completions)
    pg_terms, vf_terms = [], []
    for i, row in enumerate(logprobs):
        for j, logprob in enumerate(row):
            ratio = torch.exp(logprob - batch.logprobs[i, j])
            a = advantages[i, j]
            pg_terms.append(torch.maximum(-a * ratio, -a * ratio.clamp(1 - CLIP, 1 + CLIP)))
            old, ret = batch.values[i, j], batch.returns[i, j]
            clipped = old + (values[i][j] - old).clamp(-VALUE_CLIP, VALUE_CLIP)
            vf_terms.append(torch.maximum((values[i][j] - ret) ** 2, (clipped - ret) ** 2))
    assert len(pg_terms) == 5
    pg_loss = torch.stack(pg_terms).mean()
    vf_loss = 0.5 * torch.stack(vf_terms).mean()
    nll = golden_ptx_nll(policy, pretrain)
    (pg_loss + VF_COEF * vf_loss + GAMMA * nll).backward()

    # The table at the top of this file.
    by_hand = [-1.2, 0.4, -0.8 * math.exp(0.1), -0.7 * math.exp(-0.5), 0.6 * math.exp(0.5)]
    assert [float(t.detach()) for t in pg_terms] == pytest.approx(by_hand, abs=1e-9)
    assert stats["pg_loss"] == pytest.approx(float(pg_loss.detach()), abs=1e-8)
    assert stats["vf_loss"] == pytest.approx(float(vf_loss.detach()), abs=1e-8)
    assert stats["ptx_loss"] == pytest.approx(float(nll.detach()), abs=1e-8)
    assert stats["clipfrac"] == pytest.approx(2 / 5, abs=1e-12)
    assert stats["approx_kl"] == pytest.approx(0.5 * (4 * 0.25 + 0.01) / 5, abs=1e-8)
    for p, got in zip(parameters, step_grads, strict=True):
        want = p.grad if p.grad is not None else torch.zeros_like(p)
        # Llama's RMSNorm rounds to float32 even in a float64 model, so the padded batch and
        # the lone sequences differ in the last float32 bits: 3e-8 here, far below any bug.
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-4)


class Constant:
    def __init__(self, value: float):
        self.value = value

    def score(self, rollout, tokenizer):
        return torch.full((rollout.sequences.shape[0],), self.value)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_06_kl_is_exactly_zero_while_the_policy_is_the_reference(tmp_path, monkeypatch, dtype):
    """The policy and the reference, loaded apart from one folder (with dropout, so eval mode
    matters), give a KL of exactly 0 at the sampling temperature, in float32 and in bf16 mixed
    precision: every per-token reward but the score at the end is 0."""
    directory = save_model(tmp_path / "lm", dropout=0.5)
    tokenizer = load_tokenizer(str(directory))
    policy, reference = (load_causal_lm(str(directory), dtype) for _ in range(2))
    value_model = load_scalar_model(str(directory), dtype).eval()
    captured = {}
    original = ppo.assemble_rewards

    def spy(logprobs, ref_logprobs, scores, mask, beta):
        captured["rewards"] = original(logprobs, ref_logprobs, scores, mask, beta)
        captured["mask"] = mask
        return captured["rewards"]

    monkeypatch.setattr(ppo, "assemble_rewards", spy)
    config = PPOConfig.model_validate(
        {
            "prompts": {"path": "unused.jsonl"},
            "output_dir": "unused",
            "temperature": TEMPERATURE,
            "max_new_tokens": 6,
            "missing_eos_penalty": None,
            "dtype": dtype,
        }
    )
    prompts = [words(tokenizer, t) for t in ("say cat dog and", "a", "the sky is")]
    batch = ppo.make_experience(
        Accelerator(cpu=True),
        policy,
        reference,
        value_model,
        Constant(1.5),
        tokenizer,
        prompts,
        tokenizer.eos_token_id,
        0.5,
        config,
        seeds=[1, 2, 3],
    )
    assert batch.metrics["kl"] == 0.0
    rewards, mask = captured["rewards"], captured["mask"]
    last = mask.sum(1).long() - 1
    assert rewards[torch.arange(3), last].tolist() == [1.5] * 3
    rewards[torch.arange(3), last] = 0.0
    assert torch.equal(rewards, torch.zeros_like(rewards))
    # The sampler drew from the distribution PPO trains (bf16: the cached and the full forward
    # round differently).
    assert batch.metrics["sampling_logprob_diff"] < (1e-5 if dtype == "float32" else 0.1)

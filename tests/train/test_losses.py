"""The paper's equations against hand-computed numbers (issue 3, tests 1-3, 7, 8, 10; test 6, the
KL at the start, and test 12, the PPO-ptx step, are in test_ppo_step.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rlhf_train.losses import (
    IGNORE_INDEX,
    adaptive_kl_beta,
    assemble_rewards,
    gae,
    pairwise_accuracy,
    ppo_policy_loss,
    ppo_value_loss,
    ranking_pairs,
    rm_loss,
    sft_labels,
    sft_loss,
    whiten,
)


def test_01_sft_masking_keeps_completion_and_eos_even_when_pad_is_eos(eos_pad_tokenizer):
    tok = eos_pad_tokenizer
    eos = tok.eos_token_id
    assert tok.pad_token_id == eos
    prompts = ["question cat is", "question dog"]
    completions = ["good", "bad and red"]
    rows, prompt_lengths = [], []
    for prompt, completion in zip(prompts, completions, strict=True):
        p = tok(prompt)["input_ids"]
        c = tok(completion)["input_ids"] + [eos]
        rows.append(p + c)
        prompt_lengths.append(len(p))
    width = max(len(r) for r in rows) + 2  # extra padding on both rows
    input_ids = torch.full((2, width), tok.pad_token_id)
    attention_mask = torch.zeros((2, width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention_mask[i, : len(row)] = 1
    labels = sft_labels(input_ids, attention_mask, torch.tensor(prompt_lengths))
    for i, row in enumerate(rows):
        p = prompt_lengths[i]
        assert labels[i, :p].tolist() == [IGNORE_INDEX] * p
        assert labels[i, p : len(row)].tolist() == row[p:]
        assert labels[i, len(row) - 1] == eos  # the EOS keeps its id though pad == eos
        assert labels[i, len(row) :].tolist() == [IGNORE_INDEX] * (width - len(row))


def _batch(seed: int = 0, vocab: int = 11):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 7, vocab, generator=g, requires_grad=True)
    input_ids = torch.randint(0, vocab, (3, 7), generator=g)
    attention_mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])
    labels = sft_labels(input_ids, attention_mask, torch.tensor([2, 3, 1]))
    return logits, labels


def test_02_sft_loss_equals_cross_entropy_on_completion_tokens():
    logits, labels = _batch()
    expected_terms = []
    for i in range(3):
        for t in range(6):
            if labels[i, t + 1] != IGNORE_INDEX:
                expected_terms.append(F.cross_entropy(logits[i, t][None], labels[i, t + 1][None]))
    expected = torch.stack(expected_terms).mean()
    assert len(expected_terms) == 5 + 2 + 2
    torch.testing.assert_close(sft_loss(logits, labels), expected)


def test_02_sft_loss_same_under_gradient_accumulation():
    logits, labels = _batch()
    full = sft_loss(logits, labels)
    (full_grad,) = torch.autograd.grad(full, logits)
    total = int((labels[:, 1:] != IGNORE_INDEX).sum())
    # Micro-batches of 1 and 2 rows with different completion-token counts.
    accumulated = torch.zeros_like(logits)
    value = 0.0
    for rows in (slice(0, 1), slice(1, 3)):
        part = sft_loss(logits[rows], labels[rows], num_tokens=total)
        (grad,) = torch.autograd.grad(part, logits)
        accumulated += grad
        value += float(part.detach())
    assert value == pytest.approx(float(full.detach()), abs=1e-6)
    torch.testing.assert_close(accumulated, full_grad)


def test_03_kway_rm_loss_hand_computed():
    assert ranking_pairs([0, 1, 2]) == [(0, 1), (0, 2), (1, 2)]
    scores = torch.tensor([2.0, 1.0, 0.0])
    winners, losers = torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2])
    loss, pair_losses = rm_loss(
        scores, winners, losers, torch.zeros(3, dtype=torch.long), num_prompts=1
    )
    torch.testing.assert_close(pair_losses, torch.tensor([0.313262, 0.126928, 0.313262]))
    assert float(loss) == pytest.approx(0.251150, abs=1e-6)
    assert pairwise_accuracy(scores, winners, losers) == (3.0, 3)


def test_03_prompts_weigh_equally_and_ties_are_excluded():
    # Prompt 0: K=3 ranking 0 > 1 > 2 (loss 0.251150); prompt 1: K=2 pair with loss log 2.
    assert ranking_pairs([1, 0]) == [(1, 0)]
    scores = torch.tensor([2.0, 1.0, 0.0, 0.5, 0.5])
    pairs = [(0, 1, 0), (0, 2, 0), (1, 2, 0), (3, 4, 1)]
    winners, losers, prompt = (torch.tensor(c) for c in zip(*pairs, strict=True))
    loss, _ = rm_loss(scores, winners, losers, prompt, num_prompts=2)
    assert float(loss) == pytest.approx((0.251150 + math.log(2)) / 2, abs=1e-6)
    # A tie yields no pair: ranks [0, 0, 1] compare only each first-place with the last.
    assert ranking_pairs([0, 0, 1]) == [(0, 2), (1, 2)]
    assert ranking_pairs([2, 2]) == []


def test_07_reward_assembly_hand_computed():
    logp = torch.tensor([[-1.0, -2.0, -0.5]])
    ref = torch.tensor([[-1.5, -1.0, -0.5]])
    rewards = assemble_rewards(logp, ref, torch.tensor([1.0]), torch.ones(1, 3), beta=0.02)
    torch.testing.assert_close(rewards, torch.tensor([[-0.01, 0.02, 1.0]]))


def test_07_score_lands_on_last_real_token():
    logp = torch.zeros(1, 4)
    rewards = assemble_rewards(logp, logp, torch.tensor([2.0]), torch.tensor([[1, 1, 0, 0]]), 0.1)
    assert rewards.tolist() == [[0.0, 2.0, 0.0, 0.0]]


def test_08_gae_hand_computed():
    advantages, returns = gae(
        torch.tensor([[0.0, 0.0, 1.0]]),
        torch.tensor([[0.5, 0.5, 0.5]]),
        torch.ones(1, 3),
        1.0,
        0.95,
    )
    torch.testing.assert_close(advantages, torch.tensor([[0.45125, 0.475, 0.5]]))
    torch.testing.assert_close(returns, torch.tensor([[0.95125, 0.975, 1.0]]))


def test_08_gae_ignores_padding_after_the_episode():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 7.0]])
    values = torch.tensor([[0.5, 0.5, 0.5, 9.0]])
    advantages, returns = gae(rewards, values, torch.tensor([[1, 1, 1, 0]]), 1.0, 0.95)
    torch.testing.assert_close(advantages, torch.tensor([[0.45125, 0.475, 0.5, 0.0]]))
    torch.testing.assert_close(returns, torch.tensor([[0.95125, 0.975, 1.0, 0.0]]))


def test_ppo_losses_at_ratio_one():
    logp = torch.randn(2, 5)
    adv = whiten(torch.randn(2, 5), torch.ones(2, 5))
    assert float(adv.mean()) == pytest.approx(0.0, abs=1e-6)
    loss, stats = ppo_policy_loss(logp, logp.clone(), adv, torch.ones(2, 5))
    assert float(loss) == pytest.approx(float(-adv.mean()), abs=1e-6)
    assert stats["clipfrac"] == 0.0 and stats["ratio"] == pytest.approx(1.0)
    values = torch.tensor([[1.0, 2.0]])
    vloss, _ = ppo_value_loss(
        values, torch.tensor([[0.0, 2.0]]), torch.tensor([[0.0, 0.0]]), torch.ones(1, 2), clip=0.2
    )
    # Position 0: max((1-0)^2, (0.2-0)^2) = 1; position 1: max(4, 4) = 4; 0.5 * mean = 1.25.
    assert float(vloss) == pytest.approx(1.25)


def test_clipped_policy_loss_hand_computed():
    """One token per case, clip 0.2 (Schulman et al. 2017, eq. 7 and fig. 1): the loss is
    max(-A r, -A clip(r, 0.8, 1.2)), so the clip binds only where it lowers the objective."""
    ratios = torch.tensor([[1.5, 0.5, 0.5, 1.5, 1.1]])
    advantages = torch.tensor([[2.0, -1.0, 2.0, -1.0, -3.0]])
    logp = torch.log(ratios).requires_grad_()
    loss, stats = ppo_policy_loss(logp, torch.zeros(1, 5), advantages, torch.ones(1, 5), 0.2)
    # A > 0, r 1.5: clipped at 1.2 -> -2.4.   A < 0, r 0.5: clipped at 0.8 -> 0.8.
    # A > 0, r 0.5: unclipped -> -1.0.        A < 0, r 1.5: unclipped -> 1.5.
    # inside the range, r 1.1, A -3: 3.3.
    per_token = [-2.4, 0.8, -1.0, 1.5, 3.3]
    assert float(loss.detach()) == pytest.approx(sum(per_token) / 5, abs=1e-6)
    assert stats["clipfrac"] == pytest.approx(2 / 5)
    (grad,) = torch.autograd.grad(loss, logp)
    # d/d log r of -A r / 5 is -A r / 5 where unclipped; 0 where the clip binds.
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.0, -0.2, 0.3, 0.66]]))
    # Masked tokens count for nothing.
    masked, _ = ppo_policy_loss(
        logp, torch.zeros(1, 5), advantages, torch.tensor([[1, 1, 0, 0, 0]])
    )
    assert float(masked.detach()) == pytest.approx((-2.4 + 0.8) / 2, abs=1e-6)


def test_10_adaptive_kl_controller_hand_computed():
    assert adaptive_kl_beta(0.2, kl=12.0, target=6.0, n_steps=512, horizon=10000) == pytest.approx(
        0.202048, abs=1e-9
    )
    # The error is clipped at -0.2 on the low side too.
    assert adaptive_kl_beta(0.2, 0.0, 6.0, 512, 10000) == pytest.approx(0.2 * (1 - 0.2 * 0.0512))

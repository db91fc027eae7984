"""The InstructGPT objectives as pure tensor functions (Ouyang et al. 2022, sec. 3.5, app. C).

Every function takes tensors and returns tensors or floats; nothing here loads a model or touches an
optimiser, so each equation is tested against a hand-computed number in tests/train/test_losses.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
"""The label that `F.cross_entropy` skips; the same value TRL, OpenRLHF and transformers use."""


def widened(values: torch.Tensor) -> torch.Tensor:
    """`values` in float32 or wider: bf16 logits get an fp32 softmax, and a float64 run (the exact
    data-parallel checks) is never rounded back down to float32."""
    return values.to(torch.promote_types(values.dtype, torch.float32))


# --- SFT ---------------------------------------------------------------------------------------


def sft_labels(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_lengths: torch.Tensor
) -> torch.Tensor:
    """Labels for supervised fine-tuning on demonstrations (sec. 3.5 "SFT").

    Only completion tokens are trained: the first `prompt_lengths[i]` positions of each right-padded
    row and every padding position become IGNORE_INDEX. Masking is by position, never by token id,
    so a completion's EOS keeps its label even when the tokenizer's pad token is the EOS token.
    """
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    is_prompt = positions[None, :] < prompt_lengths[:, None]
    labels = input_ids.clone()
    labels[is_prompt | (attention_mask == 0)] = IGNORE_INDEX
    return labels


def token_nll_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token negative log-likelihood over labelled positions (labels are unshifted).

    The labels are shifted instead of the logits, so the [batch, T, vocab] logits are never copied.
    """
    next_labels = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    return F.cross_entropy(
        widened(logits).reshape(-1, logits.shape[-1]),
        next_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def count_label_tokens(labels: torch.Tensor) -> int:
    """How many positions `token_nll_sum` averages over (labels are unshifted)."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def sft_loss(
    logits: torch.Tensor, labels: torch.Tensor, num_tokens: int | None = None
) -> torch.Tensor:
    """Mean cross-entropy per completion token (sec. 3.5 "SFT"; also the ptx term, eq. 2).

    `num_tokens` is the number of labelled tokens in the whole optimiser step (all micro-batches and
    processes). Dividing each micro-batch's sum by it makes gradient accumulation and data
    parallelism give exactly the gradient of one big batch, which a mean of micro-batch means
    does not when micro-batches hold different numbers of completion tokens.
    """
    total = num_tokens if num_tokens is not None else count_label_tokens(labels)
    return token_nll_sum(logits, labels) / max(total, 1)


# --- Reward model ------------------------------------------------------------------------------


def ranking_pairs(ranks: list[int]) -> list[tuple[int, int]]:
    """All (winner, loser) index pairs of one K-way ranking; rank 0 is best, ties form no pair.

    Sec. 3.5 "RM": labelers rank K = 4..9 completions, giving C(K, 2) comparisons per prompt.
    A tie carries no preference, so tied pairs are left out (they would pull scores together
    with a loss whose minimum is not at equal scores).
    """
    return [
        (i, j) if ranks[i] < ranks[j] else (j, i)
        for i in range(len(ranks))
        for j in range(i + 1, len(ranks))
        if ranks[i] != ranks[j]
    ]


def rm_pair_losses(chosen_scores: torch.Tensor, rejected_scores: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(r(x, y_w) - r(x, y_l)) for each comparison (eq. 1)."""
    return -F.logsigmoid(chosen_scores - rejected_scores)


def rm_loss(
    scores: torch.Tensor,
    winners: torch.Tensor,
    losers: torch.Tensor,
    pair_prompt: torch.Tensor,
    num_prompts: int,
    normaliser: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The K-way reward-model loss of eq. 1, averaged over prompts.

    `scores` holds one scalar per completion in the batch; pair p compares completions
    `winners[p]` and `losers[p]` of prompt `pair_prompt[p]` (0..num_prompts-1). Each prompt's
    loss is the mean over its C(K, 2) non-tied pairs (the 1/C(K,2) factor of eq. 1), so a K = 2
    and a K = 9 prompt weigh the same, as the paper does by putting all comparisons of a prompt
    in one batch element to avoid overfitting. The result is sum(prompt losses) / normaliser,
    where the normaliser defaults to num_prompts; pass the step's total prompt count under
    gradient accumulation or data parallelism. Returns (loss, per-pair losses).
    """
    pair_losses = rm_pair_losses(scores[winners], scores[losers])
    pairs_per_prompt = torch.zeros(num_prompts, dtype=pair_losses.dtype, device=scores.device)
    pairs_per_prompt.index_add_(0, pair_prompt, torch.ones_like(pair_losses))
    prompt_losses = torch.zeros_like(pairs_per_prompt).index_add_(0, pair_prompt, pair_losses)
    prompt_losses = prompt_losses / pairs_per_prompt.clamp(min=1)
    denominator = normaliser if normaliser is not None else num_prompts
    return prompt_losses.sum() / denominator, pair_losses


def pairwise_accuracy(
    scores: torch.Tensor, winners: torch.Tensor, losers: torch.Tensor
) -> tuple[float, int]:
    """Share of comparisons the RM orders like the labelers (a tie in score counts 0.5)."""
    diff = scores[winners] - scores[losers]
    correct = (diff > 0).float() + 0.5 * (diff == 0).float()
    return float(correct.sum()), int(diff.numel())


# --- PPO rewards and advantages ----------------------------------------------------------------


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL estimate log pi_RL(y_t|.) - log pi_SFT(y_t|.) (eq. 2's beta term).

    This is the sampled-token estimator used by Ziegler et al. (2019) and InstructGPT: its
    expectation over the policy's samples is KL(pi_RL || pi_SFT), and it is exactly 0 when the
    policy equals the reference.
    """
    return logprobs - ref_logprobs


def assemble_rewards(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    scores: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Per-token rewards of eq. 2: -beta * KL at every completion token, plus r_theta(x, y) at the
    last real token. Tensors are [batch, tokens]; `scores` is [batch]; `mask` marks real tokens.
    """
    rewards = -beta * kl_penalty(logprobs, ref_logprobs) * mask
    last = last_index(mask)
    rewards[torch.arange(rewards.shape[0], device=rewards.device), last] += scores
    return rewards


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last 1 in each row of a [batch, tokens] 0/1 mask (0 for an empty row)."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return (positions * (mask > 0)).amax(dim=1)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16; InstructGPT app. C.4 uses
    gamma 1, lambda 0.95). The episode ends after the last real token, whose next value is 0.
    Returns (advantages, returns = advantages + values), both zero outside the mask.
    """
    mask = mask.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        # Padding after the episode contributes nothing and resets the recursion.
        running = running * mask[:, t]
        next_value = values[:, t] * mask[:, t]
        advantages[:, t] = running
    returns = (advantages + values) * mask
    return advantages, returns


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `x` over positions where `mask` is 1."""
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(
    x: torch.Tensor,
    mask: torch.Tensor,
    mean: torch.Tensor | None = None,
    var: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalise advantages to zero mean and unit variance over real tokens (app. C.4).

    Pass `mean` and `var` computed over all processes to whiten a data-parallel batch as one.
    """
    mean = masked_mean(x, mask) if mean is None else mean
    var = masked_mean((x - mean) ** 2, mask) if var is None else var
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


def ppo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate objective (Schulman et al. 2017, eq. 7), as a loss averaged over tokens.

    Returns the loss and diagnostics: mean ratio, clip fraction and approximate KL to the
    rollout policy.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        stats = {
            "ratio": float(masked_mean(ratio, mask)),
            "clipfrac": float(masked_mean((clipped > unclipped).float(), mask)),
            "approx_kl": float(masked_mean(0.5 * (logprobs - old_logprobs) ** 2, mask)),
        }
    return loss, stats


def ppo_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped value loss 0.5 * max((V - R)^2, (V_clipped - R)^2) (the PPO2 baseline, app. C.4)."""
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    losses = torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    loss = 0.5 * masked_mean(losses, mask)
    with torch.no_grad():
        stats = {
            "value_clipfrac": float(masked_mean(((values - old_values).abs() > clip).float(), mask))
        }
    return loss, stats


# --- KL coefficient ----------------------------------------------------------------------------


def adaptive_kl_beta(beta: float, kl: float, target: float, n_steps: int, horizon: int) -> float:
    """The adaptive KL controller of Ziegler et al. (2019), sec. 2.2.

    e = clip(KL / target - 1, -0.2, 0.2); beta <- beta * (1 + e * n_steps / horizon), where
    n_steps is the number of episodes in the batch just used.
    """
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return beta * (1.0 + error * n_steps / horizon)

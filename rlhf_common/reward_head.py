"""The reward model's stored bias: `rlhf-train rm` writes it into the checkpoint's config, and
rlhf-train's PPO and rlhf-eval's reward-model judge add it to the scalar head's output."""

from __future__ import annotations

REWARD_BIAS_KEY = "reward_bias"
"""Config attribute holding the offset that makes demonstrations score 0 on average (sec. 3.5)."""


def stored_reward_bias(config) -> float:
    """The bias a model config carries (0 when absent or None, as in any other reward model)."""
    return float(getattr(config, REWARD_BIAS_KEY, 0.0) or 0.0)

"""The reward-model judge's verdict: the pairwise preference sigmoid(r_model - r_baseline) with a
tie band, and the templates a reward model reads prompts in. The model that gives r(x, y) is
rlhf_eval.models.reward_model.RewardModel."""

from __future__ import annotations

import math
from typing import Literal

from rlhf_eval.metrics.preference import LOSS, TIE, WIN

RewardTemplate = Literal["instruction", "hh", "chat", "plain"]
"""How the reward model reads a prompt: rlhf-train's "### Instruction:" template, HH-RLHF's
"Human: ... Assistant:" markup, the reward model's own chat template, or the text as it is."""


def preference(reward: float, baseline_reward: float) -> float:
    """P(model preferred) under the Bradley-Terry model the reward model was trained with."""
    return 1.0 / (1.0 + math.exp(-(reward - baseline_reward)))


def preference_verdict(p: float, tie_band: float) -> float:
    """1 (win), 0 (loss), or 0.5 (tie) where |p - 0.5| < tie_band: a reward difference too small
    to call (at band 0.05, |r_a - r_b| < 0.2)."""
    if abs(p - 0.5) < tie_band:
        return TIE
    return WIN if p > 0.5 else LOSS

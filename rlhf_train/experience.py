"""One PPO iteration's experience: the rollouts and the per-token tensors PPO trains on, as one
typed container; a micro-batch's rows of it, and under data parallelism every process's rows
gathered in global batch order."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from accelerate.utils import gather_object

from rlhf_train.rewards import Rollout


@dataclass(frozen=True)
class Experience:
    """Rollouts and what PPO needs of each completion token, each [batch, completion width]."""

    rollout: Rollout
    logprobs: torch.Tensor
    """log pi(token) under the rollout policy, at the sampling temperature."""
    values: torch.Tensor
    """The value model's V(s) before each token, at rollout time."""
    advantages: torch.Tensor
    """GAE's advantages (whitened over the whole batch when configured)."""
    returns: torch.Tensor
    """GAE's returns: the value model's targets."""
    mask: torch.Tensor
    """1 on completion tokens up to and including the stop token, in the values' dtype."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Means over the whole batch for the log (score, kl, completion_length, ...)."""

    def rows(self, index: list[int]) -> Experience:
        """Some of the rollouts with their tensors (a micro-batch); the batch's metrics stay."""
        return Experience(
            self.rollout.rows(index),
            self.logprobs[index],
            self.values[index],
            self.advantages[index],
            self.returns[index],
            self.mask[index],
            self.metrics,
        )


def gather_experience(accelerator, batch: Experience, pad_id: int) -> Experience:
    """Every process's rollouts and their tensors on every process, in global batch order.

    Minibatches are then drawn from the whole batch as one process draws them, and each process
    trains on its share of each; the tensors are small next to the models. Prompts stay left- and
    completions right-padded, to the widths one process would have used.
    """
    if accelerator.num_processes == 1:
        return batch
    rollout = batch.rollout
    local = {
        "prompt": rollout.sequences[:, : rollout.prompt_width],
        "prompt_mask": rollout.attention_mask[:, : rollout.prompt_width],
        "completion": rollout.completions,
        "ended": rollout.ended,
        "logprobs": batch.logprobs,
        "values": batch.values,
        "advantages": batch.advantages,
        "returns": batch.returns,
        "mask": batch.mask,
    }
    parts = gather_object([{k: v.cpu() for k, v in local.items()}])
    prompt_width = max(p["prompt"].shape[1] for p in parts)
    completion_width = max(p["completion"].shape[1] for p in parts)

    def cat(key: str, value: int, left: bool = False) -> torch.Tensor:
        width = prompt_width if left else completion_width
        sides = [
            (width - p[key].shape[1], 0) if left else (0, width - p[key].shape[1]) for p in parts
        ]
        padded = [F.pad(p[key], side, value=value) for p, side in zip(parts, sides, strict=True)]
        return torch.cat(padded).to(accelerator.device)

    mask = cat("mask", 0)
    completion_mask = mask.long()
    rollout = Rollout(
        torch.cat([cat("prompt", pad_id, left=True), cat("completion", pad_id)], dim=1),
        torch.cat([cat("prompt_mask", 0, left=True), completion_mask], dim=1),
        prompt_width,
        completion_mask,
        torch.cat([p["ended"] for p in parts]).to(accelerator.device),
    )
    return Experience(
        rollout,
        cat("logprobs", 0),
        cat("values", 0),
        cat("advantages", 0),
        cat("returns", 0),
        mask,
        batch.metrics,
    )

"""PPO's held-out reward: the reward model's score of the policy's completions to prompts PPO
never trains on, per prompt, kept in held_out_scores.jsonl so the change over training is a
paired difference with an interval, not two means side by side."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rlhf_common.stats import bootstrap_mean
from rlhf_train.data import chunks
from rlhf_train.rewards import generate, rollout_seed

SCORES_FILE = "held_out_scores.jsonl"


@torch.no_grad()
def held_out_scores(accelerator, policy, tokenizer, scorer, prompts, config) -> list[float]:
    """Each held-out prompt's mean reward-model score (no KL, no penalty).

    `val_samples` completions per prompt are sampled from streams seeded by (seed, draw, prompt),
    the same at every evaluation, so successive evaluations differ by the policy alone; with
    val_samples 0, one greedy completion per prompt.
    """
    inner = accelerator.unwrap_model(policy)
    draws = max(config.val_samples, 1)
    jobs = [(i, d) for i in range(len(prompts)) for d in range(draws)]
    scores = torch.zeros(len(prompts), draws)
    for batch in chunks(jobs, max(config.micro_batch_size, 1)):
        batch_prompts = [prompts[i] for i, _ in batch]
        if config.val_samples == 0:
            rollout = generate(inner, tokenizer, batch_prompts, config.max_new_tokens, greedy=True)
        else:
            seeds = [rollout_seed(config.seed, -(d + 1), i) for i, d in batch]
            rollout = generate(
                inner,
                tokenizer,
                batch_prompts,
                config.max_new_tokens,
                temperature=config.temperature,
                seeds=seeds,
            )
        for (i, d), score in zip(batch, scorer.score(rollout, tokenizer).tolist(), strict=True):
            scores[i, d] = score
    return scores.mean(dim=1).tolist()


def summarize(scores: list[float]) -> dict[str, float]:
    """The mean over prompts and its standard error."""
    values = torch.tensor(scores, dtype=torch.float64)
    spread = float(values.std()) if len(values) > 1 else 0.0
    return {"val_score": float(values.mean()), "val_score_se": spread / len(values) ** 0.5}


def record_held_out(output_dir: Path, step: int, scores: list[float]) -> None:
    """Append one evaluation's per-prompt scores; step 0 starts the file afresh."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / SCORES_FILE).open("w" if step == 0 else "a") as handle:
        handle.write(json.dumps({"step": step, "scores": scores}) + "\n")


def held_out_change(output_dir: Path, iterations: int = 10_000) -> dict | None:
    """The last evaluation minus the first, paired by prompt, with a 95% bootstrap interval over
    prompts (rlhf_common.stats.bootstrap_mean picks the method and names it in `method`); None
    without two evaluations of the same prompts."""
    path = output_dir / SCORES_FILE
    if not path.is_file():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if len(records) < 2 or len(records[0]["scores"]) != len(records[-1]["scores"]):
        return None
    first, last = records[0], records[-1]
    differences = [b - a for a, b in zip(first["scores"], last["scores"], strict=True)]
    estimate = bootstrap_mean(differences, iterations=iterations).to_dict()
    return {**estimate, "from_step": first["step"], "to_step": last["step"]}

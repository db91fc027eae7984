"""Reward-model training on K-way rankings (InstructGPT sec. 3.5 "RM"), read top to bottom.

All C(K, 2) comparisons of a prompt form one batch element, so batches count prompts, and each
completion goes through the model once however many pairs it is in. After training, a bias is
stored in the checkpoint config (`reward_bias`) so that demonstrations score 0 on average.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from rlhf_common.reward_head import REWARD_BIAS_KEY
from rlhf_train.checkpoint import find_checkpoint, save_model_dir
from rlhf_train.config import RMConfig
from rlhf_train.data import (
    Demonstration,
    TokenizedExample,
    chunks,
    load_demonstrations,
    load_rankings,
    load_split,
    pad,
    shard,
    tokenize_demonstrations,
    tokenize_rankings,
)
from rlhf_train.errors import TrainConfigError, TrainDataError
from rlhf_train.losses import pairwise_accuracy, ranking_pairs, rm_loss
from rlhf_train.modeling import (
    load_scalar_model,
    load_tokenizer,
    pad_apart_from_eos,
    resolve_model,
    reward_bias,
    sequence_scores,
)
from rlhf_train.training_loop import reduce_mean, run_steps, start_run

Ranked = tuple[list[TokenizedExample], tuple[int, ...]]


def train_rm(config: RMConfig) -> Path:
    """Train a scalar reward model on rankings; the model and its bias land in output_dir."""
    accelerator = Accelerator(log_with=config.log_with or None, project_dir=config.output_dir)
    set_seed(config.seed)
    resume = find_checkpoint(config.resume_from) if config.resume_from else None
    # The data first: a bad file fails in seconds, before any model loads.
    train_rankings, val_rankings = load_split(
        load_rankings, config.data, config.val_data, config.val_fraction, config.seed
    )
    if config.model is None:
        raise TrainConfigError(
            "rm: `model` is not set. Fix: point it at the SFT output_dir (the paper starts the "
            "reward model from the SFT model) or at any causal LM."
        )
    source = str(resume / "reward_model") if resume else resolve_model(config.model)
    tokenizer = load_tokenizer(source)
    model = load_scalar_model(source, config.dtype, accelerator.device)
    pad_apart_from_eos(tokenizer, accelerator.unwrap_model(model))
    tokenize = lambda r: tokenize_rankings(  # noqa: E731
        r, tokenizer, config.max_length, config.overlong, source
    )
    (train, skipped), (val, val_skipped) = tokenize(train_rankings), tokenize(val_rankings)
    if not train:
        raise TrainDataError(f"{config.data.path}: no usable rankings ({skipped} too long).")

    run = start_run(accelerator, model, config, len(train), resume, "rm", {"step": 0})
    model = run.model
    if run.state["step"] == 0:
        run.log.log(0, {"skipped_too_long": skipped + val_skipped, "train_prompts": len(train)})

    def train_step(global_batch: list[int], step: int) -> dict:
        return rm_step(accelerator, model, tokenizer, train, global_batch, config)

    def evaluate(metrics: dict) -> None:
        inner = accelerator.unwrap_model(model)
        batch_size = config.optim.micro_batch_size
        metrics.update(evaluate_rankings(inner, tokenizer, val, batch_size, prefix="val_"))

    run_steps(run, train_step, evaluate if val else None, {"reward_model": (model, tokenizer)})

    # Sec. 3.5: "normalized so that the labeler demonstrations achieve a mean score of 0".
    demos = demonstrations_for_bias(config, train_rankings)
    examples, _ = tokenize_demonstrations(demos, tokenizer, config.max_length, "skip", source)
    inner = accelerator.unwrap_model(model)
    bias = reward_bias(inner) - mean_score(
        inner, tokenizer, examples, config.optim.micro_batch_size
    )
    save_model_dir(accelerator, model, tokenizer, config.output_dir, {REWARD_BIAS_KEY: bias})
    if accelerator.is_main_process:
        summary = {"steps": run.total_steps, REWARD_BIAS_KEY: bias, "bias_examples": len(examples)}
        if val:
            summary.update(
                evaluate_rankings(
                    inner, tokenizer, val, config.optim.micro_batch_size, prefix="val_"
                )
            )
        (config.output_dir / "rm_summary.json").write_text(json.dumps(summary, indent=2))
    run.log.close()
    return config.output_dir


def rm_step(accelerator, model, tokenizer, train: list[Ranked], global_batch, config) -> dict:
    """Forward and backward of one optimiser step over this process's prompts; each micro-batch's
    summed prompt losses are divided by the global prompt count (eq. 1 averaged over prompts)."""
    world, rank = accelerator.num_processes, accelerator.process_index
    micro_batches = chunks(shard(global_batch, rank, world), config.optim.micro_batch_size)
    loss_sum, correct, pairs = 0.0, 0.0, 0
    for i, micro in enumerate(micro_batches):
        sync = i == len(micro_batches) - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(model):
            scores, winners, losers, prompt = score_rankings(
                model, tokenizer, [train[j] for j in micro]
            )
            loss, _ = rm_loss(scores, winners, losers, prompt, len(micro), len(global_batch))
            accelerator.backward(loss * world)
        loss_sum += float(loss.detach())
        c, n = pairwise_accuracy(scores.detach(), winners, losers)
        correct, pairs = correct + c, pairs + n
    return {
        "loss": reduce_mean(accelerator, loss_sum),
        "accuracy": reduce_mean(accelerator, correct) / max(reduce_mean(accelerator, pairs), 1),
    }


def score_rankings(model, tokenizer, rankings: list[Ranked]):
    """Scores of every completion of some rankings in one forward pass, with their pair indices."""
    sequences, winners, losers, prompt = [], [], [], []
    for p, (examples, ranks) in enumerate(rankings):
        offset = len(sequences)
        sequences += [e.input_ids for e in examples]
        for w, loser in ranking_pairs(list(ranks)):
            winners.append(offset + w)
            losers.append(offset + loser)
            prompt.append(p)
    input_ids, attention_mask = pad(sequences, tokenizer.pad_token_id)
    device = next(model.parameters()).device
    scores = sequence_scores(model, input_ids.to(device), attention_mask.to(device))
    as_tensor = lambda x: torch.tensor(x, dtype=torch.long, device=device)  # noqa: E731
    return scores, as_tensor(winners), as_tensor(losers), as_tensor(prompt)


@torch.no_grad()
def evaluate_rankings(model, tokenizer, rankings: list[Ranked], batch_size: int, prefix="") -> dict:
    """Loss and pairwise accuracy over held-out rankings."""
    was_training = model.training
    model.eval()
    loss_sum, correct, pairs = 0.0, 0.0, 0
    for batch in chunks(rankings, batch_size):
        scores, winners, losers, prompt = score_rankings(model, tokenizer, batch)
        loss, _ = rm_loss(scores, winners, losers, prompt, len(batch), len(rankings))
        loss_sum += float(loss)
        c, n = pairwise_accuracy(scores, winners, losers)
        correct, pairs = correct + c, pairs + n
    model.train(was_training)
    return {f"{prefix}loss": loss_sum, f"{prefix}accuracy": correct / max(pairs, 1)}


@torch.no_grad()
def mean_score(model, tokenizer, examples: list[TokenizedExample], batch_size: int) -> float:
    """Mean r(x, y) over prompt + completion sequences."""
    was_training = model.training
    model.eval()
    total = 0.0
    for batch in chunks(examples, batch_size):
        input_ids, attention_mask = pad([e.input_ids for e in batch], tokenizer.pad_token_id)
        device = next(model.parameters()).device
        total += float(
            sequence_scores(model, input_ids.to(device), attention_mask.to(device)).sum()
        )
    model.train(was_training)
    return total / max(len(examples), 1)


def demonstrations_for_bias(config: RMConfig, rankings) -> list[Demonstration]:
    """The configured demonstrations, or else each training ranking's best completion(s)."""
    if config.demonstrations is not None:
        return load_demonstrations(config.demonstrations.path, config.demonstrations.limit)
    return [
        Demonstration(r.prompt, c, r.source)
        for r in rankings
        for c, rank in zip(r.completions, r.ranks, strict=True)
        if rank == min(r.ranks)
    ]

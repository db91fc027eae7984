"""The optimiser-step loop SFT and the reward model share: AdamW on a cosine schedule, resuming,
seeded global batches, gradient clipping, evaluation every `eval_every` steps, logging and
checkpoints. Each recipe brings its own step (forward and backward over one global batch) and
its own evaluation; PPO, whose steps come from rollouts, has its own loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import get_cosine_schedule_with_warmup

from rlhf_train.checkpoint import checkpoint_dir, load_checkpoint, save_checkpoint
from rlhf_train.config import RMConfig, SFTConfig
from rlhf_train.data import batch_indices
from rlhf_train.optim import adamw
from rlhf_train.tracking import RunLog

TrainStep = Callable[[list[int], int], dict]
"""(the step's global batch of example indices, the step number) -> the step's metrics, after
the forward and backward passes; the loop then clips, steps and logs."""

Evaluate = Callable[[dict], None]
"""Adds validation figures to the step's metrics (and may save the model it selects)."""


@dataclass
class TrainingRun:
    """What one SFT or RM run steps: the prepared model and optimiser, the schedule and the
    trainer state (the step, plus what the recipe keeps there, saved in every checkpoint)."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    config: SFTConfig | RMConfig
    state: dict
    log: RunLog
    num_examples: int
    total_steps: int
    eval_every: int


def start_run(
    accelerator: Accelerator,
    model,
    config: SFTConfig | RMConfig,
    num_examples: int,
    resume: Path | None,
    name: str,
    state: dict,
) -> TrainingRun:
    """Optimiser, cosine schedule and devices for `num_examples` training examples (RM: prompts);
    the state of the checkpoint `resume` or else `state`; the run log named `name`."""
    steps_per_epoch = num_examples // config.optim.batch_size
    total_steps = config.optim.epochs * steps_per_epoch
    if config.optim.max_steps is not None:
        total_steps = min(total_steps, config.optim.max_steps)
    optimizer = adamw(model.parameters(), config.optim.lr, config.optim.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, config.optim.warmup_steps, total_steps)
    # The scheduler stays unprepared: accelerate would step it once per process.
    model, optimizer = accelerator.prepare(model, optimizer)
    if resume:
        state = load_checkpoint(accelerator, resume, optimizer, scheduler)
    return TrainingRun(
        accelerator=accelerator,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        config=config,
        state=state,
        log=RunLog(accelerator, config.output_dir, total_steps, state["step"], config, name),
        num_examples=num_examples,
        total_steps=total_steps,
        eval_every=config.eval_every or max(steps_per_epoch, 1),
    )


def run_steps(
    run: TrainingRun, train_step: TrainStep, evaluate: Evaluate | None, checkpointed: dict
) -> None:
    """Optimiser steps from the run's state to its last: each global batch is a pure function of
    (seed, step), so a resumed run takes the steps an uninterrupted one would. `evaluate` (None
    without validation data) runs every `eval_every` steps and after the last; `checkpointed`
    names the (model, tokenizer) pairs a checkpoint saves, as save_checkpoint takes them."""
    accelerator, config, state = run.accelerator, run.config, run.state
    run.model.train()
    for step in range(state["step"], run.total_steps):
        global_batch = batch_indices(run.num_examples, config.optim.batch_size, config.seed, step)
        metrics = train_step(global_batch, step)
        if config.max_grad_norm is not None:
            accelerator.clip_grad_norm_(run.model.parameters(), config.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad()
        state["step"] = step + 1
        metrics["lr"] = run.scheduler.get_last_lr()[0]
        if evaluate and (state["step"] % run.eval_every == 0 or state["step"] == run.total_steps):
            evaluate(metrics)
        if state["step"] % config.log_every == 0 or state["step"] == run.total_steps:
            run.log.log(state["step"], metrics)
        run.log.advance()
        if config.save_every and state["step"] % config.save_every == 0:
            save_checkpoint(
                accelerator,
                checkpoint_dir(config.output_dir, state["step"]),
                checkpointed,
                run.optimizer,
                run.scheduler,
                state,
            )


def reduce_mean(accelerator: Accelerator, value: float) -> float:
    """The step's loss: every process holds a share of the same normalised sum."""
    if accelerator.num_processes == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=accelerator.device)
    return float(accelerator.reduce(tensor, reduction="sum"))

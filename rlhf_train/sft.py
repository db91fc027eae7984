"""Supervised fine-tuning on demonstrations (InstructGPT sec. 3.5 "SFT"), read top to bottom."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from rlhf_train.chat import prompt_ids
from rlhf_train.checkpoint import find_checkpoint, save_model_dir
from rlhf_train.config import PretrainMix, SFTConfig
from rlhf_train.data import (
    PretrainStream,
    TokenizedExample,
    chunks,
    label_count,
    load_demonstrations,
    load_split,
    load_texts,
    pad,
    shard,
    tokenize_demonstrations,
    tokenize_texts,
)
from rlhf_train.errors import TrainConfigError, TrainDataError
from rlhf_train.losses import sft_labels, sft_loss
from rlhf_train.modeling import causal_logits, load_causal_lm, load_tokenizer, resolve_model
from rlhf_train.rewards import RewardModelScorer, generate
from rlhf_train.training_loop import reduce_mean, run_steps, start_run


def train_sft(config: SFTConfig) -> Path:
    """Fine-tune `config.model` on demonstrations; the selected model lands in output_dir."""
    accelerator = Accelerator(log_with=config.log_with or None, project_dir=config.output_dir)
    set_seed(config.seed)
    resume = find_checkpoint(config.resume_from) if config.resume_from else None
    source = str(resume / "policy") if resume else resolve_model(config.model)
    tokenizer = load_tokenizer(source)
    model = load_causal_lm(source, config.dtype, accelerator.device)

    # Data: demonstrations (train/validation) and optional pretraining text.
    train_demos, val_demos = load_split(
        load_demonstrations, config.data, config.val_data, config.val_fraction, config.seed
    )
    tokenize = lambda d: tokenize_demonstrations(  # noqa: E731
        d, tokenizer, config.max_length, config.overlong, source
    )
    (train, skipped), (val, val_skipped) = tokenize(train_demos), tokenize(val_demos)
    if not train:
        raise TrainDataError(f"{config.data.path}: no usable demonstrations ({skipped} too long).")
    ptx = pretrain_stream(config.pretrain, tokenizer, config.seed)
    selector = load_selector(config, tokenizer, accelerator.device)

    # Optimiser, cosine schedule, devices; the state a resumed run left.
    initial = {"step": 0, "best": None, "best_step": None}
    run = start_run(accelerator, model, config, len(train), resume, "sft", initial)
    model, state = run.model, run.state
    if state["step"] == 0:
        run.log.log(0, {"skipped_too_long": skipped + val_skipped, "train_examples": len(train)})

    def train_step(global_batch: list[int], step: int) -> dict:
        return sft_step(accelerator, model, tokenizer, train, global_batch, config, ptx, step)

    def evaluate(metrics: dict) -> None:
        """Validation loss (and RM score); the best so far by `select_by` is saved."""
        metrics["val_loss"] = validation_loss(accelerator, model, tokenizer, val, config)
        if config.select_by == "rm_score":
            metrics["val_rm_score"] = rm_select_score(
                accelerator, model, tokenizer, selector, val_demos, config
            )
        score = -metrics.get("val_rm_score", -metrics["val_loss"])
        if config.select_by != "last" and (state["best"] is None or score < state["best"]):
            state["best"], state["best_step"] = score, state["step"]
            save_model_dir(accelerator, model, tokenizer, config.output_dir)

    run_steps(run, train_step, evaluate if val else None, {"policy": (model, tokenizer)})

    if config.select_by == "last" or state["best"] is None:
        save_model_dir(accelerator, model, tokenizer, config.output_dir)
    if accelerator.is_main_process:
        total = run.total_steps
        summary = {"steps": total, "selected_step": state["best_step"] or total}
        (config.output_dir / "sft_summary.json").write_text(json.dumps(summary, indent=2))
    run.log.close()
    return config.output_dir


def sft_step(accelerator, model, tokenizer, train, global_batch, config, ptx, step) -> dict:
    """Forward and backward for one optimiser step: this process's share of the global batch in
    micro-batches, each loss divided by the step's total token count so that accumulation and
    data parallelism reproduce the gradient of the whole batch."""
    world, rank = accelerator.num_processes, accelerator.process_index
    num_tokens = sum(label_count(train[i]) for i in global_batch)
    work = [
        ("sft", m) for m in chunks(shard(global_batch, rank, world), config.optim.micro_batch_size)
    ]
    if ptx is not None and config.pretrain.coef > 0:
        ptx_tokens = ptx.num_tokens(step)
        ptx_local = shard(ptx.global_batch(step), rank, world)
        work += [("ptx", m) for m in chunks(ptx_local, config.optim.micro_batch_size)]
    totals = {"sft": 0.0, "ptx": 0.0}
    for i, (kind, micro) in enumerate(work):
        # DDP averages gradients over processes, so each local loss is scaled by world size.
        sync = i == len(work) - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(model):
            if kind == "sft":
                loss = example_loss(
                    model, [train[j] for j in micro], tokenizer.pad_token_id, num_tokens
                )
                scaled = loss * world
            else:
                loss = example_loss(
                    model, [ptx.examples[j] for j in micro], tokenizer.pad_token_id, ptx_tokens
                )
                scaled = loss * world * config.pretrain.coef
            accelerator.backward(scaled)
        totals[kind] += float(loss.detach())
    metrics = {"loss": reduce_mean(accelerator, totals["sft"])}
    if ptx is not None:
        metrics["ptx_loss"] = reduce_mean(accelerator, totals["ptx"])
    return metrics


def example_loss(model, examples: list[TokenizedExample], pad_id: int, num_tokens: int):
    """Summed completion-token NLL of some examples divided by `num_tokens`."""
    input_ids, attention_mask = pad([e.input_ids for e in examples], pad_id)
    input_ids, attention_mask = input_ids.to(model.device), attention_mask.to(model.device)
    prompt_lengths = torch.tensor([e.prompt_length for e in examples], device=input_ids.device)
    labels = sft_labels(input_ids, attention_mask, prompt_lengths)
    return sft_loss(causal_logits(model, input_ids, attention_mask), labels, num_tokens)


@torch.no_grad()
def validation_loss(accelerator, model, tokenizer, val: list[TokenizedExample], config) -> float:
    """Mean completion-token NLL on the validation demonstrations (same on every process)."""
    inner = accelerator.unwrap_model(model)
    was_training = inner.training
    inner.eval()
    total_tokens = sum(label_count(e) for e in val)
    loss = sum(
        float(example_loss(inner, batch, tokenizer.pad_token_id, total_tokens))
        for batch in chunks(val, config.optim.micro_batch_size)
    )
    inner.train(was_training)
    return loss if math.isfinite(loss) else float("inf")


def load_selector(config: SFTConfig, tokenizer, device=None):
    """The RM that scores validation completions when select_by is rm_score (sec. 3.5)."""
    if config.select_by != "rm_score":
        return None
    if config.select_reward_model is None:
        raise TrainConfigError(
            "select_by is rm_score but select_reward_model is not set. Fix: name the reward model "
            "to score validation completions with, or use select_by: val_loss."
        )
    return RewardModelScorer.load(
        resolve_model(config.select_reward_model), tokenizer, config.dtype, device
    )


def rm_select_score(accelerator, model, tokenizer, selector, val_demos, config) -> float:
    """Mean RM score of greedy completions to the validation prompts (conversations rendered by
    the chat template, as in training)."""
    inner = accelerator.unwrap_model(model)
    prompts = [prompt_ids(tokenizer, d.prompt, d.source) for d in val_demos]
    scores = []
    for batch in chunks(prompts, config.optim.micro_batch_size):
        rollout = generate(inner, tokenizer, batch, config.select_max_new_tokens, greedy=True)
        scores += selector.score(rollout, tokenizer).tolist()
    return sum(scores) / max(len(scores), 1)


def pretrain_stream(mix: PretrainMix | None, tokenizer, seed: int) -> PretrainStream | None:
    if mix is None:
        return None
    texts = load_texts(mix.data.path, mix.data.text_field, mix.data.limit)
    examples = [e for e in tokenize_texts(texts, tokenizer, mix.max_length) if label_count(e) > 0]
    return PretrainStream(examples, mix.batch_size, seed)

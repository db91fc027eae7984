"""PPO and PPO-ptx against a reward model (InstructGPT sec. 3.5 "RL", eq. 2, app. C.4).

One iteration: sample completions to a batch of prompts; score them with the RM; build per-token
rewards (RM score at the end minus beta * KL to the frozen SFT reference); estimate advantages with
GAE from a value model initialised from the RM; then take clipped PPO steps on policy and value,
each step optionally adding gamma * pretraining NLL (ptx). The policy stays in eval mode
throughout, so without dropout the first minibatch's recomputed log-probs equal the rollout's.
"""

from __future__ import annotations

import contextlib
import json
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import get_constant_schedule

from rlhf_train.checkpoint import (
    checkpoint_dir,
    find_checkpoint,
    load_checkpoint,
    load_tensors,
    save_checkpoint,
    save_model_dir,
)
from rlhf_train.config import PPOConfig
from rlhf_train.data import (
    batch_indices,
    chunks,
    load_prompts,
    shard,
    split_off,
    tokenize_prompts,
)
from rlhf_train.errors import TrainConfigError, TrainDataError
from rlhf_train.experience import Experience, gather_experience
from rlhf_train.held_out import held_out_change, held_out_scores, record_held_out, summarize
from rlhf_train.losses import (
    adaptive_kl_beta,
    assemble_rewards,
    gae,
    kl_penalty,
    ppo_policy_loss,
    ppo_value_loss,
    whiten,
)
from rlhf_train.modeling import (
    completion_logprobs,
    completion_values,
    load_causal_lm,
    load_scalar_model,
    load_tokenizer,
    resolve_model,
    same_tokenizer,
)
from rlhf_train.optim import adamw
from rlhf_train.rewards import RewardModelScorer, Scorer, generate, rollout_seed
from rlhf_train.sft import example_loss, pretrain_stream
from rlhf_train.tracking import RunLog


def train_ppo(config: PPOConfig, scorer: Scorer | None = None) -> Path:
    """Optimise the policy against the RM (or `scorer`, e.g. a rule-based reward in tests)."""
    if config.policy is None:
        raise TrainConfigError("ppo: `policy` is not set. Fix: point it at the SFT output_dir.")
    accelerator = Accelerator(log_with=config.log_with or None, project_dir=config.output_dir)
    set_seed(config.seed)
    resume = find_checkpoint(config.resume_from) if config.resume_from else None
    policy_source = resolve_model(config.policy)
    tokenizer = load_tokenizer(policy_source)
    device = accelerator.device
    policy_dir = str(resume / "policy") if resume else policy_source
    policy = load_causal_lm(policy_dir, config.dtype, device)
    reference = load_causal_lm(
        resolve_model(config.reference or config.policy), config.dtype, device
    )
    reference.eval().requires_grad_(False)
    if scorer is None:
        if config.reward_model is None:
            raise TrainConfigError("ppo: `reward_model` is not set. Fix: point it at the RM.")
        scorer = RewardModelScorer.load(
            resolve_model(config.reward_model), tokenizer, config.dtype, device
        )
    value_model = build_value_model(config, tokenizer, resume, device)
    stop_id = stop_token_id(config, tokenizer)

    prompts, _ = load_and_tokenize_prompts(config, tokenizer)
    if config.val_prompts is not None:
        train_prompts = prompts
        val_prompts, _ = load_and_tokenize_prompts(config, tokenizer, config.val_prompts)
    else:
        train_prompts, val_prompts = split_off(prompts, config.val_fraction, config.seed)
    ptx = pretrain_stream(config.pretrain, tokenizer, config.seed)

    optimizer = adamw(
        [
            {"params": list(policy.parameters()), "lr": config.policy_lr},
            {"params": list(value_model.parameters()), "lr": config.value_lr},
        ],
        lr=config.policy_lr,
        weight_decay=0.01,  # torch's AdamW default, which PPO has always used
    )
    scheduler = get_constant_schedule(optimizer)
    policy, value_model, optimizer = accelerator.prepare(policy, value_model, optimizer)
    state = {"iteration": 0, "opt_step": 0, "beta": config.kl.beta}
    ema = None
    if resume:
        state = load_checkpoint(accelerator, resume, optimizer, scheduler)
        ema = load_tensors(resume, "ema")
    if config.ema_decay is not None and ema is None:
        ema = {
            k: v.detach().clone() for k, v in accelerator.unwrap_model(policy).state_dict().items()
        }
    policy.eval()
    value_model.eval()
    log = RunLog(
        accelerator, config.output_dir, config.iterations, state["iteration"], config, "ppo"
    )

    def evaluate(step: int) -> dict[str, float]:
        scores = held_out_scores(accelerator, policy, tokenizer, scorer, val_prompts, config)
        if accelerator.is_main_process:
            record_held_out(config.output_dir, step, scores)
        return summarize(scores)

    if state["iteration"] == 0 and val_prompts:
        log.log(0, evaluate(0))

    if config.rollout_batch_size < accelerator.num_processes:
        raise TrainConfigError(
            f"ppo: rollout_batch_size {config.rollout_batch_size} leaves some of the "
            f"{accelerator.num_processes} processes without prompts. Fix: raise it."
        )
    for iteration in range(state["iteration"], config.iterations):
        # 1. Rollouts from this process's share of the prompt batch; each prompt samples from
        # its own seeded stream, so the rollouts do not depend on the number of processes.
        global_batch = batch_indices(
            len(train_prompts), config.rollout_batch_size, config.seed, iteration
        )
        mine = shard(global_batch, accelerator.process_index, accelerator.num_processes)
        local = [train_prompts[i] for i in mine]
        batch = make_experience(
            accelerator,
            policy,
            reference,
            value_model,
            scorer,
            tokenizer,
            local,
            stop_id,
            state["beta"],
            config,
            seeds=[rollout_seed(config.seed, iteration, i) for i in mine],
        )
        # 2. PPO epochs over minibatches of the whole batch, each one optimiser step (plus ptx).
        batch = gather_experience(accelerator, batch, tokenizer.pad_token_id)
        metrics, steps = {}, []
        for epoch in range(config.ppo_epochs):
            order = torch.randperm(
                len(global_batch),
                generator=torch.Generator().manual_seed(
                    config.seed * 7919 + iteration * 101 + epoch
                ),
            ).tolist()
            for m, minibatch in enumerate(chunks(order, config.minibatch_size)):
                if stop_early(steps, config.max_approx_kl):
                    break
                stats = ppo_step(
                    accelerator,
                    policy,
                    value_model,
                    tokenizer,
                    batch,
                    minibatch,
                    ptx,
                    state["opt_step"],
                    config,
                )
                if config.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(
                        list(policy.parameters()) + list(value_model.parameters()),
                        config.max_grad_norm,
                    )
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                state["opt_step"] += 1
                if epoch == 0 and m == 0:
                    metrics.update({f"first_{k}": v for k, v in stats.items()})
                steps.append(stats)
        # 3. KL coefficient, EMA, logging, evaluation, checkpoint.
        metrics.update(iteration_means(steps))
        metrics.update(batch.metrics)
        metrics["beta"] = state["beta"]
        if config.kl.adaptive:
            state["beta"] = adaptive_kl_beta(
                state["beta"],
                metrics["kl"],
                config.kl.target,
                config.rollout_batch_size,
                config.kl.horizon,
            )
        if ema is not None:
            update_ema(ema, accelerator.unwrap_model(policy), config.ema_decay)
        state["iteration"] = iteration + 1
        if val_prompts and config.eval_every and state["iteration"] % config.eval_every == 0:
            metrics.update(evaluate(state["iteration"]))
        log.log(state["iteration"], metrics)
        log.advance()
        if config.save_every and state["iteration"] % config.save_every == 0:
            save_checkpoint(
                accelerator,
                checkpoint_dir(config.output_dir, state["iteration"]),
                {"policy": (policy, tokenizer), "value_model": (value_model, tokenizer)},
                optimizer,
                scheduler,
                state,
                {"ema": ema} if ema is not None else None,
            )

    if ema is not None:
        accelerator.unwrap_model(policy).load_state_dict(ema)
    final = {}
    if val_prompts:
        final = evaluate(state["iteration"])
        log.log(state["iteration"], {f"final_{k}": v for k, v in final.items()})
        change = held_out_change(config.output_dir)
        if change is not None:
            final["val_score_change"] = change
    save_model_dir(accelerator, policy, tokenizer, config.output_dir)
    if accelerator.is_main_process:
        summary = {"iterations": config.iterations, "beta": state["beta"], **final}
        (config.output_dir / "ppo_summary.json").write_text(json.dumps(summary, indent=2))
    log.close()
    return config.output_dir


def build_value_model(config: PPOConfig, tokenizer, resume: Path | None, device=None):
    """The value function: a copy of the RM (app. C.4) or the policy with a new scalar head."""
    if resume is not None:
        return load_scalar_model(str(resume / "value_model"), config.dtype, device)
    if config.value_init == "policy":
        return load_scalar_model(resolve_model(config.policy), config.dtype, device)
    if config.reward_model is None:
        raise TrainConfigError(
            "ppo: value_init is reward_model but `reward_model` is not set. Fix: set "
            "reward_model, or value_init: policy."
        )
    source = resolve_model(config.reward_model)
    if not same_tokenizer(load_tokenizer(source), tokenizer):
        raise TrainConfigError(
            f"ppo: the reward model {source} uses a different tokenizer from the policy, so a "
            "value model initialised from it cannot read the policy's tokens (rewards are still "
            "computed by retokenising text). Fix: set value_init: policy."
        )
    return load_scalar_model(source, config.dtype, device)


def stop_early(steps: list[dict], max_approx_kl: float | None) -> bool:
    """Whether the iteration's PPO steps stop here: the last step's approximate KL to the
    rollout policy passed `max_approx_kl` (the policy has left the region its samples
    describe). Every process holds the same reduced value, so all stop together."""
    return max_approx_kl is not None and bool(steps) and steps[-1]["approx_kl"] > max_approx_kl


def iteration_means(steps: list[dict]) -> dict[str, float]:
    """The iteration's means over its optimiser steps (each step a mean over its tokens), and
    the largest log-prob difference; `ppo_steps` is how many steps ran (fewer after an early
    stop)."""
    means = {
        key: sum(s[key] for s in steps) / len(steps) for key in steps[0] if key != "logprob_diff"
    }
    means["logprob_diff"] = max(s["logprob_diff"] for s in steps)
    return {**means, "ppo_steps": len(steps)}


def stop_token_id(config: PPOConfig, tokenizer) -> int:
    if config.stop_token is None:
        if tokenizer.eos_token_id is None:
            raise TrainConfigError(
                "ppo: the policy's tokenizer has no EOS token, so completions cannot stop. Fix: "
                "set `stop_token` to a token of its vocabulary."
            )
        return tokenizer.eos_token_id
    token_id = tokenizer.convert_tokens_to_ids(config.stop_token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise TrainConfigError(
            f"ppo: stop_token {config.stop_token!r} is not one token of the "
            "policy's vocabulary. Fix: name a single token."
        )
    return token_id


def load_and_tokenize_prompts(config: PPOConfig, tokenizer, source=None):
    source = source or config.prompts
    texts = load_prompts(source.path, source.limit)
    room = config.max_length - config.max_new_tokens
    if room < 1:
        raise TrainConfigError("ppo: max_new_tokens leaves no room for prompts in max_length.")
    ids, skipped = tokenize_prompts(texts, tokenizer, room, config.overlong)
    if not ids:
        raise TrainDataError(f"{source.path}: no usable prompts ({skipped} too long).")
    return ids, skipped


@torch.no_grad()
def make_experience(
    accelerator,
    policy,
    reference,
    value_model,
    scorer,
    tokenizer,
    prompts,
    stop_id,
    beta,
    config,
    seeds: list[int] | None = None,
) -> Experience:
    """Rollouts with their log-probs, reference log-probs, values, rewards and advantages;
    `seeds` gives each prompt its own sampling stream (rewards.SeededSampler)."""
    inner = accelerator.unwrap_model(policy)
    rollout = generate(
        inner,
        tokenizer,
        prompts,
        config.max_new_tokens,
        temperature=config.temperature,
        stop_id=stop_id,
        seeds=seeds,
    )
    sequence = (rollout.sequences, rollout.attention_mask, rollout.prompt_width)
    logprobs, entropy = completion_logprobs(inner, *sequence, config.temperature)
    ref_logprobs, _ = completion_logprobs(reference, *sequence, config.temperature)
    values = completion_values(accelerator.unwrap_model(value_model), *sequence)
    mask = rollout.completion_mask.to(values.dtype)
    # The sampler's own log-probs against PPO's: apart from rounding (bf16 autocast: about
    # 1e-2), a difference means rollouts came from another distribution than the one trained.
    off_policy = float(((logprobs - rollout.sampling_logprobs.to(logprobs)).abs() * mask).max())
    scores = scorer.score(rollout, tokenizer).to(mask.device, values.dtype)
    penalised = scores.clone()
    if config.missing_eos_penalty is not None:
        penalised = penalised - config.missing_eos_penalty * (~rollout.ended).float()
    rewards = assemble_rewards(logprobs, ref_logprobs, penalised, mask, beta)
    advantages, returns = gae(rewards, values, mask, config.gamma, config.lam)
    if config.whiten_advantages:
        mean, var = global_moments(accelerator, advantages, mask)
        advantages = whiten(advantages, mask, mean, var)
    kl = (kl_penalty(logprobs, ref_logprobs) * mask).sum(dim=1)
    # Means over the whole batch, the same on every process (the KL controller reads "kl").
    sums = torch.stack(
        [
            scores.sum(),
            kl.sum(),
            mask.sum(),
            rollout.ended.float().sum(),
            mask.new_tensor(len(mask)),
            (entropy * mask).sum(),
        ]
    )
    if accelerator.num_processes > 1:
        sums = accelerator.reduce(sums, reduction="sum")
        off_policy = float(accelerator.gather(sums.new_tensor([off_policy])).max())
    names = ("score", "kl", "completion_length", "ended_fraction")
    metrics = dict(zip(names, (sums[:4] / sums[4]).tolist(), strict=True))
    # Per completion token, at the sampling temperature.
    metrics["entropy"] = float(sums[5] / sums[2].clamp(min=1))
    metrics["sampling_logprob_diff"] = off_policy
    return Experience(rollout, logprobs, values, advantages, returns, mask, metrics)


def global_moments(accelerator, x: torch.Tensor, mask: torch.Tensor):
    """Mean and variance of x over masked positions on all processes."""
    sums = torch.stack([(x * mask).sum(), (x * x * mask).sum(), mask.sum()])
    if accelerator.num_processes > 1:
        sums = accelerator.reduce(sums, reduction="sum")
    mean = sums[0] / sums[2].clamp(min=1)
    return mean, sums[1] / sums[2].clamp(min=1) - mean * mean


def ppo_step(
    accelerator,
    policy,
    value_model,
    tokenizer,
    batch: Experience,
    minibatch: list[int],
    ptx,
    opt_step: int,
    config: PPOConfig,
) -> dict:
    """Backward passes for one optimiser step: clipped policy and value losses over the
    minibatch's tokens, plus coef * pretraining NLL; gradients sync on the last backward only.

    `minibatch` indexes the whole batch (on every process); this process takes its share.
    """
    share = shard(minibatch, accelerator.process_index, accelerator.num_processes)
    # A process left without rows (a short last minibatch) still joins the gradient sync, with
    # one row weighted 0.
    present = 1.0 if share else 0.0
    micro_batches = chunks(share or minibatch[:1], config.micro_batch_size)
    total_tokens = float(batch.mask[minibatch].sum())
    work = []
    if ptx is not None and config.pretrain.coef > 0:
        ptx_tokens = ptx.num_tokens(opt_step)
        ptx_local = shard(
            ptx.global_batch(opt_step), accelerator.process_index, accelerator.num_processes
        )
        work += [("ptx", m) for m in chunks(ptx_local, config.micro_batch_size)]
    # PPO micro-batches go last: the final backward, the one that syncs gradients across
    # processes, must run through both the policy and the value model.
    work += [("ppo", m) for m in micro_batches]
    sums: dict[str, float] = {}
    world = accelerator.num_processes
    for i, (kind, micro) in enumerate(work):
        with contextlib.ExitStack() as stack:
            if i < len(work) - 1:
                stack.enter_context(accelerator.no_sync(policy))
                stack.enter_context(accelerator.no_sync(value_model))
            if kind == "ppo":
                part = batch.rows(micro)
                rollout = part.rollout
                sequence = (rollout.sequences, rollout.attention_mask, rollout.prompt_width)
                logprobs, _ = completion_logprobs(policy, *sequence, config.temperature)
                values = completion_values(value_model, *sequence)
                pg_loss, pg_stats = ppo_policy_loss(
                    logprobs, part.logprobs, part.advantages, part.mask, config.clip
                )
                vf_loss, vf_stats = ppo_value_loss(
                    values, part.values, part.returns, part.mask, config.value_clip
                )
                # Token-weighted, so the step's loss is the mean over the minibatch's tokens.
                weight = present * float(part.mask.sum()) / max(total_tokens, 1.0)
                loss = (pg_loss + config.vf_coef * vf_loss) * weight
                diff = (logprobs.detach() - part.logprobs).abs() * part.mask
                stats = {
                    "pg_loss": float(pg_loss.detach()) * weight,
                    "vf_loss": float(vf_loss.detach()) * weight,
                    "ratio": pg_stats["ratio"] * weight,
                    "clipfrac": pg_stats["clipfrac"] * weight,
                    "approx_kl": pg_stats["approx_kl"] * weight,
                    "value_clipfrac": vf_stats["value_clipfrac"] * weight,
                }
                sums["logprob_diff"] = max(sums.get("logprob_diff", 0.0), float(diff.max()))
            else:
                nll = example_loss(
                    policy, [ptx.examples[j] for j in micro], tokenizer.pad_token_id, ptx_tokens
                )
                loss = nll * config.pretrain.coef
                stats = {"ptx_loss": float(nll.detach())}
            accelerator.backward(loss * world)
        for key, value in stats.items():
            sums[key] = sums.get(key, 0.0) + value
    if world > 1:
        # Each process holds its share of every token-weighted mean: sum them; max the max.
        keys = sorted(k for k in sums if k != "logprob_diff")
        # float64: logged means are not rounded to float32 on the way through the reduce.
        as_tensor = partial(torch.tensor, dtype=torch.float64, device=accelerator.device)
        totals = accelerator.reduce(as_tensor([sums[k] for k in keys]), reduction="sum")
        sums.update(zip(keys, totals.tolist(), strict=True))
        diff = as_tensor([sums["logprob_diff"]])
        sums["logprob_diff"] = float(accelerator.gather(diff).max())
    return sums


@torch.no_grad()
def update_ema(ema: dict[str, torch.Tensor], model, decay: float) -> None:
    for name, value in model.state_dict().items():
        if value.dtype.is_floating_point:
            ema[name].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
        else:
            ema[name].copy_(value)

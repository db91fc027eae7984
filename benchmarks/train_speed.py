"""Tokens per second of rlhf_train's SFT and RM steps against TRL's SFTTrainer and RewardTrainer.

Same model (a small random Llama with SmolLM2's tokenizer by default, or --model), same data
(seed-task demonstrations; HH-RLHF harmless pairs), same batch size, fp32, no gradient
checkpointing, AdamW (fused on both sides: TRL's default, and rlhf_train's), gradients clipped to
norm 1. Each side runs --warmup steps, then --steps timed steps; "real tokens" are non-padding
tokens (for the RM: chosen + rejected). Needs `pip install trl`; rlhf_train never imports TRL.
Run: python benchmarks/train_speed.py [--model smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def build_model_dir(name: str, root: Path) -> str:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rlhf_common.model_aliases import resolve_pretrained

    if name != "tiny":
        return resolve_pretrained(name)
    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained("smollm2-135m-instruct"))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    return str(root / "model")


def demonstrations(n: int) -> list[dict]:
    from rlhf_train.data import load_demonstrations

    demos = load_demonstrations(DATA / "instructions" / "seed_tasks.jsonl")
    return [{"prompt": d.prompt, "completion": d.completion} for d in demos][:n]


def pairs(tokenizer, n: int, max_length: int) -> list[dict]:
    from rlhf_train.data import split_implicit_prompt

    rows = []
    with gzip.open(DATA / "hh_rlhf" / "harmless-base-test.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            prompt, chosen, rejected = split_implicit_prompt(r["chosen"], r["rejected"])
            longest = max(len(tokenizer(prompt + c)["input_ids"]) for c in (chosen, rejected))
            if longest + 1 <= max_length:  # both sides keep every pair whole
                rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
            if len(rows) == n:
                break
    return rows


def ours_sft(model_dir, rows, args) -> float:
    from accelerate import Accelerator

    from rlhf_train.config import SFTConfig
    from rlhf_train.data import Demonstration, batch_indices, tokenize_demonstrations
    from rlhf_train.modeling import load_causal_lm, load_tokenizer
    from rlhf_train.optim import adamw
    from rlhf_train.sft import sft_step

    tokenizer, model = load_tokenizer(model_dir), load_causal_lm(model_dir)
    demos = [Demonstration(r["prompt"], r["completion"], "bench") for r in rows]
    train, _ = tokenize_demonstrations(demos, tokenizer, args.max_length, "skip", model_dir)
    config = SFTConfig.model_validate(
        {
            "model": model_dir,
            "data": {"path": "unused.jsonl"},
            "output_dir": "unused",
            "optim": {"batch_size": args.batch_size, "micro_batch_size": args.batch_size},
        }
    )
    accelerator = Accelerator()
    optimizer = adamw(model.parameters(), lr=1e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    tokens, start = 0, None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start = time.perf_counter()
        batch = batch_indices(len(train), args.batch_size, 0, step)
        sft_step(accelerator, model, tokenizer, train, batch, config, None, step)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)  # as the recipe and TRL do
        optimizer.step()
        optimizer.zero_grad()
        if step >= args.warmup:
            tokens += sum(len(train[i].input_ids) for i in batch)
    return tokens / (time.perf_counter() - start)


def ours_rm(model_dir, rows, args) -> float:
    from accelerate import Accelerator

    from rlhf_train.config import RMConfig
    from rlhf_train.data import Ranking, batch_indices, tokenize_rankings
    from rlhf_train.modeling import load_scalar_model, load_tokenizer
    from rlhf_train.optim import adamw
    from rlhf_train.rm import rm_step

    tokenizer, model = load_tokenizer(model_dir), load_scalar_model(model_dir)
    rankings = [Ranking(r["prompt"], (r["chosen"], r["rejected"]), (0, 1), "bench") for r in rows]
    train, _ = tokenize_rankings(rankings, tokenizer, args.max_length, "skip", model_dir)
    config = RMConfig.model_validate(
        {
            "model": model_dir,
            "data": {"path": "unused.jsonl"},
            "output_dir": "unused",
            "optim": {"batch_size": args.batch_size, "micro_batch_size": args.batch_size},
        }
    )
    accelerator = Accelerator()
    optimizer = adamw(model.parameters(), lr=1e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    tokens, start = 0, None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start = time.perf_counter()
        batch = batch_indices(len(train), args.batch_size, 0, step)
        rm_step(accelerator, model, tokenizer, train, batch, config)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)  # as the recipe and TRL do
        optimizer.step()
        optimizer.zero_grad()
        if step >= args.warmup:
            tokens += sum(len(e.input_ids) for i in batch for e in train[i][0])
    return tokens / (time.perf_counter() - start)


class StepClock:
    """A TRL/transformers callback plus collator wrapper: real tokens and time of timed steps."""

    def __init__(self, collator, warmup: int, key_sets):
        from transformers import TrainerCallback

        self.collator, self.warmup, self.key_sets = collator, warmup, key_sets
        self.batch_tokens: list[int] = []
        self.times: list[float] = []
        clock = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                clock.times.append(time.perf_counter())

        self.callback = Callback()

    def __call__(self, features):
        batch = self.collator(features)
        self.batch_tokens.append(sum(int(batch[k].sum()) for k in self.key_sets if k in batch))
        return batch

    def tokens_per_second(self) -> float:
        tokens = sum(self.batch_tokens[self.warmup : len(self.times)])
        return tokens / (self.times[-1] - self.times[self.warmup - 1])


def trl_common(args, out: Path) -> dict:
    return dict(
        output_dir=str(out),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.warmup + args.steps,
        learning_rate=1e-5,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=10_000,
        dataloader_num_workers=0,
        max_length=args.max_length,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=1.0,
    )


def trl_sft(model_dir, rows, args, out: Path) -> float:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
        args=SFTConfig(**trl_common(args, out), packing=False, completion_only_loss=True),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    clock = StepClock(trainer.data_collator, args.warmup, ["attention_mask"])
    trainer.data_collator = clock
    trainer.add_callback(clock.callback)
    trainer.train()
    return clock.tokens_per_second()


def trl_rm(model_dir, rows, args, out: Path) -> float:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(**trl_common(args, out)),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    clock = StepClock(
        trainer.data_collator,
        args.warmup,
        ["attention_mask", "chosen_attention_mask", "rejected_attention_mask"],
    )
    trainer.data_collator = clock
    trainer.add_callback(clock.callback)
    trainer.train()
    return clock.tokens_per_second()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="'tiny' or a model path/alias")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = build_model_dir(args.model, root)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        n = args.batch_size * (args.warmup + args.steps)
        sft_rows, rm_rows = demonstrations(n), pairs(tokenizer, n, args.max_length)
        results = {"model": args.model, "threads": torch.get_num_threads(), **vars(args)}
        results["out"] = str(args.out) if args.out else None
        # Interleaved, so a change in machine load hits both sides of each ratio.
        results["ours_sft_tokens_per_s"] = ours_sft(model_dir, sft_rows, args)
        results["trl_sft_tokens_per_s"] = trl_sft(model_dir, sft_rows, args, root / "trl_sft")
        results["ours_rm_tokens_per_s"] = ours_rm(model_dir, rm_rows, args)
        results["trl_rm_tokens_per_s"] = trl_rm(model_dir, rm_rows, args, root / "trl_rm")
    results["sft_ratio_ours_over_trl"] = (
        results["ours_sft_tokens_per_s"] / results["trl_sft_tokens_per_s"]
    )
    results["rm_ratio_ours_over_trl"] = (
        results["ours_rm_tokens_per_s"] / results["trl_rm_tokens_per_s"]
    )
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

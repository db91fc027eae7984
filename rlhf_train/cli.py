"""Command line: `rlhf-train {sft,rm,ppo,pipeline} CONFIG` and `rlhf-train train-judge ...`; user
errors print a message and exit 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rlhf_common.errors import RlhfEvalError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlhf-train",
        description="InstructGPT-style SFT, K-way reward model and PPO-ptx training. "
        "Prefix with `accelerate launch --num_processes N -m rlhf_train` for data parallelism "
        "(on CPU: `accelerate launch --multi_gpu --num_processes N -m rlhf_train`, or torchrun).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("sft", "supervised fine-tuning on demonstrations"),
        ("rm", "reward model on K-way rankings or chosen/rejected pairs"),
        ("ppo", "PPO / PPO-ptx against a reward model"),
        ("pipeline", "SFT, RM and PPO-ptx in sequence, then curves"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("config", type=Path, help="YAML config file")
    judge = sub.add_parser(
        "train-judge",
        help="fine-tune a TruthfulQA truth/info judge; report its accuracy on held-out questions",
    )
    judge.add_argument("--kind", choices=("truth", "info"), required=True)
    judge.add_argument("--base", required=True, help="model alias, hub id or local folder")
    judge.add_argument("--data", type=Path, required=True, help="finetune_{truth,info}.jsonl")
    judge.add_argument("--out", type=Path, required=True, help="folder for the judge model")
    judge.add_argument("--holdout", type=float, default=0.2, help="share of questions held out")
    judge.add_argument("--max-examples", type=int, help="use a seeded sample of this many rows")
    judge.add_argument("--epochs", type=int, default=1)
    judge.add_argument("--lr", type=float, default=5e-5)
    judge.add_argument("--batch-size", type=int, default=8)
    judge.add_argument("--seed", type=int, default=0)
    judge.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train-judge":
            return run_train_judge(args)
        return run(args.command, args.config)
    except RlhfEvalError as error:
        print(f"rlhf-train: error: {error}", file=sys.stderr)
        return 2


def run(command: str, config_path: Path) -> int:
    # Imports are deferred so `--help` and config errors answer without loading torch models.
    from rlhf_train import config as schemas

    schema = {
        "sft": schemas.SFTConfig,
        "rm": schemas.RMConfig,
        "ppo": schemas.PPOConfig,
        "pipeline": schemas.PipelineConfig,
    }[command]
    config = schemas.load_config(config_path, schema)
    use_gloo_without_cuda()
    if command == "sft":
        from rlhf_train.sft import train_sft as recipe
    elif command == "rm":
        from rlhf_train.rm import train_rm as recipe
    elif command == "ppo":
        from rlhf_train.ppo import train_ppo as recipe
    else:
        from rlhf_train.pipeline import run_pipeline as recipe
    out = recipe(config)
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        # The process count shows whether a launcher's processes really formed one group.
        group = f" ({state.num_processes} processes)" if state.num_processes > 1 else ""
        print(f"rlhf-train {command}: wrote {out}{group}")
    return 0


def run_train_judge(args: argparse.Namespace) -> int:
    import json

    from rlhf_train.train_judge import EVAL_FILE, JudgeSettings, train_judge

    report = train_judge(
        JudgeSettings(
            kind=args.kind,
            base=args.base,
            data=args.data,
            out=args.out,
            holdout=args.holdout,
            max_examples=args.max_examples,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=not args.no_progress,
        )
    )
    print(json.dumps(report["heldout"], indent=2))
    if report["yes_tokens"] != 1:
        print(
            f"note: ' yes' is {report['yes_tokens']} tokens for this judge's tokenizer; its "
            "score is the probability of the whole sequence, not of one token."
        )
    print(f"\njudge: {args.out}\nevaluation: {args.out / EVAL_FILE}")
    return 0


def use_gloo_without_cuda() -> None:
    """Under a multi-process launcher (torchrun, `accelerate launch --multi_gpu`) on a machine
    without CUDA, ask accelerate for a CPU (gloo) group: by default it leaves each process on its
    own, every one training on the whole batch and writing the same output_dir."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "ACCELERATE_USE_CPU" not in os.environ:
        import torch

        if not torch.cuda.is_available():
            os.environ["ACCELERATE_USE_CPU"] = "true"

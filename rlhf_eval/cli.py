"""The rlhf-eval command: parse arguments, call one library function, map errors to exit codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlhf_eval.errors import RlhfEvalError

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        # Imported here, not at the top: loading the commands loads torch, which `--help` and
        # a mistyped argument never need.
        from rlhf_eval import commands

        return getattr(commands, f"{args.handler}_command")(args)
    except RlhfEvalError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "interrupted: finished samples are saved; run the same command to resume.",
            file=sys.stderr,
        )
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlhf-eval", description="Evaluate RLHF models against their SFT baseline."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a suite file; resumes an interrupted run")
    run.add_argument("suite", type=Path)
    run.add_argument("--run-name", help="run folder name (default: the suite's name)")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run of a different suite file with the same name",
    )
    run.add_argument("--no-cache", action="store_true", help="ignore the response cache")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--models",
        help="comma-separated model names: evaluate and report only these (the rest of the suite "
        "waits in the cache for a later run without --models)",
    )
    run.set_defaults(handler="run")

    report = commands.add_parser("report", help="re-render a run's markdown and HTML report")
    report.add_argument("run", type=Path)
    report.add_argument("--out", type=Path, help="folder for report.md/html (default: the run)")
    report.set_defaults(handler="report")

    compare = commands.add_parser("compare", help="paired differences between two runs")
    compare.add_argument("candidate", type=Path)
    compare.add_argument("baseline", type=Path)
    compare.add_argument("--model", help="the candidate run's model, if it has several")
    compare.add_argument("--baseline-model", help="the baseline run's model, if it has several")
    compare.add_argument(
        "--shared-items",
        action="store_true",
        help="pair two runs scored on different items (e.g. another `limit`) on the items both "
        "scored; without it such runs exit 2",
    )
    compare.set_defaults(handler="compare")

    gate = commands.add_parser(
        "gate", help="exit 1 when a metric drops beyond its margin at 95%% confidence"
    )
    gate.add_argument("candidate", type=Path)
    gate.add_argument(
        "--baseline",
        type=Path,
        help="baseline run (default: the candidate run's own baseline model)",
    )
    gate.add_argument(
        "--max-drop",
        action="append",
        default=[],
        metavar="METRIC=MARGIN",
        help="e.g. truthfulqa_mc2=0.02 (default: the suite's `gates`)",
    )
    gate.add_argument("--model", help="the candidate run's model, if it has several")
    gate.add_argument("--baseline-model", help="the baseline run's model, if it has several")
    gate.add_argument(
        "--shared-items",
        action="store_true",
        help="pair two runs scored on different items (e.g. another `limit`) on the items both "
        "scored; without it such runs exit 2",
    )
    gate.set_defaults(handler="gate")

    prompts = commands.add_parser(
        "prompts",
        help="write every generation prompt of a suite to JSONL, to generate elsewhere and "
        "read back with `backend: precomputed`",
    )
    prompts.add_argument("suite", type=Path)
    prompts.add_argument("out", type=Path, help="JSONL file to write")
    prompts.set_defaults(handler="prompts")

    check = commands.add_parser(
        "check-backend",
        help="answer a sample of a suite's requests with the transformers backend and with a "
        "model's own backend (vllm, a server); exit 1 when they differ beyond the tolerance",
    )
    check.add_argument("suite", type=Path)
    check.add_argument("--model", required=True, help="the suite model whose backend is checked")
    check.add_argument(
        "--reference",
        help="a `backend: hf` model of the suite to compare with (default: --model's weights "
        "under transformers)",
    )
    check.add_argument("--sample", type=int, default=64, help="log-likelihood requests compared")
    check.add_argument("--generations", type=int, default=16, help="greedy generations compared")
    check.add_argument("--max-new-tokens", type=int, default=64, help="cap on each generation")
    check.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="largest accepted difference of a summed log-prob (fp32: 1e-3; bf16 needs ~0.5)",
    )
    check.add_argument(
        "--min-agreement", type=float, default=1.0, help="share of identical generations needed"
    )
    check.add_argument("--seed", type=int, default=0, help="which requests are sampled")
    check.add_argument("--out", type=Path, help="also write the measurements as JSON here")
    check.set_defaults(handler="check_backend")

    tasks = commands.add_parser("tasks", help="list registered tasks and their options")
    tasks.set_defaults(handler="tasks")

    judge = commands.add_parser(
        "check-judge",
        help="a TruthfulQA truth/info judge's accuracy on labelled rows (e.g. the questions "
        "`rlhf-train train-judge` held out)",
    )
    judge.add_argument("--kind", choices=("truth", "info"), required=True)
    judge.add_argument("--judge", required=True, help="judge folder, hub id or model alias")
    judge.add_argument("--data", type=Path, required=True, help="rows as in finetune_truth.jsonl")
    judge.add_argument("--out", type=Path, help="also write the figures as JSON here")
    judge.add_argument("--no-progress", action="store_true", help="no progress bars")
    judge.set_defaults(handler="check_judge")

    label = commands.add_parser(
        "label",
        help="label a run's outputs in a local web app (blind, Likert, flags, ranking); "
        "or export or summarise the labels",
    )
    label.add_argument("run", type=Path)
    label.add_argument("--task", help="task entry to label (default: the first `instructions`)")
    label.add_argument("--host", default="127.0.0.1", help="address to listen on")
    label.add_argument("--port", type=int, default=8750)
    label.add_argument(
        "--export", type=Path, metavar="OUT.jsonl", help="write the rankings for `rlhf-train rm`"
    )
    label.add_argument(
        "--summary", action="store_true", help="print and write RUN/labels_summary.json"
    )
    label.set_defaults(handler="label")
    return parser


if __name__ == "__main__":
    sys.exit(main())

"""The rlhf-eval command: parse arguments, call one library function, map errors to exit codes."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rlhf_eval.backend_check import CheckSettings, check_backend, render
from rlhf_eval.distributed import start_processes, stop_processes
from rlhf_eval.errors import RlhfEvalError, RunError
from rlhf_eval.gate import compare_runs, gate_checks, gate_table, shared_items_note
from rlhf_eval.judge_check import check_judge
from rlhf_eval.labeling import label_command
from rlhf_eval.markdown_tables import markdown_table
from rlhf_eval.planner import build_tasks, prompt_rows, read_documents
from rlhf_eval.report import render_report
from rlhf_eval.report.markdown import (
    COMPARISON_COLUMNS,
    RESULT_COLUMNS,
    comparison_rows,
    result_rows,
)
from rlhf_eval.runner import default_report_dir, run_suite
from rlhf_eval.store import RunDir
from rlhf_eval.suite import load_suite
from rlhf_eval.tasks.base import registered_tasks

EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
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
    run.set_defaults(handler=_run)

    report = commands.add_parser("report", help="re-render a run's markdown and HTML report")
    report.add_argument("run", type=Path)
    report.add_argument("--out", type=Path, help="folder for report.md/html (default: the run)")
    report.set_defaults(handler=_report)

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
    compare.set_defaults(handler=_compare)

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
    gate.set_defaults(handler=_gate)

    prompts = commands.add_parser(
        "prompts",
        help="write every generation prompt of a suite to JSONL, to generate elsewhere and "
        "read back with `backend: precomputed`",
    )
    prompts.add_argument("suite", type=Path)
    prompts.add_argument("out", type=Path, help="JSONL file to write")
    prompts.set_defaults(handler=_prompts)

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
    check.set_defaults(handler=_check_backend)

    tasks = commands.add_parser("tasks", help="list registered tasks and their options")
    tasks.set_defaults(handler=_tasks)

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
    judge.set_defaults(handler=_check_judge)

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
    label.set_defaults(handler=_label)
    return parser


def _run(args) -> int:
    loaded = load_suite(args.suite)
    processes = start_processes()
    try:
        run = run_suite(
            loaded,
            run_name=args.run_name,
            overwrite=args.overwrite,
            use_cache=not args.no_cache,
            show_progress=not args.no_progress,
            processes=processes,
            models=args.models.split(",") if args.models else None,
        )
    finally:
        stop_processes(processes)
    if not processes.is_main:
        return EXIT_OK  # process 0 reports for the whole run
    markdown, html = render_report(run.path, default_report_dir(loaded, run))
    print(_summary(run.results()))
    print(f"\nrun: {run.path}\nreport: {markdown}\n        {html}")
    return EXIT_OK


def _report(args) -> int:
    markdown, html = render_report(RunDir.open(args.run).path, args.out)
    print(f"{markdown}\n{html}")
    return EXIT_OK


def _compare(args) -> int:
    comparisons = compare_runs(
        RunDir.open(args.candidate),
        RunDir.open(args.baseline),
        args.model,
        args.baseline_model,
        shared_items=args.shared_items,
    )
    print(markdown_table(COMPARISON_COLUMNS, comparison_rows(comparisons)))
    note = shared_items_note(comparisons)
    if note:
        print(f"\n{note}")
    return EXIT_OK


def _gate(args) -> int:
    candidate = RunDir.open(args.candidate)
    if args.baseline:
        comparisons = compare_runs(
            candidate,
            RunDir.open(args.baseline),
            args.model,
            args.baseline_model,
            shared_items=args.shared_items,
        )
    else:
        comparisons = candidate.results().comparisons
        if not comparisons:
            raise RunError(
                f"{candidate.path} has no baseline model to compare with. Fix: pass "
                "--baseline RUN, or give one suite model `role: baseline`."
            )
    margins = _margins(args.max_drop) or {g.metric: g.max_drop for g in candidate.manifest().gates}
    if not margins:
        raise RunError(
            "no gate to check. Fix: pass --max-drop METRIC=MARGIN, or add `gates` to the suite."
        )
    checks = gate_checks(comparisons, margins)
    print(gate_table(checks))
    return EXIT_OK if all(check.passed for check in checks) else EXIT_GATE_FAILED


def _margins(items: list[str]) -> dict[str, float]:
    margins = {}
    for item in items:
        metric, sep, value = item.partition("=")
        try:
            margin = float(value)
        except ValueError:
            margin = -1.0
        if not sep or not metric.strip() or not math.isfinite(margin) or margin < 0:
            raise RunError(
                f"--max-drop {item!r}: expected METRIC=MARGIN with a finite margin >= 0, e.g. "
                "truthfulqa_mc2=0.02"
            )
        margins[metric.strip()] = margin
    return margins


def _check_judge(args) -> int:
    report = check_judge(args.kind, args.judge, args.data, progress=not args.no_progress)
    print(json.dumps(report["evaluation"], indent=2))
    if report["yes_tokens"] != 1:
        print(
            f"note: ' yes' is {report['yes_tokens']} tokens for this judge's tokenizer; its "
            "score is the probability of the whole sequence, not of one token."
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return EXIT_OK


def _prompts(args) -> int:
    loaded = load_suite(args.suite)
    tasks = build_tasks(loaded)
    documents, skipped = read_documents(tasks)  # hub data out of reach: skipped, as in `run`
    for task_id, reason in skipped.items():
        print(f"skipped task {task_id}: {reason}", file=sys.stderr)
    rows = prompt_rows({task_id: tasks[task_id] for task_id in documents}, documents)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(
        f"{len(rows)} prompts written to {args.out}. Add an `output` field to each row (and any "
        "scores), then use the file as a model with `backend: precomputed`."
    )
    return EXIT_OK


def _label(args) -> int:
    label_command(args.run, args.task, args.host, args.port, args.export, args.summary)
    return EXIT_OK


def _check_backend(args) -> int:
    loaded = load_suite(args.suite)
    settings = CheckSettings(
        sample=args.sample,
        generations=args.generations,
        max_new_tokens=args.max_new_tokens,
        tolerance=args.tolerance,
        min_agreement=args.min_agreement,
        seed=args.seed,
    )
    check = check_backend(loaded, args.model, args.reference, settings)
    print(render(check))
    if args.out:
        args.out.write_text(check.to_json())
    return EXIT_OK if check.passed else EXIT_GATE_FAILED


def _tasks(args) -> int:
    for name, task in registered_tasks().items():
        print(f"{name}: {task.description}")
        print(f"  metrics: {', '.join(f'{m.name} ({m.kind})' for m in task.metrics)}")
        for field, info in task.Options.model_fields.items():
            default = "required" if info.is_required() else f"default {info.default!r}"
            print(f"  {field}: {info.annotation!s} ({default})".replace("typing.", ""))
    return EXIT_OK


def _summary(results) -> str:
    return markdown_table(RESULT_COLUMNS, result_rows(results))


if __name__ == "__main__":
    sys.exit(main())

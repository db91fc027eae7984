"""What each rlhf-eval subcommand does once its arguments are parsed (rlhf_eval/cli.py parses
them, and imports this module only when a command runs, so `rlhf-eval --help` answers without
loading torch)."""

from __future__ import annotations

import json
import math
import sys

from rlhf_eval.backend_check import CheckSettings, check_backend, render
from rlhf_eval.distributed import start_processes, stop_processes
from rlhf_eval.errors import RunError
from rlhf_eval.gate import compare_runs, gate_checks, gate_table, shared_items_note
from rlhf_eval.judge_check import check_judge
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

EXIT_OK, EXIT_GATE_FAILED = 0, 1


def run_command(args) -> int:
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


def report_command(args) -> int:
    markdown, html = render_report(RunDir.open(args.run).path, args.out)
    print(f"{markdown}\n{html}")
    return EXIT_OK


def compare_command(args) -> int:
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


def gate_command(args) -> int:
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


def check_judge_command(args) -> int:
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


def prompts_command(args) -> int:
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


def label_command(args) -> int:
    # Here, not at the top: the labeling app loads Flask, and vLLM 0.32 cannot start an engine
    # in a process that has (tests/test_run_imports.py).
    from rlhf_eval.labeling.command import label_command as run_labeling

    run_labeling(args.run, args.task, args.host, args.port, args.export, args.summary)
    return EXIT_OK


def check_backend_command(args) -> int:
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


def tasks_command(args) -> int:
    for name, task in registered_tasks().items():
        print(f"{name}: {task.description}")
        print(f"  metrics: {', '.join(f'{m.name} ({m.kind})' for m in task.metrics)}")
        for field, info in task.Options.model_fields.items():
            default = "required" if info.is_required() else f"default {info.default!r}"
            print(f"  {field}: {info.annotation!s} ({default})".replace("typing.", ""))
    return EXIT_OK


def _summary(results) -> str:
    return markdown_table(RESULT_COLUMNS, result_rows(results))

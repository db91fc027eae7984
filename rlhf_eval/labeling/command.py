"""`rlhf-eval label RUN`: serve the labeling app, or export or summarise a run's labels."""

from __future__ import annotations

from pathlib import Path

from rlhf_eval.labeling.app import DEFAULT_PORT, serve
from rlhf_eval.labeling.export import export_run_labels
from rlhf_eval.labeling.summary import render_summary, summarize_run_labels


def label_command(
    run: Path,
    task: str | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    export: Path | None = None,
    summary: bool = False,
) -> None:
    """With --export and/or --summary, do those and return; otherwise serve until Ctrl-C."""
    if export is None and not summary:
        serve(run, task, host, port)
        return
    if export is not None:
        done = export_run_labels(run, export, task)
        print(f"{done.written} rankings written to {done.path} (rlhf-train rm's K-way format).")
        if done.all_tied:
            print(f"{done.all_tied} all-tied rankings left out: they compare nothing.")
    if summary:
        result, path = summarize_run_labels(run, task)
        print(render_summary(result))
        print(f"\nsummary: {path}")

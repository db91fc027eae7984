"""Render a finished run directory into report.md and one self-contained report.html."""

from __future__ import annotations

from pathlib import Path

from rlhf_eval.report.html import render_html
from rlhf_eval.report.loading import load_run, load_sample_tables
from rlhf_eval.report.markdown import render_markdown
from rlhf_eval.report.overoptimization import (
    curve_views,
    overoptimization_html,
    overoptimization_markdown,
)
from rlhf_eval.report.preference import preference_html, preference_markdown, preference_report
from rlhf_eval.report.reward_model import (
    reward_model_html,
    reward_model_markdown,
    reward_model_section,
)

SAMPLE_CAP = 2000
"""Samples shown per (model, task) in the HTML browser; the rest stay in the .jsonl file."""

__all__ = ["SAMPLE_CAP", "render_html", "render_markdown", "render_report"]


def render_report(run_dir: Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write report.md and report.html for `run_dir` into `out_dir` (default: the run
    directory) and return their paths. Reads only the run directory's files; raises
    RunError when manifest.json or results.json is missing or invalid."""
    run = load_run(Path(run_dir))
    out = Path(out_dir) if out_dir is not None else run.run_dir
    markdown = render_markdown(run.results, run.manifest)
    preference = preference_report(run.run_dir, run.results, run.manifest)
    sections = []
    if preference is not None:
        markdown += preference_markdown(preference)
        sections.append(preference_html(preference))
    reward_models = reward_model_section(run.results)
    if reward_models is not None:
        markdown += reward_model_markdown(reward_models)
        sections.append(reward_model_html(reward_models))
    views = curve_views(run.results)
    markdown += overoptimization_markdown(views)
    overoptimization = overoptimization_html(views)
    if overoptimization is not None:
        sections.append(overoptimization)
    tables = load_sample_tables(run, SAMPLE_CAP)
    html = render_html(run.results, run.manifest, tables, SAMPLE_CAP, sections)
    out.mkdir(parents=True, exist_ok=True)
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(html, encoding="utf-8")
    return md_path, html_path

"""The report's preference section (issue 4): per judge and model the W/L/T counts, the win rate
beside its length-controlled value, position consistency and the correlation of verdicts with
length difference; agreement between judges; win rates per category; the paper's Figure 1 and
Figure 4 views; and a browser showing each prompt with every model's output and verdicts.

Everything is read from the run directory (results.json and the samples), like the rest of the
report.
"""

from __future__ import annotations

import base64
import math
import warnings
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from scipy.stats import spearmanr

from rlhf_eval.length_control import length_controlled_win_rate
from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.metrics.preference import (
    Verdict,
    agreement,
    outcome,
    position_consistency,
    win_rate_summary,
)
from rlhf_eval.report.preference_plots import flag_figure, win_rate_figure
from rlhf_eval.report.tables import format_ci, format_value
from rlhf_eval.results import EstimateRecord, Results
from rlhf_eval.stats import Estimate
from rlhf_eval.store import RunDir

JUDGED = ("win_rate", "alpaca_eval")
"""Entries whose win rate a judge gives: each gets a row of the summary with its LC win rate."""

BROWSER_CAP = 300
"""Prompts shown per instructions entry in the preference browser."""

SUMMARY_COLUMNS = (
    "judge entry",
    "judge",
    "model",
    "W / L / T",
    "failed",
    "win rate",
    "95% CI",
    "LC win rate",
    "LC 95% CI",
    "position consistency",
    "Spearman(verdict, length diff)",
)
AGREEMENT_COLUMNS = ("entries", "model", "n", "agreement", "95% CI", "Cohen's kappa")
CATEGORY_COLUMNS = ("judge entry", "category", "model", "win rate", "95% CI", "n", "failed")


@dataclass
class JudgeSummary:
    """One model against the baseline under one win_rate entry."""

    task: str
    model: str
    judge: str
    counts: dict[str, Any]
    """win_rate_summary's wins, losses, ties, failures, n."""
    estimate: EstimateRecord | None
    """The win rate and interval as results.json has them."""
    length_controlled: Estimate | None = None
    consistency: Estimate | None = None
    length_rho: float | None = None


@dataclass
class PreferenceReport:
    summaries: list[JudgeSummary] = field(default_factory=list)
    agreements: list[Row] = field(default_factory=list)
    categories: list[Row] = field(default_factory=list)
    win_rate_figure: bytes | None = None
    flag_figure: bytes | None = None
    browser: list[dict[str, Any]] = field(default_factory=list)

    def summary_rows(self) -> list[Row]:
        return [_summary_row(s) for s in self.summaries]


def preference_report(
    run_dir: Path, results: Results, manifest: dict[str, Any]
) -> PreferenceReport | None:
    """The preference section of a run, or None when it has no instructions, win_rate or
    ratings entry."""
    kinds = {t.id: t.name for t in results.tasks}
    if not {"instructions", "ratings", *JUDGED} & set(kinds.values()):
        return None
    store = RunDir(run_dir)
    baseline = next((m.name for m in results.models if m.role == "baseline"), None)
    models = [m.name for m in results.models]
    estimates = {(m.task, m.model, m.metric): m for m in results.metrics}
    iterations = int((manifest.get("stats") or {}).get("bootstrap_iterations", 2000))
    report = PreferenceReport()
    verdicts: dict[tuple[str, str], list[Verdict]] = {}
    for task in (t for t in results.tasks if t.name in JUDGED):
        against = _judged_against(task.name, task.options, baseline)
        for model in models:
            if model == baseline and task.name == "win_rate":
                continue
            samples = store.read_samples(model, task.id)
            found = _verdicts(samples, model, against, task.options.get("judge", ""))
            verdicts[(task.id, model)] = found
            row = estimates.get((task.id, model, "win_rate"))
            summary = JudgeSummary(
                task.id,
                model,
                str(task.options.get("judge", "")),
                win_rate_summary(found, iterations=min(iterations, 2000)),
                None if row is None else row.estimate,
            )
            _length_statistics(summary, samples, min(iterations, 2000))
            report.summaries.append(summary)
    report.agreements = _agreements(results, verdicts)
    report.categories = _category_rows(results, kinds)
    report.win_rate_figure = win_rate_figure(results, manifest, baseline)
    report.flag_figure = flag_figure(results)
    report.browser = _browser(store, results, baseline)
    return report


def _judged_against(kind: str, options: dict[str, Any], baseline: str | None) -> str:
    """Whom an entry judges the models against: the baseline model, or AlpacaEval's reference."""
    if kind == "alpaca_eval":
        return f"{options.get('reference', 'gpt4_turbo')} reference"
    return baseline or ""


def _lengths(details: dict[str, Any]) -> tuple[float, float] | None:
    """(model, other) output lengths of a verdict: tokens for win_rate entries, characters for
    AlpacaEval (its own unit for the LC win rate); None when not recorded."""
    for mine, theirs in (("tokens", "baseline_tokens"), ("length", "reference_length")):
        if details.get(mine) is not None and details.get(theirs) is not None:
            return float(details[mine]), float(details[theirs])
    return None


def _verdicts(samples: list[dict], model: str, baseline: str, judge: str) -> list[Verdict]:
    out = []
    for s in samples:
        if (s.get("details") or {}).get("is_baseline"):
            continue
        score = None if s.get("error") else (s.get("metrics") or {}).get("win_rate")
        out.append(Verdict(s["doc_id"], model, baseline, judge, score, s.get("error")))
    return out


def _length_statistics(summary: JudgeSummary, samples: list[dict], iterations: int) -> None:
    """LC win rate (AlpacaEval 2.0), position consistency and the verdicts' rank correlation
    with the length difference, from the judged samples."""
    scored = [
        s
        for s in samples
        if not s.get("error") and (s.get("metrics") or {}).get("win_rate") is not None
    ]
    details = [s.get("details") or {} for s in scored]
    pairs = [
        (
            (d.get("model_first") or {}).get("preference"),
            (d.get("model_second") or {}).get("preference"),
        )
        for d in details
        if "model_first" in d
    ]
    if pairs:
        summary.consistency = position_consistency(pairs)
    measured = [
        (s["metrics"]["win_rate"], *lengths, s.get("cluster") or s["doc_id"])
        for s, d in zip(scored, details, strict=True)
        if (lengths := _lengths(d)) is not None
    ]
    if len(measured) < 2:
        return
    scores, tokens, baseline_tokens, clusters = (list(c) for c in zip(*measured, strict=True))
    rates = length_controlled_win_rate(
        scores, tokens, baseline_tokens, clusters=clusters, iterations=iterations
    )
    summary.length_controlled = rates.length_controlled
    diff = np.asarray(tokens, dtype=float) - np.asarray(baseline_tokens, dtype=float)
    if np.ptp(diff) > 0 and np.ptp(scores) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = float(spearmanr(scores, diff).statistic)
        summary.length_rho = None if math.isnan(rho) else rho


def _agreements(results: Results, verdicts: dict[tuple[str, str], list[Verdict]]) -> list[Row]:
    """How often two win_rate entries (two judges) agree on the same prompts and model."""
    entries = [t.id for t in results.tasks if t.name == "win_rate"]
    models = sorted({model for _, model in verdicts}, key=[m.name for m in results.models].index)
    rows = []
    for a, b in combinations(entries, 2):
        for model in models:
            result = agreement(verdicts.get((a, model), []), verdicts.get((b, model), []))
            if result["n"] == 0:
                continue
            rows.append(
                {
                    "entries": f"{a} vs {b}",
                    "model": model,
                    "n": str(result["n"]),
                    "agreement": format_value(result["agreement"]),
                    "95% CI": f"[{result['lo']:.4f}, {result['hi']:.4f}]",
                    "Cohen's kappa": format_value(result["kappa"]),
                }
            )
    return rows


def _category_rows(results: Results, kinds: dict[str, str]) -> list[Row]:
    rows = []
    for m in results.subgroups:
        if kinds.get(m.task) != "win_rate" or m.metric != "win_rate" or m.by != "category":
            continue
        if m.estimate.n == 0 and m.n_failed == 0:
            continue  # the baseline against itself
        rows.append(
            {
                "judge entry": m.task,
                "category": m.group,
                "model": m.model,
                "win rate": format_value(m.estimate.point),
                "95% CI": format_ci(m.estimate),
                "n": str(m.estimate.n),
                "failed": str(m.n_failed),
            }
        )
    return rows


def _summary_row(s: JudgeSummary) -> Row:
    c = s.counts
    est = s.estimate
    lc = s.length_controlled
    return {
        "judge entry": s.task,
        "judge": s.judge,
        "model": s.model,
        "W / L / T": f"{c['wins']} / {c['losses']} / {c['ties']}",
        "failed": str(c["failures"]),
        "win rate": format_value(None if est is None else est.point),
        "95% CI": "n/a" if est is None else format_ci(est),
        "LC win rate": format_value(None if lc is None else lc.point),
        "LC 95% CI": "n/a" if lc is None else format_ci(EstimateRecord(**lc.to_dict())),
        "position consistency": "n/a"
        if s.consistency is None
        else f"{format_value(s.consistency.point)} (n {s.consistency.n})",
        "Spearman(verdict, length diff)": format_value(s.length_rho),
    }


# ---- the browser --------------------------------------------------------------------------------


def _browser(store: RunDir, results: Results, baseline: str | None) -> list[dict[str, Any]]:
    """Per instructions entry, up to BROWSER_CAP prompts, each with every model's output, its
    verdict under each win_rate entry judging that entry, and its ratings."""
    models = [m.name for m in results.models]
    views = []
    for entry in (t for t in results.tasks if t.name == "instructions"):
        judged = [t for t in results.tasks if t.options.get("of") == entry.id]
        outputs = {m: _by_doc(store.read_samples(m, entry.id)) for m in models}
        verdicts = {(t.id, m): _by_doc(store.read_samples(m, t.id)) for t in judged for m in models}
        order = list(dict.fromkeys(d for m in models for d in outputs[m]))
        prompts = []
        for doc_id in order[:BROWSER_CAP]:
            first = next(outputs[m][doc_id] for m in models if doc_id in outputs[m])
            details = first.get("details") or {}
            rows = []
            for model in models:
                sample = outputs[model].get(doc_id)
                if sample is None:
                    continue
                rows.append(
                    {
                        "model": model + (" (baseline)" if model == baseline else ""),
                        "output": sample.get("prediction") or "",
                        "error": sample.get("error") or "",
                        "verdicts": [
                            _verdict_text(t.name, t.id, verdicts[(t.id, model)].get(doc_id))
                            for t in judged
                            if verdicts[(t.id, model)].get(doc_id) is not None
                            and not (verdicts[(t.id, model)][doc_id].get("details") or {}).get(
                                "is_baseline"
                            )
                        ],
                    }
                )
            prompts.append(
                {
                    "doc_id": doc_id,
                    "category": str(details.get("category", "")),
                    "instruction": str(details.get("instruction") or first.get("prompt") or ""),
                    "input": str(details.get("input") or ""),
                    "closed_domain": bool(details.get("closed_domain")),
                    "outputs": rows,
                }
            )
        views.append({"task": entry.id, "total": len(order), "prompts": prompts})
    return views


def _by_doc(samples: list[dict]) -> dict[str, dict]:
    return {s["doc_id"]: s for s in samples}


def _verdict_text(kind: str, task: str, sample: dict) -> str:
    details = sample.get("details") or {}
    metrics = sample.get("metrics") or {}
    if sample.get("error"):
        return f"{task}: failed ({sample['error'][:120]})"
    if kind == "win_rate":
        said = outcome(metrics.get("win_rate"))
        if "reward" in details:
            extra = f"r = {details['reward']:.3f} vs {details['baseline_reward']:.3f}"
        else:
            first = (details.get("model_first") or {}).get("verdict")
            second = (details.get("model_second") or {}).get("verdict")
            extra = f"model as A: {first}, model as B: {second}"
        return f"{task}: {said} ({extra})"
    likert = metrics.get("likert")
    flags = [k for k, v in metrics.items() if k != "likert" and v == 1.0]
    shown = "n/a" if likert is None or likert != likert else f"{likert:.0f}/7"
    return f"{task}: Likert {shown}; flags: {', '.join(flags) or 'none'}"


# ---- markdown -----------------------------------------------------------------------------------


def preference_markdown(report: PreferenceReport) -> str:
    """The section as markdown (figures and the browser are in the HTML report)."""
    out = ["", "## Preference against the baseline", ""]
    rows = report.summary_rows()
    empty = "_No judged entries (win_rate, alpaca_eval)._"
    out.append(markdown_table(SUMMARY_COLUMNS, rows) if rows else empty)
    out += [
        "",
        "Ties count half. LC: AlpacaEval 2.0's length-controlled win rate (the judge's "
        "preference at zero length difference). Position consistency: the LLM judge's verdict "
        "unchanged when the outputs swap places. Failed: judge answers that could not be read, "
        "left out of the denominator.",
    ]
    if report.agreements:
        out += ["", "### Agreement between judges", ""]
        out.append(markdown_table(AGREEMENT_COLUMNS, report.agreements))
    if report.categories:
        out += ["", "### Win rate by category", ""]
        out.append(markdown_table(CATEGORY_COLUMNS, report.categories))
    return "\n".join(out) + "\n"


# ---- html ---------------------------------------------------------------------------------------


def preference_html(report: PreferenceReport) -> Markup:
    """The section as HTML for report.html (autoescaped; Markup so the report embeds it as is)."""
    environment = Environment(
        loader=PackageLoader("rlhf_eval.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    figures = [
        (
            "Win rate against the baseline by model (95% CI), as the paper's Figure 1",
            report.win_rate_figure,
        ),
        (
            "Likert and metadata flag prevalence by model (95% CI), as the paper's Figure 4",
            report.flag_figure,
        ),
    ]
    html = environment.get_template("preference.html.j2").render(
        summary_columns=SUMMARY_COLUMNS,
        summaries=report.summary_rows(),
        agreement_columns=AGREEMENT_COLUMNS,
        agreements=report.agreements,
        category_columns=CATEGORY_COLUMNS,
        categories=report.categories,
        figures=[
            (title, "data:image/png;base64," + base64.b64encode(png).decode())
            for title, png in figures
            if png is not None
        ],
        browser=report.browser,
        numeric={
            "failed",
            "win rate",
            "95% CI",
            "LC win rate",
            "LC 95% CI",
            "n",
            "agreement",
            "Cohen's kappa",
        },
    )
    return Markup(html)

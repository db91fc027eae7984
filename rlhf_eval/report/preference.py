"""The report's preference section (issue 4): per judge and model the W/L/T counts, the win rate
beside its length-controlled value, position consistency and the correlation of verdicts with
length difference; agreement between judges; win rates per category; the paper's Figure 1 and
Figure 4 views; and a browser showing each prompt with every model's output and verdicts.

Every statistic is read from results.json, where aggregation stored it
(rlhf_eval/diagnostics/judges.py); the samples only fill the browser.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from rlhf_eval.diagnostics.judges import JUDGED
from rlhf_eval.manifest import Manifest
from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.metrics.preference import outcome
from rlhf_eval.report.preference_plots import flag_figure, win_rate_figure
from rlhf_eval.report.tables import format_ci, format_value
from rlhf_eval.results import EstimateRecord, JudgeAgreementRecord, JudgeSummaryRecord, Results
from rlhf_eval.store import RunDir

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
class PreferenceReport:
    summaries: list[JudgeSummaryRecord] = field(default_factory=list)
    estimates: dict[tuple[str, str], EstimateRecord] = field(default_factory=dict)
    """The win rate of each (entry, model), as results.json's metrics have it."""
    agreements: list[Row] = field(default_factory=list)
    categories: list[Row] = field(default_factory=list)
    win_rate_figure: bytes | None = None
    flag_figure: bytes | None = None
    browser: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    """Why the judges' diagnostics are missing (a run aggregated before they were stored)."""

    def summary_rows(self) -> list[Row]:
        return [_summary_row(s, self.estimates.get((s.task, s.model))) for s in self.summaries]


def preference_report(
    run_dir: Path, results: Results, manifest: Manifest
) -> PreferenceReport | None:
    """The preference section of a run, or None when it has no instructions, win_rate or
    ratings entry. Every statistic is read from results.json; the samples only fill the
    browser."""
    kinds = {t.id: t.name for t in results.tasks}
    if not {"instructions", "ratings", *JUDGED} & set(kinds.values()):
        return None
    baseline = next((m.name for m in results.models if m.role == "baseline"), None)
    report = PreferenceReport(
        summaries=results.judge_summaries,
        estimates={
            (m.task, m.model): m.estimate for m in results.metrics if m.metric == "win_rate"
        },
        agreements=[_agreement_row(a) for a in results.judge_agreements],
        categories=_category_rows(results, kinds),
        win_rate_figure=win_rate_figure(results, manifest, baseline),
        flag_figure=flag_figure(results),
        browser=_browser(RunDir(run_dir), results, baseline),
    )
    if set(kinds.values()) & set(JUDGED) and not results.judge_summaries:
        report.note = (
            "This run's results.json was written before the judges' diagnostics (counts, "
            "length-controlled win rate, position consistency, agreement) were stored with it. "
            "Fix: run the suite again; it resumes, scoring nothing anew, and stores them."
        )
    return report


def _agreement_row(record: JudgeAgreementRecord) -> Row:
    share = record.agreement
    return {
        "entries": " vs ".join(record.entries),
        "model": record.model,
        "n": str(share.n),
        "agreement": format_value(share.point),
        "95% CI": f"[{share.lo:.4f}, {share.hi:.4f}]",
        "Cohen's kappa": format_value(record.kappa),
    }


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


def _summary_row(s: JudgeSummaryRecord, estimate: EstimateRecord | None) -> Row:
    lc = s.length_controlled
    consistency = s.position_consistency
    return {
        "judge entry": s.task,
        "judge": s.judge,
        "model": s.model,
        "W / L / T": f"{s.wins} / {s.losses} / {s.ties}",
        "failed": str(s.failures),
        "win rate": format_value(None if estimate is None else estimate.point),
        "95% CI": "n/a" if estimate is None else format_ci(estimate),
        "LC win rate": format_value(None if lc is None else lc.point),
        "LC 95% CI": "n/a" if lc is None else format_ci(lc),
        "position consistency": "n/a"
        if consistency is None
        else f"{format_value(consistency.point)} (n {consistency.n})",
        "Spearman(verdict, length diff)": format_value(s.length_spearman),
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
    if report.note:
        out += ["", f"_{report.note}_"]
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
        note=report.note,
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

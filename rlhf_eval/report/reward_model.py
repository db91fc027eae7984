"""The report's reward-model section: per reward model its accuracy beside the longer-response
baseline on the same pairs, accuracy where the chosen response is the longer and the shorter
one, K-way accuracy and Kendall tau, calibration (ECE and a reliability diagram), the
reward-length correlation; accuracy by subset with Holm-adjusted tests against chance;
per-subset paired comparisons of two reward models (Holm); and, on human labels, how often the
labelers agree with each other (the ceiling).

Everything is read from results.json: the metrics and subgroups, and the diagnostics that
aggregation computed for the section (rlhf_eval/diagnostics/reward_models.py).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from markupsafe import Markup
from matplotlib.figure import Figure

from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.report.html import jinja_environment
from rlhf_eval.report.plots import MODEL_COLORS, _png
from rlhf_eval.report.tables import WARNING_MARK
from rlhf_eval.results import EstimateRecord, ReliabilityBin, Results, RewardModelDiagnostics

SCORECARD_COLUMNS = (
    "entry",
    "reward model",
    "accuracy",
    "longer-response baseline",
    "shorter-response baseline",
    "accuracy, chosen longer",
    "accuracy, chosen shorter",
    "K-way accuracy",
    "Kendall tau",
    "ECE",
    "log loss",
    "reward-length r",
    "n",
    "failed",
)
SUBSET_COLUMNS = (
    "entry",
    "subset",
    "reward model",
    "accuracy",
    "longer-response baseline",
    "n",
    "p (vs 0.5)",
    "Holm p",
    "verdict",
)
PAIRED_COLUMNS = ("entry", "subset", "candidate - baseline", "delta", "95% CI", "n", "Holm p")
SCORECARD_NOTE = (
    "Accuracy: how often the reward model gives the response people preferred the higher "
    "reward (ties half; Wilson interval, clustered by prompt where prompts repeat). The "
    "longer-response baseline is the accuracy of always preferring the longer response on the "
    "same pairs, and the shorter-response baseline its mirror: a reward model that has learned "
    "more than length beats both. ECE: expected calibration error of "
    "sigmoid(r_w - r_l) (equal-width bins on [0.5, 1]); reward-length r: Pearson's r of reward and "
    "log(1 + characters), 0 without length bias, negative where shorter responses score higher "
    "(the task's abs_length_correlation is its size)."
)


@dataclass
class RewardModelSection:
    scorecard: list[Row] = field(default_factory=list)
    columns: tuple[str, ...] = SCORECARD_COLUMNS
    subsets: list[Row] = field(default_factory=list)
    paired_subsets: list[Row] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    reliability: bytes | None = None


def mirrored(e: EstimateRecord | None) -> EstimateRecord | None:
    """1 - p with the interval [1 - hi, 1 - lo]: the "always prefer the shorter response"
    rule on the same pairs (ties half), the mirror of the longer-response baseline."""
    if e is None or e.point is None:
        return e
    lo = None if e.hi is None else 1 - e.hi
    hi = None if e.lo is None else 1 - e.lo
    return e.model_copy(update={"point": 1 - e.point, "lo": lo, "hi": hi})


def interval_text(e: EstimateRecord | None) -> str:
    """0.687 [0.590, 0.770], with ⚠ where the interval carries a warning."""
    if e is None or e.point is None:
        return "n/a"
    ci = "" if e.lo is None or e.hi is None else f" [{e.lo:.3f}, {e.hi:.3f}]"
    return f"{e.point:.3f}{ci}" + (f" {WARNING_MARK}" if e.warning else "")


def reward_model_section(results: Results) -> RewardModelSection | None:
    """The section for a run's reward_model entries, or None when it has none."""
    entries = [t for t in results.tasks if t.name == "reward_model"]
    if not entries:
        return None
    stored = {d.task: d for d in results.reward_models}
    section = RewardModelSection()
    curves: dict[str, list[ReliabilityBin]] = {}
    for task in entries:
        found = stored.get(task.id) or RewardModelDiagnostics(task=task.id)
        section.scorecard += _scorecard_rows(results, task.id, found.signed_length_correlation)
        section.subsets += _subset_rows(results, found)
        section.paired_subsets += _paired_subset_rows(found)
        section.labels += _label_lines(found)
        for model, bins in found.reliability.items():
            curves[model if len(entries) == 1 else f"{model} ({task.id})"] = bins
    if len(stored) < len(entries):
        section.labels.append(
            "This run's results.json was written before the reward-model diagnostics (signed "
            "length correlation, subset tests, reliability bins, labelers' agreement) were "
            "stored with it. Fix: run the suite again; it resumes, scoring nothing anew."
        )
    shown = [
        c for c in SCORECARD_COLUMNS if any(r.get(c, "n/a") != "n/a" for r in section.scorecard)
    ]
    section.columns = tuple(shown)
    section.reliability = reliability_figure(curves)
    return section


def _scorecard_rows(
    results: Results, task: str, signed: dict[str, EstimateRecord | None]
) -> list[Row]:
    metrics = {(m.model, m.metric): m for m in results.metrics if m.task == task}
    by_length = {
        (g.model, g.group): g.estimate
        for g in results.subgroups
        if g.task == task and g.by == "chosen_length" and g.metric == "accuracy"
    }
    rows = []
    for model in results.models:

        def est(metric: str, name: str = model.name) -> EstimateRecord | None:
            found = metrics.get((name, metric))
            return found.estimate if found else None

        accuracy = metrics.get((model.name, "accuracy"))
        if accuracy is None:
            continue
        headline = (
            accuracy if accuracy.estimate.n else metrics.get((model.name, "ranking_accuracy"))
        )
        rows.append(
            {
                "entry": task,
                "reward model": model.name,
                "accuracy": interval_text(est("accuracy")),
                "longer-response baseline": interval_text(est("longer_baseline")),
                "shorter-response baseline": interval_text(mirrored(est("longer_baseline"))),
                "accuracy, chosen longer": interval_text(
                    by_length.get((model.name, "chosen longer"))
                ),
                "accuracy, chosen shorter": interval_text(
                    by_length.get((model.name, "chosen shorter"))
                ),
                "K-way accuracy": interval_text(est("ranking_accuracy")),
                "Kendall tau": interval_text(est("kendall_tau")),
                "ECE": interval_text(est("ece")),
                "log loss": interval_text(est("log_loss")),
                "reward-length r": interval_text(signed.get(model.name)),
                "n": str(headline.estimate.n if headline else 0),
                "failed": str(headline.n_failed if headline else 0),
            }
        )
    return rows


def _subset_rows(results: Results, found: RewardModelDiagnostics) -> list[Row]:
    """Accuracy per subset, each tested against chance; Holm across a model's subsets."""
    groups = {
        (g.model, g.group, g.metric): g.estimate
        for g in results.subgroups
        if g.task == found.task and g.by == "subset"
    }
    confidence = next((m.estimate.confidence for m in results.metrics), 0.95)
    rows = []
    for test in found.subset_tests:
        accuracy = groups.get((test.model, test.subset, "accuracy"))
        point = accuracy.point if accuracy else None
        resolved = test.p_holm is not None and test.p_holm < 1 - confidence
        rows.append(
            {
                "entry": found.task,
                "subset": test.subset,
                "reward model": test.model,
                "accuracy": interval_text(accuracy),
                "longer-response baseline": interval_text(
                    groups.get((test.model, test.subset, "longer_baseline"))
                ),
                "n": str(test.n),
                "p (vs 0.5)": "n/a" if test.p_value is None else f"{test.p_value:.3g}",
                "Holm p": "n/a" if test.p_holm is None else f"{test.p_holm:.3g}",
                "verdict": (
                    ("above chance" if (point or 0) > 0.5 else "below chance")
                    if resolved
                    else "not resolved"
                ),
            }
        )
    return rows


def _paired_subset_rows(found: RewardModelDiagnostics) -> list[Row]:
    """Each compared pair of reward models, per subset: the paired accuracy difference, Holm
    across the pair's subsets."""
    rows = []
    for test in found.paired_subsets:
        d = test.delta
        rows.append(
            {
                "entry": found.task,
                "subset": test.subset,
                "candidate - baseline": f"{test.candidate} - {test.baseline}",
                "delta": "n/a" if d.point is None else f"{d.point:+.3f}",
                "95% CI": "n/a"
                if d.lo is None or d.hi is None
                else f"[{d.lo:+.3f}, {d.hi:+.3f}]" + (f" {WARNING_MARK}" if d.warning else ""),
                "n": str(d.n),
                "Holm p": "n/a" if test.p_holm is None else f"{test.p_holm:.3g}",
            }
        )
    return rows


def _label_lines(found: RewardModelDiagnostics) -> list[str]:
    """On rankings people made: the accuracy is the reward model's agreement with them, and
    the labelers' agreement with each other is the ceiling."""
    if not found.labelled_rankings:
        return []
    lines = [
        f"{found.task}: {found.labelled_rankings} rankings by {found.labelers} labeler(s); the "
        "accuracy above is each reward model's agreement with these human labels."
    ]
    agree = found.labeler_agreement
    if agree is not None:
        lines.append(
            f"{found.task}: labelers agree with each other on {interval_text(agree)} "
            f"of {agree.n} pairs both ranked ({agree.method}): the ceiling for a reward "
            "model trained on such labels (InstructGPT: 72.6 ± 1.5%)."
        )
    return lines


def reliability_figure(curves: dict[str, list[ReliabilityBin]]) -> bytes | None:
    """The reliability diagram: per confidence bin, how often the response the reward model
    preferred was the one people preferred, against the probability sigmoid(|r_w - r_l|) it
    gave, with Wilson intervals per bin; the diagonal is perfect calibration."""
    if not curves:
        return None
    fig = Figure(figsize=(5.2, 4.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0.5, 1.0], [0.5, 1.0], color="#888888", linestyle=":", label="calibrated")
    for i, (label, bins) in enumerate(curves.items()):
        xs = [b.mean_confidence for b in bins]
        ys = [b.accuracy.point or 0.0 for b in bins]
        low = [max(y - (b.accuracy.lo or 0), 0) for y, b in zip(ys, bins, strict=True)]
        high = [max((b.accuracy.hi or 0) - y, 0) for y, b in zip(ys, bins, strict=True)]
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        ax.errorbar(xs, ys, yerr=[low, high], color=color, marker="o", capsize=3, label=label)
        for x, y, b in zip(xs, ys, bins, strict=True):
            ax.annotate(
                str(b.accuracy.n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7
            )
    ax.set_xlim(0.48, 1.02)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("reward model's probability for its preferred response, sigmoid(|r_w - r_l|)")
    ax.set_ylabel("share where people preferred it")
    ax.set_title("Reliability (95% Wilson intervals; n per bin)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def reward_model_markdown(section: RewardModelSection) -> str:
    out = ["", "## Reward models", "", SCORECARD_NOTE, ""]
    out.append(markdown_table(section.columns, section.scorecard))
    if section.subsets:
        out += ["", "### Accuracy by subset (score test against 0.5, Holm across subsets)", ""]
        out.append(markdown_table(SUBSET_COLUMNS, section.subsets))
    if section.paired_subsets:
        out += ["", "### Reward models compared by subset (paired, Holm across subsets)", ""]
        out.append(markdown_table(PAIRED_COLUMNS, section.paired_subsets))
    if section.labels:
        out += ["", "### Human labels", "", *(f"- {line}" for line in section.labels)]
    if section.reliability is not None:
        out += ["", "The reliability diagram is in report.html."]
    return "\n".join(out) + "\n"


def reward_model_html(section: RewardModelSection) -> Markup:
    """The section for report.html (autoescaped)."""
    figure = None
    if section.reliability is not None:
        figure = "data:image/png;base64," + base64.b64encode(section.reliability).decode()
    return Markup(
        jinja_environment()
        .get_template("reward_model.html.j2")
        .render(
            note=SCORECARD_NOTE,
            columns=section.columns,
            scorecard=section.scorecard,
            subset_columns=SUBSET_COLUMNS,
            subsets=section.subsets,
            paired_columns=PAIRED_COLUMNS,
            paired=section.paired_subsets,
            labels=section.labels,
            figure=figure,
        )
    )

"""The report's reward-model section: per reward model its accuracy beside the longer-response
baseline on the same pairs, accuracy where the chosen response is the longer and the shorter
one, K-way accuracy and Kendall tau, calibration (ECE and a reliability diagram), the
reward-length correlation; accuracy by subset with Holm-adjusted tests against chance;
per-subset paired comparisons of two reward models (Holm); and, on human labels, how often the
labelers agree with each other (the ceiling).

Intervals come from results.json (aggregate.py); the subset tests, the reliability diagram and
the labeler agreement are computed from the run's samples, like the rest of the report.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure
from scipy.stats import norm

from rlhf_eval import stats
from rlhf_eval.aggregate import compare_metric, estimate_corpus, valid_samples
from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.metrics.reward_model import (
    calibration_statistics,
    labeler_agreements,
    length_statistics,
    pearson_from_statistics,
    reliability_table,
)
from rlhf_eval.records import CorpusStatistic, MetricSpec
from rlhf_eval.report.html import jinja_environment
from rlhf_eval.report.plots import MODEL_COLORS, _png
from rlhf_eval.report.tables import WARNING_MARK
from rlhf_eval.results import EstimateRecord, Results
from rlhf_eval.store import RunDir
from rlhf_eval.suite import StatsSettings

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
ACCURACY = MetricSpec("accuracy", "proportion")


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


def reward_model_section(
    run_dir: Path, results: Results, manifest: dict[str, Any]
) -> RewardModelSection | None:
    """The section for a run's reward_model entries, or None when it has none."""
    entries = [t for t in results.tasks if t.name == "reward_model"]
    if not entries:
        return None
    store = RunDir(run_dir)
    settings = StatsSettings(**(manifest.get("stats") or {}))
    seed = int(manifest.get("seed") or 0)
    section = RewardModelSection()
    curves: dict[str, np.ndarray] = {}
    for task in entries:
        samples = {m.name: store.read_samples(m.name, task.id) for m in results.models}
        signed = {
            model: _signed_length_correlation(rows, settings, seed)
            for model, rows in samples.items()
        }
        section.scorecard += _scorecard_rows(results, task.id, signed)
        section.subsets += _subset_rows(results, task.id, samples, settings.confidence)
        section.paired_subsets += _paired_subset_rows(results, task.id, samples, settings, seed)
        section.labels += _label_lines(task.id, samples, settings.confidence)
        for model, rows in samples.items():
            sums = [
                calibration_statistics(s["details"]["margins"], s["details"]["calibration_bins"])
                for s in valid_samples(rows, "ece").values()
            ]
            if sums:
                label = model if len(entries) == 1 else f"{model} ({task.id})"
                curves[label] = np.sum(sums, axis=0)
    shown = [
        c for c in SCORECARD_COLUMNS if any(r.get(c, "n/a") != "n/a" for r in section.scorecard)
    ]
    section.columns = tuple(shown)
    section.reliability = reliability_figure(curves, settings.confidence)
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


SIGNED_LENGTH = MetricSpec(
    "abs_length_correlation",  # the samples that have the metric have rewards and lengths
    "corpus",
    corpus=CorpusStatistic(length_statistics, pearson_from_statistics),
)


def _signed_length_correlation(
    samples: list[dict], settings: StatsSettings, seed: int
) -> EstimateRecord | None:
    """Pearson's r of reward and log length with its sign (negative: shorter responses score
    higher), by the interval aggregate.py gives the task's |r|."""
    if not valid_samples(samples, SIGNED_LENGTH.name):
        return None
    return EstimateRecord(**estimate_corpus(SIGNED_LENGTH, samples, settings, seed).to_dict())


def score_test_p(successes: float, n: int) -> float | None:
    """Two-sided p-value of accuracy = 0.5 by the score test, the test Wilson's interval
    inverts: z = (p - 0.5) / sqrt(0.25 / n)."""
    if n == 0:
        return None
    z = (successes / n - 0.5) / math.sqrt(0.25 / n)
    return float(2 * norm.sf(abs(z)))


def _subset_rows(
    results: Results, task: str, samples: dict[str, list[dict]], confidence: float
) -> list[Row]:
    """Accuracy per subset, each tested against chance; Holm across a model's subsets."""
    groups = {
        (g.model, g.group, g.metric): g.estimate
        for g in results.subgroups
        if g.task == task and g.by == "subset"
    }
    rows = []
    for model, mine in samples.items():
        by_subset: dict[str, list[float]] = {}
        for s in valid_samples(mine, "accuracy").values():
            subset = s["details"].get("subset")
            if subset is not None:
                by_subset.setdefault(subset, []).append(s["metrics"]["accuracy"])
        names = sorted(by_subset)
        ps = [score_test_p(sum(by_subset[g]), len(by_subset[g])) for g in names]
        for subset, p, holm in zip(names, ps, stats.holm(ps), strict=True):
            accuracy = groups.get((model, subset, "accuracy"))
            point = accuracy.point if accuracy else None
            resolved = holm is not None and holm < 1 - confidence
            rows.append(
                {
                    "entry": task,
                    "subset": subset,
                    "reward model": model,
                    "accuracy": interval_text(accuracy),
                    "longer-response baseline": interval_text(
                        groups.get((model, subset, "longer_baseline"))
                    ),
                    "n": str(len(by_subset[subset])),
                    "p (vs 0.5)": "n/a" if p is None else f"{p:.3g}",
                    "Holm p": "n/a" if holm is None else f"{holm:.3g}",
                    "verdict": (
                        ("above chance" if (point or 0) > 0.5 else "below chance")
                        if resolved
                        else "not resolved"
                    ),
                }
            )
    return rows


def _paired_subset_rows(
    results: Results,
    task: str,
    samples: dict[str, list[dict]],
    settings: StatsSettings,
    seed: int,
) -> list[Row]:
    """Each compared pair of reward models, per subset: the paired accuracy difference
    (Tango's interval, as aggregate.py gives it overall), Holm across the pair's subsets."""
    pairs = {
        (c.candidate, c.baseline)
        for c in results.comparisons
        if c.task == task and c.metric == "accuracy"
    }
    rows = []
    for candidate, baseline in sorted(pairs):
        subsets = sorted({s["details"].get("subset") for s in samples.get(candidate, [])} - {None})
        if len(subsets) < 2:
            continue
        tests = []
        for subset in subsets:
            a = [s for s in samples[candidate] if s["details"].get("subset") == subset]
            b = [s for s in samples[baseline] if s["details"].get("subset") == subset]
            tests.append(compare_metric(ACCURACY, a, b, settings, seed))
        adjusted = stats.holm([t.p_value for t in tests])
        for subset, test, holm in zip(subsets, tests, adjusted, strict=True):
            d = test.delta
            rows.append(
                {
                    "entry": task,
                    "subset": subset,
                    "candidate - baseline": f"{candidate} - {baseline}",
                    "delta": "n/a" if d.point is None else f"{d.point:+.3f}",
                    "95% CI": "n/a"
                    if d.lo is None or d.hi is None
                    else f"[{d.lo:+.3f}, {d.hi:+.3f}]" + (f" {WARNING_MARK}" if d.warning else ""),
                    "n": str(d.n),
                    "Holm p": "n/a" if holm is None else f"{holm:.3g}",
                }
            )
    return rows


def _label_lines(task: str, samples: dict[str, list[dict]], confidence: float) -> list[str]:
    """On rankings people made: the accuracy is the reward model's agreement with them, and
    the labelers' agreement with each other is the ceiling."""
    rows = next(iter(samples.values()), [])
    labelled = [s for s in rows if (s.get("details") or {}).get("labeler")]
    if not labelled:
        return []
    lines = [
        f"{task}: {len(labelled)} rankings by "
        f"{len({s['details']['labeler'] for s in labelled})} labeler(s); the accuracy above is "
        "each reward model's agreement with these human labels."
    ]
    agreements = labeler_agreements(
        [
            (
                s["prompt"],
                s["details"]["labeler"],
                s["details"]["completions"],
                s["details"]["ranks"],
            )
            for s in labelled
        ]
    )
    if agreements:
        estimate = stats.proportion(
            [v for _, v in agreements], confidence, clusters=[p for p, _ in agreements]
        )
        agree = interval_text(EstimateRecord(**estimate.to_dict()))
        lines.append(
            f"{task}: labelers agree with each other on {agree} "
            f"of {estimate.n} pairs both ranked ({estimate.method}): the ceiling for a reward "
            "model trained on such labels (InstructGPT: 72.6 ± 1.5%)."
        )
    return lines


def reliability_figure(curves: dict[str, np.ndarray], confidence: float) -> bytes | None:
    """The reliability diagram: per confidence bin, how often the response the reward model
    preferred was the one people preferred, against the probability sigmoid(|r_w - r_l|) it
    gave, with Wilson intervals per bin; the diagonal is perfect calibration."""
    if not curves:
        return None
    fig = Figure(figsize=(5.2, 4.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0.5, 1.0], [0.5, 1.0], color="#888888", linestyle=":", label="calibrated")
    for i, (label, sums) in enumerate(curves.items()):
        table = reliability_table(sums)
        xs = [c for _, c, _, _ in table]
        ys = [a for _, _, a, _ in table]
        bounds = [stats.wilson(a * n, n, confidence) for _, _, a, n in table]
        low = [max(y - (b.lo or 0), 0) for y, b in zip(ys, bounds, strict=True)]
        high = [max((b.hi or 0) - y, 0) for y, b in zip(ys, bounds, strict=True)]
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        ax.errorbar(xs, ys, yerr=[low, high], color=color, marker="o", capsize=3, label=label)
        for x, y, (_, _, _, n) in zip(xs, ys, table, strict=True):
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
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

"""What the human labels say: win rate against the baseline, Likert means, flag rates, how often
labelers agree with each other (the paper's 72.6 +/- 1.5%) and with the run's judges."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from rlhf_common.stats import Estimate, bootstrap_mean, wilson
from rlhf_eval.errors import RunError
from rlhf_eval.labeling.export import group_rankings
from rlhf_eval.labeling.items import LabelingSet, load_labeling_set
from rlhf_eval.labeling.store import FLAGS, Label, LabelStore
from rlhf_eval.markdown_tables import escape_cell, markdown_table
from rlhf_eval.metrics.preference import LOSS, TIE, WIN, Verdict, agreement, win_rate_summary
from rlhf_eval.store import RunDir

SUMMARY_FILE = "labels_summary.json"
HUMAN = "human"
WIN_RATE_TASK = "win_rate"
"""The task whose samples hold a judge's verdict per prompt and model (metric `win_rate`)."""


def compare_ranks(rank: int, other: int) -> float:
    """The output ranked `rank` against one ranked `other` (1 = best): 1 preferred, 0.5 tied,
    0 not; ties count half, as in the paper's preference rate."""
    return WIN if rank < other else TIE if rank == other else LOSS


def human_verdicts(labels: Sequence[Label], baseline: str) -> list[Verdict]:
    """One verdict per (prompt, labeler, model other than the baseline) from the rankings; the
    judge is `human:<labeler>` so each labeler's verdicts can be set against a judge's."""
    verdicts = []
    for (doc_id, labeler), group in group_rankings(list(labels)).items():
        ranks = {x.model: x.rank for x in group}
        if baseline not in ranks:
            continue
        for model, rank in ranks.items():
            if model != baseline:
                score = compare_ranks(rank, ranks[baseline])
                verdicts.append(Verdict(doc_id, model, baseline, f"{HUMAN}:{labeler}", score))
    return verdicts


def labeler_agreement(
    labels: Sequence[Label], confidence: float = 0.95, iterations: int = 10_000, seed: int = 0
) -> Estimate:
    """Inter-annotator agreement: over every prompt two labelers ranked, every pair of labelers
    and every pair of outputs both ranked, the share where the two say the same about which
    output is better (A better, tied or B better: a tie against a preference is a disagreement,
    as in `preference.agreement`). The interval is a percentile bootstrap resampling whole
    prompts, since one prompt gives many correlated pairs."""
    by_doc: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for (doc_id, labeler), group in group_rankings(list(labels)).items():
        by_doc[doc_id][labeler] = {x.model: x.rank for x in group}
    values, clusters = [], []
    for doc_id, rankings in by_doc.items():
        for first, second in combinations(sorted(rankings), 2):
            a, b = rankings[first], rankings[second]
            shared = sorted(set(a) & set(b))
            for x, y in combinations(shared, 2):
                values.append(float(compare_ranks(a[x], a[y]) == compare_ranks(b[x], b[y])))
                clusters.append(doc_id)
    return bootstrap_mean(values, confidence, iterations, seed, clusters=clusters)


def summarize_labels(
    labeling: LabelingSet,
    labels: Sequence[Label],
    judge_verdicts: dict[str, list[Verdict]] | None = None,
) -> dict[str, Any]:
    """Every statistic of the labels of one task entry, as a JSON-ready dict."""
    confidence = labeling.stats.confidence
    iterations = labeling.stats.bootstrap_iterations
    seed = labeling.seed
    labels = list(labels)
    models = [m for m in labeling.models if any(x.model == m for x in labels)]
    by_model: dict[str, list[Label]] = {m: [x for x in labels if x.model == m] for m in models}
    closed = {i.doc_id for i in labeling.items if i.closed_domain}

    summary: dict[str, Any] = {
        "task": labeling.task_id,
        "baseline": labeling.baseline,
        "labelers": sorted({x.labeler for x in labels}),
        "prompts_labeled": len({x.doc_id for x in labels}),
        "rankings": len(group_rankings(labels)),
        "confidence": confidence,
    }
    verdicts = human_verdicts(labels, labeling.baseline) if labeling.baseline else []
    summary["win_rate"] = {
        m: win_rate_summary([v for v in verdicts if v.model == m], confidence, iterations, seed)
        for m in models
        if m != labeling.baseline and any(v.model == m for v in verdicts)
    }
    summary["likert"] = {
        m: bootstrap_mean(
            [x.likert for x in rows],
            confidence,
            iterations,
            seed,
            clusters=[x.doc_id for x in rows],
        ).to_dict()
        for m, rows in by_model.items()
    }
    summary["flags"] = {
        m: {
            flag: wilson(sum(flag in x.flags for x in rows), len(rows), confidence).to_dict()
            for flag in FLAGS
        }
        for m, rows in by_model.items()
    }
    # The paper's hallucination rate is over closed-domain prompts only (summarisation,
    # extraction, closed QA), where anything not in the input is made up.
    summary["hallucination_closed_domain"] = {
        m: wilson(
            sum("hallucination" in x.flags for x in rows if x.doc_id in closed),
            sum(x.doc_id in closed for x in rows),
            confidence,
        ).to_dict()
        for m, rows in by_model.items()
        if closed
    }
    summary["inter_annotator"] = labeler_agreement(labels, confidence, iterations, seed).to_dict()
    summary["judge_agreement"] = judge_agreement(verdicts, judge_verdicts or {}, confidence)
    return summary


def judge_agreement(
    human: list[Verdict], judges: dict[str, list[Verdict]], confidence: float = 0.95
) -> dict[str, dict[str, Any]]:
    """Each judge against the human labels on the prompts and models both judged: pooled over
    labelers (each labeler's verdict set against the judge's), then per labeler."""
    out: dict[str, dict[str, Any]] = {}
    labelers = sorted({v.judge for v in human})
    for judge, theirs in judges.items():
        # Pooled: key each verdict by (prompt, labeler) so a prompt two labelers ranked
        # counts twice, once against each of them.
        pooled_human = [_keyed(v, v.judge) for v in human]
        pooled_judge = [_keyed(v, who) for who in labelers for v in theirs]
        result = agreement(pooled_judge, pooled_human, confidence)
        result["per_labeler"] = {
            who.partition(":")[2]: agreement(theirs, [v for v in human if v.judge == who])
            for who in labelers
        }
        out[judge] = result
    return out


def _keyed(verdict: Verdict, who: str) -> Verdict:
    return Verdict(
        f"{verdict.doc_id}\x00{who}", verdict.model, verdict.baseline, verdict.judge, verdict.score
    )


def run_judge_verdicts(labeling: LabelingSet) -> dict[str, list[Verdict]]:
    """The verdicts of every `win_rate` entry of the run that judged the labeled task entry
    (its `of:` names it), keyed by that entry's id; a sample without a verdict (the baseline
    against itself) is left out and a failed one is a failure (score None)."""
    run = RunDir.open(labeling.run_path)
    manifest = run.manifest()
    try:
        suite = yaml.safe_load(manifest.suite) or {}
    except yaml.YAMLError:
        suite = {}
    entries = suite.get("tasks") if isinstance(suite, dict) else None
    verdicts: dict[str, list[Verdict]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("name") != WIN_RATE_TASK:
            continue
        if entry.get("of") != labeling.task_id:
            continue
        entry_id = str(entry.get("id") or entry["name"])
        found = []
        for model in labeling.models:
            if model == labeling.baseline:
                continue
            for sample in run.read_samples(model, entry_id):
                score = (sample.get("metrics") or {}).get(WIN_RATE_TASK)
                if score is None and sample.get("error") is None:
                    continue  # outside the metric's population, not a failure
                found.append(
                    Verdict(
                        str(sample["doc_id"]),
                        model,
                        labeling.baseline or "",
                        entry_id,
                        None if sample.get("error") else score,
                        sample.get("error"),
                    )
                )
        if found:
            verdicts[entry_id] = found
    return verdicts


def summarize_run_labels(run_path: Path, task: str | None = None) -> tuple[dict[str, Any], Path]:
    """Summarise a run's labels of one task entry and write RUN/labels_summary.json."""
    labeling = load_labeling_set(run_path, task)
    labels = LabelStore.for_run(labeling.run_path, create=False).labels(labeling.task_id)
    if not labels:
        raise RunError(
            f"{labeling.run_path}: no labels of task entry '{labeling.task_id}' yet. Fix: label "
            f"some prompts with `rlhf-eval label {labeling.run_path}` first (or pass --task)."
        )
    summary = summarize_labels(labeling, labels, run_judge_verdicts(labeling))
    return summary, write_summary(summary, labeling.run_path)


def write_summary(summary: dict[str, Any], run_path: Path) -> Path:
    path = Path(run_path) / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def _interval(point: float | None, lo: float | None, hi: float | None, digits: int = 3) -> str:
    if point is None:
        return "n/a"
    if lo is None or hi is None:
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _triple(estimate: dict[str, Any]) -> dict[str, float | None]:
    return {"point": estimate["point"], "lo": estimate["lo"], "hi": estimate["hi"]}


def render_summary(summary: dict[str, Any]) -> str:
    """The summary as markdown tables for the terminal or a pull request."""
    level = f"{summary['confidence']:.0%}"
    parts = [
        f"Human labels of task entry `{escape_cell(summary['task'])}`: "
        f"{summary['prompts_labeled']} prompts, {summary['rankings']} rankings by "
        f"{len(summary['labelers'])} labeler(s) ({', '.join(summary['labelers'])}). "
        f"Intervals are {level}."
    ]
    if summary["win_rate"]:
        rows = [
            {
                "model": m,
                "W/L/T": f"{s['wins']}/{s['losses']}/{s['ties']}",
                "win rate": _interval(s["win_rate"], s["lo"], s["hi"]),
                "n": str(s["n"]),
                "prompts": str(s["prompts"]),
            }
            for m, s in summary["win_rate"].items()
        ]
        parts.append(f"Win rate against {summary['baseline']} (ties count 0.5):")
        parts.append(markdown_table(("model", "W/L/T", "win rate", "n", "prompts"), rows))
    models = list(summary["likert"])
    rows = [
        {
            "": "Likert 1-7 (mean)",
            **{m: _interval(**_triple(summary["likert"][m]), digits=2) for m in models},
        }
    ] + [
        {
            "": FLAGS[flag],
            **{m: _interval(**_triple(summary["flags"][m][flag]), digits=2) for m in models},
        }
        for flag in FLAGS
    ]
    parts.append("Likert means (prompt-clustered bootstrap) and flag rates (Wilson) per model:")
    parts.append(markdown_table(("", *models), rows))
    if summary["hallucination_closed_domain"]:
        rows = [
            {"model": m, "hallucination": _interval(e["point"], e["lo"], e["hi"]), "n": str(e["n"])}
            for m, e in summary["hallucination_closed_domain"].items()
        ]
        parts.append("Hallucination on closed-domain prompts:")
        parts.append(markdown_table(("model", "hallucination", "n"), rows))
    ia = summary["inter_annotator"]
    parts.append(
        "Inter-annotator agreement (labeler pairs agreeing on which of two outputs is better): "
        + (
            f"{_interval(ia['point'], ia['lo'], ia['hi'])}, n = {ia['n']} comparisons"
            if ia["n"]
            else "n/a (no prompt was ranked by two labelers)"
        )
    )
    for judge, a in summary["judge_agreement"].items():
        kappa = "n/a" if a["kappa"] is None else f"{a['kappa']:.3f}"
        parts.append(
            f"Judge `{escape_cell(judge)}` vs human: agreement "
            f"{_interval(a['agreement'], a['lo'], a['hi'])}, kappa {kappa}, n = {a['n']}"
        )
    return "\n\n".join(parts)

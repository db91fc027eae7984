"""What a judged win rate needs beside its interval, computed once when a run is aggregated and
stored in results.json: the W/L/T counts, the length-controlled win rate (AlpacaEval 2.0), the
judge's position consistency, the rank correlation of its verdicts with the length difference,
and the agreement of two judges on the same prompts (Cohen's kappa). The report reads them; it
computes nothing."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping
from itertools import combinations
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from rlhf_eval.length_control import length_controlled_win_rate
from rlhf_eval.metrics.preference import Verdict, agreement, outcome, position_consistency
from rlhf_eval.results import EstimateRecord, JudgeAgreementRecord, JudgeSummaryRecord, TaskEntry
from rlhf_eval.run_settings import StatsSettings

JUDGED = ("win_rate", "alpaca_eval")
"""Entries whose win rate a judge gives: each gets a JudgeSummaryRecord per judged model."""

Samples = Mapping[tuple[str, str], list[dict]]
"""A run's samples by (model, task entry), in document order."""


def judge_diagnostics(
    tasks: list[TaskEntry],
    models: list[str],
    baseline: str | None,
    samples: Samples,
    settings: StatsSettings,
    seed: int,
) -> tuple[list[JudgeSummaryRecord], list[JudgeAgreementRecord]]:
    """Per judged entry and model, its summary; per pair of win_rate entries (two judges) and
    model, their agreement. Intervals use the suite's confidence, iterations and seed."""
    summaries: list[JudgeSummaryRecord] = []
    verdicts: dict[tuple[str, str], list[Verdict]] = {}
    for task in (t for t in tasks if t.name in JUDGED):
        against = _judged_against(task.name, task.options, baseline)
        judge = str(task.options.get("judge", ""))
        for model in models:
            if model == baseline and task.name == "win_rate":
                continue
            found = samples.get((model, task.id), [])
            verdicts[(task.id, model)] = _verdicts(found, model, against, judge)
            counts = Counter(outcome(v.score) for v in verdicts[(task.id, model)])
            scored = _scored(found)
            length_controlled, length_spearman = _length_statistics(scored, settings, seed)
            summaries.append(
                JudgeSummaryRecord(
                    task=task.id,
                    model=model,
                    judge=judge,
                    against=against,
                    wins=counts["win"],
                    losses=counts["loss"],
                    ties=counts["tie"],
                    failures=counts[None],
                    length_controlled=length_controlled,
                    position_consistency=_position_consistency(scored),
                    length_spearman=length_spearman,
                )
            )
    return summaries, _agreements(tasks, models, verdicts, settings.confidence)


def _judged_against(kind: str, options: dict[str, Any], baseline: str | None) -> str:
    """Whom an entry judges the models against: the baseline model, or AlpacaEval's reference."""
    if kind == "alpaca_eval":
        return f"{options.get('reference', 'gpt4_turbo')} reference"
    return baseline or ""


def _verdicts(samples: list[dict], model: str, baseline: str, judge: str) -> list[Verdict]:
    out = []
    for s in samples:
        if (s.get("details") or {}).get("is_baseline"):
            continue
        score = None if s.get("error") else (s.get("metrics") or {}).get("win_rate")
        out.append(Verdict(s["doc_id"], model, baseline, judge, score, s.get("error")))
    return out


def _position_consistency(scored: list[dict]) -> EstimateRecord | None:
    """Share of both-order judgements whose two verdicts agree; None for a judge asked once."""
    pairs = [
        (
            (d.get("model_first") or {}).get("preference"),
            (d.get("model_second") or {}).get("preference"),
        )
        for d in (s.get("details") or {} for s in scored)
        if "model_first" in d
    ]
    return EstimateRecord(**position_consistency(pairs).to_dict()) if pairs else None


def _scored(samples: list[dict]) -> list[dict]:
    return [
        s
        for s in samples
        if not s.get("error") and (s.get("metrics") or {}).get("win_rate") is not None
    ]


def _lengths(details: dict[str, Any]) -> tuple[float, float] | None:
    """(model, other) output lengths of a verdict: tokens for win_rate entries, characters for
    AlpacaEval (its own unit for the LC win rate); None when not recorded."""
    for mine, theirs in (("tokens", "baseline_tokens"), ("length", "reference_length")):
        if details.get(mine) is not None and details.get(theirs) is not None:
            return float(details[mine]), float(details[theirs])
    return None


def _length_statistics(
    scored: list[dict], settings: StatsSettings, seed: int
) -> tuple[EstimateRecord | None, float | None]:
    """The LC win rate (prompts resampled as clusters) and Spearman's rho of the verdicts with
    the length difference, from the scored samples whose two lengths are recorded."""
    measured = [
        (s["metrics"]["win_rate"], *found, s.get("cluster") or s["doc_id"])
        for s in scored
        if (found := _lengths(s.get("details") or {})) is not None
    ]
    if len(measured) < 2:
        return None, None
    scores, tokens, other_tokens, clusters = (list(c) for c in zip(*measured, strict=True))
    rates = length_controlled_win_rate(
        scores,
        tokens,
        other_tokens,
        clusters=clusters,
        confidence=settings.confidence,
        iterations=settings.bootstrap_iterations,
        seed=seed,
    )
    diff = np.asarray(tokens, dtype=float) - np.asarray(other_tokens, dtype=float)
    rho = None
    if np.ptp(diff) > 0 and np.ptp(scores) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(spearmanr(scores, diff).statistic)
        rho = None if math.isnan(value) else value
    return EstimateRecord(**rates.length_controlled.to_dict()), rho


def _agreements(
    tasks: list[TaskEntry],
    models: list[str],
    verdicts: dict[tuple[str, str], list[Verdict]],
    confidence: float,
) -> list[JudgeAgreementRecord]:
    """How often two win_rate entries (two judges) agree on the same prompts and model."""
    entries = [t.id for t in tasks if t.name == "win_rate"]
    judged = [m for m in models if any(model == m for _, model in verdicts)]
    records = []
    for a, b in combinations(entries, 2):
        for model in judged:
            result = agreement(
                verdicts.get((a, model), []), verdicts.get((b, model), []), confidence
            )
            if result["n"] == 0:
                continue
            records.append(
                JudgeAgreementRecord(
                    entries=[a, b],
                    model=model,
                    agreement=EstimateRecord(
                        point=result["agreement"],
                        lo=result["lo"],
                        hi=result["hi"],
                        n=result["n"],
                        method=result["method"],
                        confidence=confidence,
                    ),
                    kappa=result["kappa"],
                )
            )
    return records

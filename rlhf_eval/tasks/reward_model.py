"""The reward model as the thing evaluated: how often a scalar reward model orders human-ranked
responses as people did (InstructGPT sec. 3.5 and appendix C; RewardBench's accuracy), how much
of that a length rule alone gets, and whether its Bradley-Terry probabilities are calibrated.

Every model of the suite is a reward model (`backend: reward_model`: an `rlhf-train rm`
checkpoint, any one-output sequence classifier, or a causal LM as a judge). One document is one
human ranking: a preference pair (K = 2) or a K-way ranking, clustered by prompt. The model is
asked for the reward of every completion (or, with `pairwise: true`, for the log-odds of every
ranked pair, as a pairwise LLM judge gives them), and each untied pair's margin
m = r_winner - r_loser is scored. Two reward models are paired on the same rankings by
aggregate.py like any two models.

Metrics (per document; intervals from rlhf_common.stats via aggregate.py):
- accuracy (pairs): m > 0 (a tie counts half); Wilson.
- longer_baseline (pairs): the accuracy of "always prefer the longer response" (characters).
- ranking_accuracy, kendall_tau (K > 2): the share of a ranking's untied pairs ordered right
  (the paper's all-pairs accuracy, per prompt) and Kendall's tau-b; bootstrapped by prompt.
- ece: expected calibration error of sigmoid(m) over every comparison (a corpus statistic).
- log_loss: -log sigmoid(m), the RM's own loss, per ranking (averaged over its pairs).
- abs_length_correlation: |Pearson's r| of reward and log(1 + characters) over every
  completion, lower is better (the report also shows the signed r: which length it favours).
Breakdowns: `subset` (RewardBench's subsets, a row's subset/category) and `chosen_length`
(pairs whose chosen response is the longer / shorter one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from rlhf_eval.metrics.corpus import ABS_LENGTH_CORRELATION, CALIBRATION_ECE
from rlhf_eval.metrics.reward_model import (
    DEFAULT_BINS,
    expected_calibration_error,
    kendall_tau,
    length_outcome,
    length_statistics,
    log_length,
    log_loss,
    pair_outcome,
    pearson_from_statistics,
    ranked_pairs,
)
from rlhf_eval.records import Document, MetricSpec, Reward, RewardRequest, Sample
from rlhf_eval.tasks.base import Task, TaskOptions, register_task
from rlhf_eval.tasks.reward_data import PreferenceFormat, RankedItem, read_ranked_items


class RewardModelOptions(TaskOptions):
    data: str
    """Preference data: a .jsonl/.json/.parquet file (optionally .gz; relative to the suite
    file), `hub:<dataset id>`, or `labels:<run folder>` (the rankings given in `rlhf-eval
    label`)."""
    format: PreferenceFormat = "auto"
    """hh_rlhf, preference (TRL), kway, rewardbench; `auto` tells it from the first row."""
    skip: int = Field(0, ge=0)
    """Leave out the first `skip` rankings: those a reward model was trained on (`rlhf-train
    rm` with `data.limit` trains on the first rows of a file)."""
    pairwise: bool = False
    """Ask each model for the log-odds of every ranked pair (a pairwise LLM judge) instead of
    a reward per completion; kendall_tau and abs_length_correlation then need rewards and are
    left out."""
    calibration_bins: int = Field(DEFAULT_BINS, ge=2, le=50)
    """Equal-width bins of the preferred response's probability on [0.5, 1], for ECE."""


CHOSEN_LONGER, CHOSEN_SHORTER, SAME_LENGTH = "chosen longer", "chosen shorter", "same length"


@register_task
class RewardModelTask(Task):
    name = "reward_model"
    description = (
        "A reward model on human-ranked responses: pairwise accuracy (Wilson), the "
        "longer-response baseline, K-way accuracy and Kendall tau, calibration (ECE), its "
        "loss, and the correlation of reward with length."
    )
    version = 2  # 2: the length metric is |r| (abs_length_correlation)
    Options = RewardModelOptions
    metrics = (
        MetricSpec(
            "accuracy",
            "proportion",
            description="pairs: the reward model prefers the response people chose (ties half)",
        ),
        MetricSpec(
            "longer_baseline",
            "proportion",
            description="pairs: 'always prefer the longer response' (characters; ties half)",
        ),
        MetricSpec(
            "ranking_accuracy",
            "mean",
            description="K > 2: share of a ranking's untied pairs the reward model orders right",
        ),
        MetricSpec(
            "kendall_tau",
            "mean",
            description="K > 2: Kendall's tau-b between the ranking and the rewards",
        ),
        MetricSpec(
            "ece",
            "corpus",
            higher_is_better=False,
            description="expected calibration error of sigmoid(r_w - r_l), folded on [0.5, 1]",
            corpus=CALIBRATION_ECE,
        ),
        MetricSpec(
            "log_loss",
            "mean",
            higher_is_better=False,
            description="-log sigmoid(r_w - r_l), the reward model's loss, per ranking",
        ),
        MetricSpec(
            "abs_length_correlation",
            "corpus",
            higher_is_better=False,
            description="|Pearson r| of reward and log(1 + characters); 0: no length bias",
            corpus=ABS_LENGTH_CORRELATION,
        ),
    )
    breakdowns = ("subset", "chosen_length")
    options: RewardModelOptions

    def documents(self) -> list[Document]:
        items = read_ranked_items(self.options.data, self.base_dir, self.options.format)
        items = items[self.options.skip :]
        if self.options.limit:
            items = items[: self.options.limit]
        return [Document(item.id, _data(item), cluster=item.cluster) for item in items]

    def requests(self, doc: Document) -> list[RewardRequest]:
        data = doc.data
        if data["problem"]:
            return []
        prompt, completions = _prompt(data["prompt"]), data["completions"]
        if self.options.pairwise:
            return [
                RewardRequest(prompt, completions[w], versus=completions[lo])
                for w, lo in ranked_pairs(data["ranks"])
            ]
        return [RewardRequest(prompt, c) for c in completions]

    def score(self, doc: Document, responses: list[Reward]) -> Sample:
        data = doc.data
        record = {
            "source": data["source"],
            "subset": data["subset"],
            "labeler": data["labeler"],
            "completions": data["completions"],
            "ranks": data["ranks"],
        }
        if data["problem"]:
            return Sample(
                doc_id=doc.id,
                prompt=_prompt_text(data["prompt"]),
                target=data["ranks"],
                prediction=None,
                metrics={m.name: None for m in self.metrics},
                details=record,
                error=data["problem"],
            )
        ranks, completions = data["ranks"], data["completions"]
        pairs = ranked_pairs(ranks)
        rewards = None if self.options.pairwise else [r.score for r in responses]
        if rewards is None:
            margins = [r.score for r in responses]
        else:
            margins = [rewards[w] - rewards[lo] for w, lo in pairs]
        outcomes = [pair_outcome(m) for m in margins]
        lengths = [len(c) for c in completions]
        k = len(completions)
        pair = k == 2
        w, lo = pairs[0]
        record.update(
            rewards=rewards,
            margins=margins,
            lengths=lengths,
            log_lengths=[log_length(c) for c in completions],
            calibration_bins=self.options.calibration_bins,
        )
        if pair:
            record["chosen_length"] = (
                CHOSEN_LONGER
                if lengths[w] > lengths[lo]
                else CHOSEN_SHORTER
                if lengths[w] < lengths[lo]
                else SAME_LENGTH
            )
        metrics: dict[str, float | None] = {
            "accuracy": outcomes[0] if pair else None,
            "longer_baseline": length_outcome(lengths[w], lengths[lo]) if pair else None,
            "ranking_accuracy": None if pair else float(np.mean(outcomes)),
            "kendall_tau": None if pair or rewards is None else kendall_tau(ranks, rewards),
            # Corpus metrics: the per-sample value is for reading samples only.
            "ece": expected_calibration_error(margins, self.options.calibration_bins),
            "log_loss": float(np.mean([log_loss(m) for m in margins])),
            "abs_length_correlation": None if rewards is None else _own_correlation(record),
        }
        return Sample(
            doc_id=doc.id,
            prompt=_prompt_text(data["prompt"]),
            target=ranks,
            prediction=rewards if rewards is not None else margins,
            metrics=metrics,
            details=record,
        )

    def notes(self, samples: dict[str, list[dict[str, Any]]] | None = None) -> list[str]:
        out = [
            "accuracy counts a tie (equal rewards) as half right; longer_baseline is the "
            "accuracy of always preferring the longer response (characters) on the same pairs."
        ]
        if self.options.skip:
            out.append(f"the first {self.options.skip} rankings of the data are left out (skip).")
        if self.options.pairwise:
            out.append(
                "pairwise: each ranked pair's log-odds come from the model in one request "
                "(a pairwise judge asks both orders); no reward per completion, so no Kendall "
                "tau or length correlation."
            )
        failed = _failures(samples or {})
        if failed:
            count, first = failed
            out.append(
                f"{count} ranking(s) could not be scored and are counted as failures, not "
                f"zeros; the first: {first}"
            )
        return out


def _data(item: RankedItem) -> dict[str, Any]:
    return {
        "prompt": item.prompt if isinstance(item.prompt, str) else [list(t) for t in item.prompt],
        "completions": list(item.completions),
        "ranks": list(item.ranks),
        "subset": item.subset,
        "labeler": item.labeler,
        "source": item.source,
        "problem": item.problem(),
    }


def _prompt(prompt: str | list) -> str | tuple[tuple[str, str], ...]:
    """A document's prompt as a RewardRequest holds it (hashable turns)."""
    return prompt if isinstance(prompt, str) else tuple((role, text) for role, text in prompt)


def _prompt_text(prompt: str | list) -> str:
    """The prompt as the report shows it: raw text, or the turns in HH-RLHF markup."""
    if isinstance(prompt, str):
        return prompt
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    return "".join(f"\n\n{names.get(role, role)}: {text}" for role, text in prompt).strip()


def _own_correlation(record: dict[str, Any]) -> float:
    """|r| of this ranking's own rewards and log lengths (1 for a pair); 0 where it is
    undefined (equal lengths or rewards), for reading samples only."""
    r = float(pearson_from_statistics(length_statistics(record)))
    return 0.0 if np.isnan(r) else abs(r)


def _failures(samples: dict[str, list[dict[str, Any]]]) -> tuple[int, str] | None:
    """How many rankings failed for the model with the most failures, and the first error."""
    worst: tuple[int, str] | None = None
    for rows in samples.values():
        errors = [s["error"] for s in rows if s.get("error")]
        if errors and (worst is None or len(errors) > worst[0]):
            worst = (len(errors), errors[0])
    return worst

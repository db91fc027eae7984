"""`rlhf-eval check-judge`: a TruthfulQA truth or info judge's accuracy on labelled judge rows
(rlhf_common.judge_data), e.g. the questions `rlhf-train train-judge` held out. Each prompt is
scored the way a suite scores it: the transformers backend's log P(" yes") after the prompt,
positive when >= 0.5 (rlhf_eval.judges.truthfulqa)."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from rlhf_common.judge_data import YES, JudgeExample, JudgeKind, read_judge_data
from rlhf_common.model_aliases import resolve_pretrained
from rlhf_common.stats import wilson
from rlhf_eval.judges.truthfulqa import is_positive, yes_probability
from rlhf_eval.models.hf import HFBackend
from rlhf_eval.records import LoglikelihoodRequest

SCORING_CHUNK = 64
"""Prompts per progress-bar step."""


def check_judge(kind: JudgeKind, judge: str, data: Path, progress: bool = True) -> dict:
    """The judge's figures on the rows of `data`, and how many tokens " yes" is for it."""
    examples = read_judge_data(data, kind)
    scores, yes_tokens = score_judge(judge, examples, progress=progress)
    return {
        "judge": judge,
        "kind": kind,
        "data": str(data),
        "evaluation": {
            "rows": len(examples),
            "questions": len({e.question for e in examples}),
            **judge_accuracy(scores, [e.label for e in examples]),
        },
        "yes_tokens": yes_tokens,
    }


def judge_accuracy(scores: list[float], labels: list[bool]) -> dict:
    """Accuracy of the P(" yes") >= 0.5 verdicts (Wilson 95% CI), balanced accuracy (the mean of
    the yes- and no-class recalls), and the label balance with its majority-class baseline."""
    if len(scores) != len(labels) or not labels:
        raise ValueError("judge_accuracy needs one score per label and at least one label")
    predicted = [is_positive(s) for s in scores]
    correct = sum(p == y for p, y in zip(predicted, labels, strict=True))
    n, n_yes = len(labels), sum(labels)
    recalls = []
    for cls in (True, False):
        members = [p for p, y in zip(predicted, labels, strict=True) if y == cls]
        if members:
            recalls.append(sum(p == cls for p in members) / len(members))
    return {
        "accuracy": wilson(correct, n).to_dict(),
        "balanced_accuracy": sum(recalls) / len(recalls),
        "n": n,
        "share_yes": n_yes / n,
        "majority_baseline": max(n_yes, n - n_yes) / n,
        "predicted_yes": sum(predicted) / n,
    }


def score_judge(
    judge: str,
    examples: list[JudgeExample],
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[list[float], int]:
    """P(" yes") of each example's prompt under the judge (a folder, hub id or alias), as a
    suite's judge computes it; and how many tokens " yes" is in its tokenizer."""
    backend = HFBackend("judge", resolve_pretrained(judge), batch_size=batch_size)
    scores, yes_tokens = [], 1
    try:
        chunks = range(0, len(examples), SCORING_CHUNK)
        for start in tqdm(chunks, desc="judge rows", disable=not progress):
            batch = examples[start : start + SCORING_CHUNK]
            responses = backend.loglikelihood([LoglikelihoodRequest(e.prompt, YES) for e in batch])
            scores += [yes_probability(r) for r in responses]
            yes_tokens = max([yes_tokens, *(r.n_tokens for r in responses)])
    finally:
        backend.close()
    return scores, yes_tokens

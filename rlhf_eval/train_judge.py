"""`rlhf-eval train-judge`: fine-tune a causal LM into a TruthfulQA truth or info judge on the
TruthfulQA authors' judge data, holding out whole questions, and report its held-out accuracy.

The data are the authors' fine-tuning files ({"prompt": "Q: ...\\nA: ...\\nTrue:", "completion":
" yes" / " no"}; "Helpful:" for info). Rows are split by QUESTION, so no held-out question's
answers were seen in training (the authors also validated on held-out questions). Training is
rlhf_train's SFT recipe on the completion only (the prompt is masked; the recipe appends EOS
after " yes"/" no", which the judge protocol never reads). The held-out judge is then scored the
way a suite scores it: the rlhf-eval transformers backend's log P(" yes") after each prompt,
positive when >= 0.5 (rlhf_eval.judges.truthfulqa).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from rlhf_common.stats import wilson
from rlhf_eval.errors import DataError
from rlhf_eval.judges.truthfulqa import (
    CUES,
    NO,
    YES,
    JudgeKind,
    is_positive,
    question_of,
    yes_probability,
)
from rlhf_eval.models.base import LoglikelihoodRequest
from rlhf_train.errors import TrainConfigError

EVAL_FILE = "judge_eval.json"
SCORING_CHUNK = 64
"""Held-out prompts per progress-bar step."""


@dataclass(frozen=True)
class JudgeExample:
    prompt: str
    completion: str
    question: str

    @property
    def label(self) -> bool:
        return self.completion == YES


@dataclass(frozen=True)
class JudgeSettings:
    kind: JudgeKind
    base: str
    """An rlhf-eval alias, a hub id or a local model folder."""
    data: Path
    out: Path
    holdout: float = 0.2
    max_examples: int | None = None
    epochs: int = 1
    lr: float = 5e-5
    batch_size: int = 8
    seed: int = 0
    max_length: int = 512
    progress: bool = True


def read_judge_data(path: Path, kind: JudgeKind) -> list[JudgeExample]:
    """The rows of a judge file, each checked: a `Q: ...\\nA: ...\\n{cue}` prompt and a yes/no
    completion."""
    if not path.is_file():
        raise DataError(
            f"judge data {path} does not exist. Fix: pass --data the TruthfulQA authors' "
            f"finetune_{kind}.jsonl (e.g. ../shared/data/truthfulqa/finetune_{kind}.jsonl)."
        )
    cue = CUES[kind]
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not valid JSON ({error.msg}).") from error
        prompt, completion = record.get("prompt"), record.get("completion")
        if not isinstance(prompt, str) or completion not in (YES, NO):
            raise DataError(
                f"{where}: each row needs `prompt` (text) and `completion` ' yes' or ' no'; got "
                f"completion {completion!r}. Fix the row."
            )
        question = question_of(prompt)
        if question is None or not prompt.endswith(f"\n{cue}"):
            raise DataError(
                f"{where}: field `prompt` must read 'Q: <question>\\nA: <answer>\\n{cue}' for a "
                f"{kind} judge. Fix: pass the finetune_{kind}.jsonl file, or --kind "
                f"{'info' if kind == 'truth' else 'truth'} if this is the other judge's data."
            )
        examples.append(JudgeExample(prompt, completion, question))
    if not examples:
        raise DataError(f"{path}: no rows. Fix: pass a non-empty judge data file.")
    return examples


def sample_rows(examples: list[JudgeExample], limit: int | None, seed: int) -> list[JudgeExample]:
    """At most `limit` rows, a seeded random sample kept in file order (quick runs)."""
    if limit is None or limit >= len(examples):
        return examples
    chosen = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in chosen]


def split_by_question(
    examples: list[JudgeExample], holdout: float, seed: int
) -> tuple[list[JudgeExample], list[JudgeExample]]:
    """(train, held-out): round(holdout x questions) questions, drawn by a seeded shuffle, give
    all their rows to held-out; at least one question lands on each side."""
    questions = sorted({e.question for e in examples})
    if len(questions) < 2:
        raise DataError(
            f"the judge data hold {len(questions)} distinct question(s); holding out by "
            "question needs at least two. Fix: pass more rows (or a larger --max-examples)."
        )
    random.Random(seed).shuffle(questions)
    n_held = min(max(round(holdout * len(questions)), 1), len(questions) - 1)
    held = set(questions[:n_held])
    train = [e for e in examples if e.question not in held]
    return train, [e for e in examples if e.question in held]


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
    folder: Path,
    examples: list[JudgeExample],
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[list[float], int]:
    """P(" yes") of each example's prompt under the judge saved in `folder`, as a suite's judge
    computes it; and how many tokens " yes" is in its tokenizer."""
    from tqdm.auto import tqdm

    from rlhf_eval.models.hf import HFBackend

    backend = HFBackend("judge", str(folder), batch_size=batch_size)
    scores, yes_tokens = [], 1
    try:
        chunks = range(0, len(examples), SCORING_CHUNK)
        for start in tqdm(chunks, desc="held-out", disable=not progress):
            batch = examples[start : start + SCORING_CHUNK]
            responses = backend.loglikelihood([LoglikelihoodRequest(e.prompt, YES) for e in batch])
            scores += [yes_probability(r) for r in responses]
            yes_tokens = max([yes_tokens, *(r.n_tokens for r in responses)])
    finally:
        backend.close()
    return scores, yes_tokens


def train_judge(settings: JudgeSettings) -> dict:
    """Split, fine-tune, score the held-out questions; write and return `judge_eval.json`."""
    _check(settings)
    examples = sample_rows(
        read_judge_data(settings.data, settings.kind), settings.max_examples, settings.seed
    )
    train_rows, held = split_by_question(examples, settings.holdout, settings.seed)
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    _write_rows(out / "judge_train.jsonl", train_rows)
    _write_rows(out / "judge_heldout.jsonl", held)

    from rlhf_train.config import SFTConfig
    from rlhf_train.sft import train_sft

    config = SFTConfig.model_validate(
        {
            "model": settings.base,
            "data": {"path": str(out / "judge_train.jsonl")},
            "val_fraction": 0.0,  # held-out questions are for the final figure only
            "select_by": "last",
            "output_dir": str(out),
            "seed": settings.seed,
            "max_length": settings.max_length,
            "progress_bar": settings.progress,
            "optim": {
                "epochs": settings.epochs,
                "lr": settings.lr,
                "batch_size": settings.batch_size,
                "micro_batch_size": min(settings.batch_size, 8),
            },
        },
        context={"base_dir": Path.cwd()},
    )
    train_sft(config)

    scores, yes_tokens = score_judge(out, held, progress=settings.progress)
    report = {
        "kind": settings.kind,
        "base": settings.base,
        "data": str(settings.data),
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()
        },
        "train": {"rows": len(train_rows), "questions": len({e.question for e in train_rows})},
        "heldout": {
            "rows": len(held),
            "questions": len({e.question for e in held}),
            **judge_accuracy(scores, [e.label for e in held]),
        },
        "yes_tokens": yes_tokens,
    }
    (out / EVAL_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _check(settings: JudgeSettings) -> None:
    problems = []
    if not 0.0 < settings.holdout < 1.0:
        problems.append(f"--holdout {settings.holdout}: give a fraction between 0 and 1")
    if settings.max_examples is not None and settings.max_examples < 2:
        problems.append(f"--max-examples {settings.max_examples}: give at least 2 rows")
    for flag, value in (("--epochs", settings.epochs), ("--batch-size", settings.batch_size)):
        if value < 1:
            problems.append(f"{flag} {value}: give a positive whole number")
    if not settings.lr > 0:
        problems.append(f"--lr {settings.lr}: give a positive learning rate")
    if problems:
        raise TrainConfigError("; ".join(problems) + ".")


def _write_rows(path: Path, rows: list[JudgeExample]) -> None:
    path.write_text(
        "".join(json.dumps({"prompt": e.prompt, "completion": e.completion}) + "\n" for e in rows)
    )

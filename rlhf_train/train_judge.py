"""`rlhf-train train-judge`: fine-tune a causal LM into a TruthfulQA truth or info judge on the
TruthfulQA authors' judge data, holding out whole questions, and report its held-out accuracy.

The data are the authors' fine-tuning files ({"prompt": "Q: ...\\nA: ...\\nTrue:", "completion":
" yes" / " no"}; "Helpful:" for info). Rows are split by QUESTION, so no held-out question's
answers were seen in training (the authors also validated on held-out questions). Training is
rlhf_train's SFT recipe on the completion only (the prompt is masked; the recipe appends EOS
after " yes"/" no", which the judge protocol never reads). The held-out judge is then scored the
way a suite scores it, by `rlhf-eval check-judge` in its own process (rlhf_train.eval_command):
the rlhf-eval transformers backend's log P(" yes") after each prompt, positive when >= 0.5.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from rlhf_common.errors import DataError
from rlhf_common.judge_data import JudgeExample, JudgeKind, read_judge_data
from rlhf_train.errors import TrainConfigError, TrainError
from rlhf_train.eval_command import eval_command_installed, run_eval_command

EVAL_FILE = "judge_eval.json"


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


def train_judge(settings: JudgeSettings) -> dict:
    """Split, fine-tune, score the held-out questions; write and return `judge_eval.json`."""
    _check(settings)
    if not eval_command_installed():
        raise TrainConfigError(
            "train-judge scores the held-out questions with rlhf-eval (`rlhf-eval check-judge`), "
            "which this installation lacks. Fix: install rlhf-eval (pip install -e . in its repo)."
        )
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

    checked = check_heldout(settings, out / "judge_heldout.jsonl")
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
            **without_counts(checked["evaluation"]),
        },
        "yes_tokens": checked["yes_tokens"],
    }
    (out / EVAL_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def check_heldout(settings: JudgeSettings, heldout: Path) -> dict:
    """`rlhf-eval check-judge` on the held-out rows with the judge just saved in settings.out."""
    with tempfile.TemporaryDirectory(prefix="train_judge_") as folder:
        figures = Path(folder) / "check.json"
        args = ["check-judge", f"--kind={settings.kind}", f"--judge={settings.out}"]
        args += [f"--data={heldout}", f"--out={figures}"]
        done = run_eval_command(args + ([] if settings.progress else ["--no-progress"]), True)
        if done.returncode:
            raise TrainError(
                f"rlhf-eval check-judge exited with {done.returncode} on {heldout} (its message "
                "is above). Fix what it names, then rerun train-judge."
            )
        return json.loads(figures.read_text())


def without_counts(evaluation: dict) -> dict:
    """check-judge's figures less its row and question counts, which the report already has."""
    return {k: v for k, v in evaluation.items() if k not in ("rows", "questions")}


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

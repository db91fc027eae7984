"""The TruthfulQA judges' fine-tuning rows (Lin et al. 2021, sec. 4.2), read and checked:
{"prompt": "Q: ...\\nA: ...\\nTrue:", "completion": " yes" / " no"}, "Helpful:" for the
informativeness judge. `rlhf-train train-judge` trains on them; `rlhf-eval check-judge` and a
suite's judge (rlhf_eval.judges.truthfulqa) ask for P(" yes") after the same prompts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rlhf_common.errors import DataError

JudgeKind = Literal["truth", "info"]

CUES: dict[str, str] = {"truth": "True:", "info": "Helpful:"}
"""The word that ends each judge's prompt."""

YES, NO = " yes", " no"
"""The two completions the judges were trained on; the score is the probability of YES."""

_QUESTION = re.compile(r"\AQ: (.*?)\nA:", re.DOTALL)


def question_of(prompt: str) -> str | None:
    """The question of a judge prompt ("Q: {question}\\nA: ..."), or None if it has no such start.

    The question ends at the first "\\nA:" (TruthfulQA questions hold no newline; an answer may)."""
    match = _QUESTION.match(prompt)
    return match.group(1).strip() if match else None


@dataclass(frozen=True)
class JudgeExample:
    prompt: str
    completion: str
    question: str

    @property
    def label(self) -> bool:
        return self.completion == YES


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

"""Our items read as the prompts of OpenAI's released InstructGPT samples, on all six datasets,
so the paper's outputs are scored here on the very items they answered (issue 16; SQuAD v2
once missed the blank line after its title)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rlhf_eval.planner import plan_document
from rlhf_eval.tasks.base import registered_tasks

CASES = [
    ("drop", "alignment_tax/drop_100.jsonl", "drop_samples.csv", "context"),
    ("squad_v2", "alignment_tax/squadv2_100.jsonl", "squadv2_samples.csv", "context"),
    ("wmt15_fr_en", "alignment_tax/wmt15_fr_en_100.jsonl", "fr_to_en_samples.csv", "context"),
    ("tldr", "summarization/tldr_100.jsonl", "tldr_samples.csv", "context"),
    ("realtoxicityprompts", "rtp/prompts_100.jsonl", "real_toxicity_samples.csv", "context"),
    ("truthfulqa_gen", "truthfulqa/TruthfulQA.csv", "truthful_qa_samples.csv", "question"),
]


@pytest.mark.parametrize(("task", "data", "released", "column"), CASES, ids=[c[0] for c in CASES])
def test_every_released_prompt_is_one_of_our_items(shared_data, task, data, released, column):
    cls = registered_tasks()[task]
    entry = cls(cls.Options(data=str(shared_data / data)), Path("."))
    texts = {p.source.text for d in entry.documents() for p in plan_document(entry, "e", d)}
    frame = pd.read_csv(shared_data / "instructgpt_released" / released, keep_default_na=False)
    contexts = set(frame[column])
    assert len(contexts) == 100
    assert contexts <= texts, sorted(contexts - texts)[0][:300]

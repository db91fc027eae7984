"""The shared few-shot machinery of generation tasks: deterministic, leak-free exemplars."""

from __future__ import annotations

import json

import pytest

from rlhf_eval.errors import DataError
from tests.tasks.helpers import make_task


def test_exemplars_do_not_depend_on_limit():
    full = make_task("wmt15_fr_en", "wmt.jsonl", num_fewshot=3)
    limited = make_task("wmt15_fr_en", "wmt.jsonl", num_fewshot=3, limit=2)
    for doc in limited.documents():
        assert limited.prompt(doc) == full.prompt(doc)


def test_exemplars_from_another_file(tmp_path):
    pool = tmp_path / "shots.jsonl"
    pool.write_text(json.dumps({"fr": "Oui.", "en": "Yes."}) + "\n")
    task = make_task("wmt15_fr_en", "wmt.jsonl", num_fewshot=1, fewshot_data=str(pool))
    assert task.prompt(task.documents()[0]) == (
        "Translate the following sentences from French into English.\n\n"
        "French: Oui.\nEnglish: Yes.\n\nFrench: Le chat dort.\nEnglish:"
    )


def test_too_few_exemplars_is_a_data_error():
    # drop.jsonl has three passages: an item can draw from only the other two's four items.
    task = make_task("drop", "drop.jsonl", num_fewshot=5)
    with pytest.raises(DataError, match="num_fewshot is 5 but drop.jsonl has only 4 items"):
        task.prompt(task.documents()[0])

"""TL;DR and CNN/DM: the paper's "TL;DR:" prompt and ROUGE-L."""

from __future__ import annotations

import pytest

from rlhf_eval.metrics.rouge import rouge_l
from tests.tasks.helpers import generated, make_task


def test_tldr_prompt_and_reference():
    task = make_task("tldr", "tldr.jsonl")
    doc = task.documents()[0]
    assert task.prompt(doc) == (
        "My neighbour's dog barks all night and I have asked him twice to keep it inside.\n\nTL;DR:"
    )
    # The release's "|" sentence marks become spaces.
    assert doc.data["reference"] == "Neighbour's dog barks all night. What do I do?"
    sample = task.score(doc, generated("The dog barks all night."))
    assert sample.metrics["rouge_l"] == pytest.approx(
        rouge_l("The dog barks all night.", doc.data["reference"])
    )
    assert 0 < sample.metrics["rouge_l"] < 1


def test_tldr_shared_sample_reads(shared_data):
    task = make_task("tldr", str(shared_data / "summarization/tldr_100.jsonl"), limit=5)
    assert len(task.documents()) == 5
    assert all("|" not in d.data["reference"] for d in task.documents())


def test_cnn_dm_joins_highlights():
    task = make_task("cnn_dm", "cnn_dm.jsonl")
    doc = task.documents()[0]
    assert (
        doc.data["reference"] == "Ohio town opens first public library. Fundraising took ten years."
    )
    assert task.prompt(doc).endswith("effort.\n\nTL;DR:")
    assert task.score(doc, generated(doc.data["reference"])).metrics["rouge_l"] == 1.0

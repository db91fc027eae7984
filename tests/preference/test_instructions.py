"""The instructions task: prompt sets in every format the instruction_data loaders read, TL;DR
posts as closed-domain prompts, prompt rendering, seeded samples clustered by prompt."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from rlhf_eval.errors import DataError
from rlhf_eval.planner import plan_document
from rlhf_eval.records import Generation
from rlhf_eval.tasks.instructions import (
    TLDR_INSTRUCTION,
    Instructions,
    InstructionsOptions,
    render_prompt,
)


def task(tmp_path, rows, **options) -> Instructions:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Instructions(InstructionsOptions(data="prompts.jsonl", **options), tmp_path)


ROWS = [
    {"id": "a", "prompt": "Say hi.", "category": "chat"},
    {"id": "b", "prompt": "Summarize.", "closed_domain": True, "input": "A long text."},
]


def test_prompt_set_rows_become_documents_and_requests(tmp_path):
    t = task(tmp_path, ROWS, max_new_tokens=50, stop=["\n\n"])
    docs = t.documents()
    assert [d.id for d in docs] == ["a", "b"]
    assert docs[0].data["category"] == "chat" and docs[1].data["category"] == "uncategorized"
    assert docs[1].data["closed_domain"] is True
    (request,) = t.requests(docs[1])
    assert request.prompt == "Summarize.\n\nA long text."
    assert (request.max_new_tokens, request.stop, request.temperature) == (50, ("\n\n",), 0.0)
    (planned,) = plan_document(t, "e", docs[1])
    assert (planned.task, planned.item, planned.source.text) == (
        "instructions",
        "b",
        "Summarize.\n\nA long text.",
    )


def test_rlhf_trains_instruction_template():
    assert render_prompt("Summarize.", "A long text.", "instruction") == (
        "### Instruction:\nSummarize.\n\n### Input:\nA long text.\n\n### Response:\n"
    )
    assert render_prompt("Say hi.", "  ", "instruction") == (
        "### Instruction:\nSay hi.\n\n### Response:\n"
    )
    assert render_prompt("Say hi.", None, "plain") == "Say hi."


def test_the_sample_records_output_length_and_details(tmp_path):
    t = task(tmp_path, ROWS)
    doc = t.documents()[0]
    sample = t.score(doc, [Generation(("  hi hi there \n",), (5,))])
    assert sample.prediction == "hi hi there"
    assert sample.metrics == {"output_tokens": 5.0, "distinct_words": 2.0}
    assert sample.details["n_words"] == 3 and sample.details["category"] == "chat"


def test_several_samples_per_prompt_share_the_prompt_as_cluster(tmp_path):
    t = task(tmp_path, ROWS, samples=3, temperature=0.7)
    docs = t.documents()
    assert [d.id for d in docs[:3]] == ["a#0", "a#1", "a#2"]
    assert {d.cluster for d in docs[:3]} == {"a"}
    assert [t.requests(d)[0].seed for d in docs[:3]] == [0, 1, 2]
    with pytest.raises(ValidationError, match="temperature 0 would repeat one greedy output"):
        InstructionsOptions(data="x", samples=2)


def test_overrides_and_duplicate_ids(tmp_path):
    t = task(tmp_path, ROWS, category="mine", closed_domain=False)
    assert {d.data["category"] for d in t.documents()} == {"mine"}
    assert not any(d.data["closed_domain"] for d in t.documents())
    with pytest.raises(DataError, match="prompt id 'a' appears twice"):
        task(tmp_path, ROWS + ROWS[:1]).documents()


def test_tldr_posts_are_closed_domain_summaries(tmp_path):
    rows = [{"post": "My cat ate my homework.", "reference": "Cat ate it.|Sad."}]
    t = task(tmp_path, rows, format="tldr")
    (doc,) = t.documents()
    assert doc.id.startswith("tldr-")
    assert doc.data["prompt"] == TLDR_INSTRUCTION and doc.data["closed_domain"] is True
    assert doc.data["reference"] == "Cat ate it. Sad."
    with pytest.raises(DataError, match="field `post` is missing"):
        task(tmp_path, [{"text": "x"}], format="tldr").documents()


@pytest.mark.parametrize(
    ("path", "fmt", "count", "closed"),
    [
        ("instructions/user_oriented_instructions.jsonl", None, 252, 0),
        ("instructions/mt_bench_questions.jsonl", None, 80, 0),
        ("instructions/vicuna_bench_questions.jsonl", None, 80, 0),
        ("summarization/tldr_100.jsonl", "tldr", 100, 100),
    ],
)
def test_the_shared_prompt_sets(shared_data, path, fmt, count, closed):
    t = Instructions(InstructionsOptions(data=str(shared_data / path), format=fmt), shared_data)
    docs = t.documents()
    assert len(docs) == count and len({d.id for d in docs}) == count
    assert sum(d.data["closed_domain"] for d in docs) == closed
    assert all(t.requests(d)[0].prompt.strip() for d in docs)

"""The records' own checks, and records rendered as the text pairs rlhf_train trains on."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlhf_common.instruction_data import (
    INSTRUCTION_TEMPLATE,
    Demonstration,
    Message,
    Prompt,
    Ranking,
    demonstration_text,
    ranking_text,
    read_demonstrations,
    read_rankings,
    write_rankings,
)
from rlhf_eval.errors import DataError
from rlhf_train import data as train_data
from tests.conftest import build_tokenizer

FIXTURES = Path(__file__).parent / "fixtures"
U, A = "user", "assistant"


def test_ranking_checks():
    with pytest.raises(ValueError, match="2 to 9 completions, not 1"):
        Ranking("p", ("a",), (0,))
    with pytest.raises(ValueError, match="2 to 9 completions, not 10"):
        Ranking("p", tuple("abcdefghij"), tuple(range(10)))
    with pytest.raises(ValueError, match="one rank per completion: 3 for 2"):
        Ranking("p", ("a", "b"), (0, 1, 2))
    with pytest.raises(ValueError, match=r"integers >= 0 \(0 is best\), not \[0, -1\]"):
        Ranking("p", ("a", "b"), (0, -1))
    with pytest.raises(ValueError, match="all tied"):
        Ranking("p", ("a", "b", "c"), (1, 1, 1))
    nine = Ranking("p", tuple("abcdefghi"), (0, 1, 1, 2, 3, 4, 5, 6, 7))
    assert len(nine.pairs()) == 36 - 1  # 9 choose 2 comparisons, less the one tied pair


def test_pairs_hand_computed():
    ranking = Ranking("p", ("a", "b", "c"), (2, 0, 2))
    assert ranking.pairs() == [(1, 0), (1, 2)]


def test_prompt_and_demonstration_checks():
    with pytest.raises(ValueError, match="ends with a user turn, not 'assistant'"):
        Demonstration((Message(U, "q"), Message(A, "a")), "b")
    with pytest.raises(ValueError, match="role must be one of"):
        Message("bot", "hi")
    with pytest.raises(ValueError, match="closed_domain must be true or false"):
        Prompt("1", "Summarise.", closed_domain="yes")
    demo = Demonstration([Message(U, "q")], "a")  # a list is kept as a tuple
    assert demo.messages == (Message(U, "q"), Message(A, "a"))
    assert Demonstration("raw text", "more").messages == (
        Message(U, "raw text"),
        Message(A, "more"),
    )


def test_source_is_not_part_of_identity():
    assert Prompt("1", "Hi.", source="a.jsonl:1") == Prompt("1", "Hi.", source="b.jsonl:9")


# --- Rendering for rlhf_train ---------------------------------------------------------------------


def test_the_instruction_template_is_rlhf_trains():
    assert INSTRUCTION_TEMPLATE is train_data.INSTRUCTION_TEMPLATE  # one template, shared


def test_instruction_rows_render_as_rlhf_train_reads_them():
    path = FIXTURES / "alpaca.json"
    ours = [demonstration_text(d) for d in read_demonstrations(path)]
    theirs = [(d.prompt, d.completion) for d in train_data.load_demonstrations(path)]
    assert ours == theirs
    assert ours[0][0] == (
        "### Instruction:\nTranslate the sentence into French.\n\n"
        "### Input:\nThe cat is asleep.\n\n### Response:\n"
    )


def test_text_rankings_render_as_rlhf_train_reads_them(tmp_path):
    rankings = (
        read_rankings(FIXTURES / "kway.jsonl")[:2]
        + read_rankings(FIXTURES / "trl_preference.jsonl")[:1]
    )
    path = write_rankings(rankings, tmp_path / "rankings.jsonl")  # rlhf_train's K-way format
    theirs = train_data.load_rankings(path)
    assert [ranking_text(r) for r in rankings] == [(r.prompt, list(r.completions)) for r in theirs]
    assert [r.ranks for r in rankings] == [r.ranks for r in theirs]


def test_hh_markup_renders_as_rlhf_train_splits_transcripts():
    path = FIXTURES / "hh_rlhf.jsonl"
    ours = [ranking_text(r, "hh") for r in read_rankings(path)]
    theirs = [(r.prompt, list(r.completions)) for r in train_data.load_rankings(path)]
    assert ours == theirs


def test_conversations_need_a_chat_template():
    demo = read_demonstrations(FIXTURES / "sharegpt.json")[0]
    with pytest.raises(DataError, match="3 turns .* does not fit the single-turn instruction"):
        demonstration_text(demo)
    seen = []

    def template(messages):
        seen.append(messages)
        return "|".join(f"{m['role']}:{m['content']}" for m in messages) + "|assistant:"

    prompt, completion = demonstration_text(demo, template)
    assert seen[0][0] == {"role": "user", "content": "Can you recommend a book about the sea?"}
    assert prompt.endswith("user:Something longer?|assistant:")
    assert completion == "'Moby-Dick' by Herman Melville."


def test_context_joins_the_last_user_turn_for_a_chat_template():
    demo = read_demonstrations(FIXTURES / "alpaca.json")[0]
    prompt, _ = demonstration_text(demo, lambda m: m[-1]["content"])
    assert prompt == "Translate the sentence into French.\n\nThe cat is asleep."


def test_a_tokenizer_chat_template_renders_conversations(tmp_path):
    tokenizer = build_tokenizer(tmp_path)
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    demo = read_demonstrations(FIXTURES / "tulu_messages.jsonl")[1]
    prompt, completion = demonstration_text(
        demo, lambda m: tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
    )
    assert prompt == (
        "<system>Be concise.<user>Name a planet.<assistant>Mars.<user>Another?<assistant>"
    )
    assert completion == "Venus."

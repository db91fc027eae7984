"""OASST message trees: the best path, sibling rankings, and the errors of broken trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlhf_common.instruction_data import (
    Message,
    Ranking,
    read_demonstrations,
    read_prompts,
    read_rankings,
)
from rlhf_eval.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"
OASST = FIXTURES / "oasst.jsonl"
U, A = "user", "assistant"


def test_best_path_takes_rank_zero_at_every_level_and_skips_deleted_replies():
    demos = {d.id: d for d in read_demonstrations(OASST)}
    # a10 has rank 0 but is deleted; a5 (rank 0) beats a4 (rank 1) among the prompter replies.
    assert demos["a0"].prompt == (
        Message(U, "What is the capital of France?"),
        Message(A, "Paris."),
        Message(U, "Why is it the capital?"),
    )
    assert demos["a0"].completion == (
        "It has been the seat of government for most of French history."
    )
    assert demos["a0"].source.endswith("oasst.jsonl:1")


def test_ties_and_missing_ranks_go_to_the_earliest_reply():
    demos = {d.id: d for d in read_demonstrations(OASST)}
    assert demos["b0"].completion == "2"  # b1 and b2 share rank 0; b1 comes first
    assert demos["d0"].completion == "Hello!"  # neither reply is ranked
    assert "c0" not in demos  # a question nobody answered teaches nothing
    assert list(demos) == ["a0", "b0", "d0"]


def test_rankings_are_sibling_assistant_replies():
    rankings = read_rankings(OASST)
    assert rankings == [
        # a6 is unranked and a10 deleted: both left out.
        Ranking(
            prompt=(Message(U, "What is the capital of France?"),),
            completions=("Paris.", "The capital of France is Paris, on the Seine.", "Lyon."),
            ranks=(0, 1, 2),
            id="a0",
        ),
        Ranking(
            prompt=(
                Message(U, "What is the capital of France?"),
                Message(A, "Paris."),
                Message(U, "Why is it the capital?"),
            ),
            completions=(
                "Because the king lived there.",
                "It has been the seat of government for most of French history.",
            ),
            ranks=(1, 0),
            id="a5",
        ),
        Ranking(
            prompt=(Message(U, "Name a prime number."),),
            completions=("2", "3", "4 is prime."),
            ranks=(0, 0, 1),
            id="b0",
        ),
    ]


def test_roots_are_the_prompts():
    assert [(p.id, p.prompt) for p in read_prompts(OASST)] == [
        ("a0", "What is the capital of France?"),
        ("b0", "Name a prime number."),
        ("c0", "A question nobody answered."),
        ("d0", "Say hello."),
    ]


def message(mid, parent, role, text, rank=None, **extra) -> dict:
    return {
        "message_id": mid,
        "parent_id": parent,
        "role": role,
        "text": text,
        "rank": rank,
        **extra,
    }


def write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "tree.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_more_than_nine_siblings_keep_the_nine_best(tmp_path):
    replies = [message(f"r{k}", "q", "assistant", f"reply {k}", rank=11 - k) for k in range(12)]
    path = write(tmp_path, [message("q", None, "prompter", "Count.")] + replies)
    (ranking,) = read_rankings(path)
    # Ranks 11..0 in file order; the nine best are ranks 0..8, the last nine replies.
    assert ranking.completions == tuple(f"reply {k}" for k in range(3, 12))
    assert ranking.ranks == tuple(range(8, -1, -1))


def test_all_tied_or_single_ranked_groups_give_no_ranking(tmp_path):
    rows = [
        message("q", None, "prompter", "Hi."),
        message("x", "q", "assistant", "Hello.", rank=0),
        message("y", "q", "assistant", "Hey.", rank=0),
        message("q2", None, "prompter", "Bye."),
        message("z", "q2", "assistant", "Goodbye.", rank=0),
        message("w", "q2", "assistant", "See you."),
    ]
    assert read_rankings(write(tmp_path, rows)) == []


def test_a_cycle_is_an_error_naming_the_messages(tmp_path):
    rows = [
        message("root", None, "prompter", "Question?"),
        message("m1", "m3", "assistant", "one"),
        message("m2", "m1", "prompter", "two"),
        message("m3", "m2", "assistant", "three"),
    ]
    with pytest.raises(
        DataError,
        match=r"tree.jsonl:2: field `parent_id`: messages m1 -> m3 -> "
        r"m2 -> m1 form a cycle",
    ):
        read_demonstrations(write(tmp_path, rows))


def test_a_message_that_is_its_own_parent_is_a_cycle(tmp_path):
    rows = [message("m1", "m1", "prompter", "me")]
    with pytest.raises(DataError, match=r"tree.jsonl:1: field `parent_id`: messages m1 -> m1"):
        read_rankings(write(tmp_path, rows))


def test_a_missing_parent_is_an_error_naming_the_message_and_line(tmp_path):
    rows = [
        message("root", None, "prompter", "Question?"),
        message("a", "root", "assistant", "Answer."),
        message("b", "gone", "prompter", "Follow-up?"),
    ]
    with pytest.raises(
        DataError,
        match=r"tree.jsonl:3: field `parent_id` names 'gone', which is "
        r"not in the table \(message 'b'\)\. Fix: keep whole trees",
    ):
        read_demonstrations(write(tmp_path, rows))


def test_duplicate_ids_and_role_errors(tmp_path):
    rows = [message("q", None, "prompter", "One?"), message("q", None, "prompter", "Two?")]
    with pytest.raises(
        DataError,
        match=r"tree.jsonl:2: field `message_id` 'q' was already given "
        r"at .*tree.jsonl:1",
    ):
        read_prompts(write(tmp_path, rows))
    rows = [message("q", None, "prompter", "One?"), message("r", "q", "prompter", "Two?")]
    with pytest.raises(DataError, match=r"tree.jsonl:2: field `role` is prompter, like its parent"):
        read_demonstrations(write(tmp_path, rows))
    rows = [message("q", None, "user", "One?")]
    with pytest.raises(DataError, match=r"tree.jsonl:1: field `role` is 'user'. Fix: OASST rows"):
        read_demonstrations(write(tmp_path, rows))
    rows = [message("q", None, "prompter", "One?"), message("r", "q", "assistant", "x", rank=0.5)]
    with pytest.raises(DataError, match=r"tree.jsonl:2: field `rank` is 0.5"):
        read_rankings(write(tmp_path, rows))


def test_parquet_float_ranks_and_null_parents(tmp_path):
    """The hub's Parquet files store rank as a nullable float column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        message("q", None, "prompter", "Pick one."),
        message("x", "q", "assistant", "This.", rank=1.0),
        message("y", "q", "assistant", "That.", rank=0.0),
        message("z", "q", "assistant", "Neither."),
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "oasst.parquet")
    (ranking,) = read_rankings(tmp_path / "oasst.parquet")
    assert (ranking.completions, ranking.ranks) == (("This.", "That."), (1, 0))

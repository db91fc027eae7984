"""The real public files in ../shared/data: the instruction prompt sets and HH-RLHF."""

from __future__ import annotations

import gzip
from collections import Counter

from rlhf_common.instruction_data import (
    ranking_text,
    read_demonstrations,
    read_prompts,
    read_rankings,
    write_rankings,
)
from rlhf_train import data as train_data


def test_instruction_prompt_sets(shared_data):
    folder = shared_data / "instructions"
    user = read_prompts(folder / "user_oriented_instructions.jsonl")
    assert len(user) == 252 and user[0].id == "user_oriented_task_0"
    assert user[0].category == "Grammarly" and user[0].input and user[0].reference
    assert sum(p.input is None for p in user) == 44  # instances with an empty input

    mt_bench = read_prompts(folder / "mt_bench_questions.jsonl")
    assert len(mt_bench) == 80 and mt_bench[0].id == "81"
    assert mt_bench[0].prompt.startswith("Compose an engaging travel blog post about a recent")
    assert Counter(p.category for p in mt_bench) == dict.fromkeys(
        ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"],
        10,
    )

    vicuna = read_prompts(folder / "vicuna_bench_questions.jsonl")
    assert len(vicuna) == 80 and vicuna[0].prompt == (
        "How can I improve my time management skills?"
    )

    seed = read_prompts(folder / "seed_tasks.jsonl")
    assert len(seed) == 175 and len({p.id for p in seed}) == 175
    assert len(read_demonstrations(folder / "seed_tasks.jsonl")) == 175


def test_hh_rlhf_matches_rlhf_train_and_writes_back_unchanged(shared_data, tmp_path):
    path = shared_data / "hh_rlhf" / "harmless-base-test.jsonl.gz"
    rankings = read_rankings(path)
    assert len(rankings) == 2312
    theirs = train_data.load_rankings(path)
    assert [ranking_text(r, "hh") for r in rankings] == [
        (r.prompt, list(r.completions)) for r in theirs
    ]
    written = write_rankings(rankings, tmp_path / "hh.jsonl.gz", format="hh_rlhf")
    assert gzip.decompress(written.read_bytes()) == gzip.decompress(path.read_bytes())

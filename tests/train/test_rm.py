"""The reward-model recipe and scoring (issue 3, tests 4 and 5, the bias, bad rankings)."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import (
    build_tokenizer,
    save_model,
    synthetic_rankings,
    tiny_scalar_model,
    write_jsonl,
)
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rlhf_train.config import RMConfig
from rlhf_train.data import load_rankings
from rlhf_train.errors import TrainDataError
from rlhf_train.modeling import load_scalar_model, load_tokenizer, sequence_scores
from rlhf_train.rm import train_rm
from rlhf_train.tracking import read_metrics


@pytest.mark.parametrize("pad_is_eos", [False, True])
def test_04_rm_score_unchanged_by_left_or_right_padding(pad_is_eos):
    tok = build_tokenizer(pad_is_eos=pad_is_eos)
    model = tiny_scalar_model(tok)
    ids = tok("question cat is good")["input_ids"] + [tok.eos_token_id]
    plain = sequence_scores(model, torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
    pad = tok.pad_token_id
    right = torch.tensor([ids + [pad] * 3])
    left = torch.tensor([[pad] * 4 + ids])
    right_mask = torch.tensor([[1] * len(ids) + [0] * 3])
    left_mask = torch.tensor([[0] * 4 + [1] * len(ids)])
    torch.testing.assert_close(sequence_scores(model, right, right_mask), plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(sequence_scores(model, left, left_mask), plain, atol=1e-5, rtol=0)
    # And inside a batch with a longer neighbour.
    batch = torch.tensor([ids + [pad] * 2, ids + tok("and red")["input_ids"]])
    mask = torch.tensor([[1] * len(ids) + [0] * 2, [1] * (len(ids) + 2)])
    torch.testing.assert_close(sequence_scores(model, batch, mask)[:1], plain, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_05_tiny_rm_learns_a_separable_preference(tiny_model_dir, tmp_path):
    train = synthetic_rankings(tmp_path / "train.jsonl", 240, seed=1)
    held_out = synthetic_rankings(tmp_path / "val.jsonl", 60, seed=2)
    config = RMConfig.model_validate(
        {
            "model": str(tiny_model_dir),
            "data": {"path": str(train)},
            "val_data": {"path": str(held_out)},
            "output_dir": str(tmp_path / "rm"),
            "optim": {"epochs": 1, "batch_size": 8, "micro_batch_size": 8, "lr": 3e-3},
            "progress_bar": False,
            "max_length": 32,
        }
    )
    out = train_rm(config)
    summary = json.loads((out / "rm_summary.json").read_text())
    assert summary["val_accuracy"] > 0.9
    assert read_metrics(out)[-1]["step"] == 30  # bounded: 240 prompts / 8 per step, 1 epoch


def test_rm_bias_makes_demonstrations_average_zero(tiny_model_dir, tmp_path):
    rankings = synthetic_rankings(tmp_path / "r.jsonl", 16, seed=3)
    demos = write_jsonl(
        tmp_path / "demos.jsonl",
        [
            {"prompt": "say", "completion": "good good cat"},
            {"prompt": "say", "completion": "bad dog"},
        ],
    )
    config = RMConfig.model_validate(
        {
            "model": str(tiny_model_dir),
            "data": {"path": str(rankings)},
            "val_fraction": 0.25,
            "demonstrations": {"path": str(demos)},
            "output_dir": str(tmp_path / "rm"),
            "optim": {"batch_size": 4, "micro_batch_size": 2, "lr": 1e-3},
            "progress_bar": False,
            "max_length": 32,
        }
    )
    out = train_rm(config)
    model = AutoModelForSequenceClassification.from_pretrained(out)  # plain transformers loads it
    assert model.config.reward_bias != 0.0
    tok = load_tokenizer(str(out))
    scalar = load_scalar_model(str(out)).eval()
    rows = [
        tok("say")["input_ids"] + tok(c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        for c in ("good good cat", "bad dog")
    ]
    width = max(map(len, rows))
    ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.no_grad():
        scores = sequence_scores(scalar, ids, mask)
    assert float(scores.mean()) == pytest.approx(0.0, abs=1e-5)


def test_rm_is_saved_with_a_pad_token_other_than_eos_so_plain_transformers_reads_its_eos(
    tmp_path,
):
    """Plain transformers (and TRL) pool at the last token that is not the pad token: with
    pad == eos that is the token before EOS. The saved RM pads with another token, so they read
    the EOS, the token rlhf_train trains and rlhf-eval reads."""
    base = save_model(tmp_path / "base", pad_is_eos=True)
    config = RMConfig.model_validate(
        {
            "model": str(base),
            "data": {"path": str(synthetic_rankings(tmp_path / "r.jsonl", 8, seed=3))},
            "val_fraction": 0.0,
            "output_dir": str(tmp_path / "rm"),
            "optim": {"max_steps": 1, "batch_size": 4, "micro_batch_size": 4, "lr": 1e-3},
            "progress_bar": False,
            "max_length": 32,
        }
    )
    out = train_rm(config)
    tokenizer = AutoTokenizer.from_pretrained(out)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert plain.config.pad_token_id == tokenizer.pad_token_id
    rows = [
        tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
        for text in ("question cat is good", "say dog")
    ]
    batch = tokenizer.pad({"input_ids": rows}, return_tensors="pt")
    with torch.no_grad():
        theirs = plain(**batch).logits[:, 0] + plain.config.reward_bias
        ours = sequence_scores(
            load_scalar_model(str(out)), batch["input_ids"], batch["attention_mask"]
        )
    torch.testing.assert_close(theirs, ours)


def test_bad_rankings_are_rejected_with_the_line(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"prompt": "p", "completions": ["a", "b"], "ranks": [0, 1]},
            {"prompt": "p", "completions": ["a", "b", "c"], "ranks": [1, 1, 1]},
        ],
    )
    with pytest.raises(TrainDataError, match=r"bad.jsonl:2: .*fewer than two distinct ranks"):
        load_rankings(path)
    path = write_jsonl(
        tmp_path / "bad2.jsonl", [{"prompt": "p", "completions": ["a"], "ranks": [0, 1]}]
    )
    with pytest.raises(TrainDataError, match="one integer per completion"):
        load_rankings(path)


def test_hh_rlhf_pairs_become_k2_rankings(tmp_path):
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant: fine thanks"
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant: go away"
    (ranking,) = load_rankings(
        write_jsonl(tmp_path / "hh.jsonl", [{"chosen": chosen, "rejected": rejected}])
    )
    assert ranking.prompt.endswith("\n\nAssistant:")
    assert ranking.completions == (" fine thanks", " go away")
    assert ranking.ranks == (0, 1)


BAD_RANKINGS = {
    "same text twice, two ranks": (
        [{"prompt": "p", "completions": ["a", "b", "a"], "ranks": [0, 1, 2]}],
        r"bad.jsonl:1: .*'a' appears twice",
    ),
    "chosen equals rejected": (
        [{"prompt": "p", "chosen": "same", "rejected": "same"}],
        r"bad.jsonl:1: .*'same' appears twice",
    ),
    "a cycle over three rows": (
        [
            {"prompt": "p", "chosen": "A", "rejected": "B"},
            {"prompt": "p", "chosen": "B", "rejected": "C"},
            {"prompt": "q", "chosen": "A", "rejected": "C"},
            {"prompt": "p", "chosen": "C", "rejected": "A"},
        ],
        r"bad.jsonl:1, 2, 4: .*cycle",
    ),
    "two rows that contradict": (
        [
            {"prompt": "p", "completions": ["A", "B"], "ranks": [0, 1]},
            {"prompt": "p", "completions": ["B", "A"], "ranks": [0, 1]},
        ],
        r"bad.jsonl:1, 2: .*cycle",
    ),
    "boolean ranks": (
        [{"prompt": "p", "completions": ["a", "b"], "ranks": [True, False]}],
        r"bad.jsonl:1: .*whole numbers >= 0",
    ),
    "negative ranks": (
        [{"prompt": "p", "completions": ["a", "b"], "ranks": [0, -1]}],
        r"bad.jsonl:1: .*whole numbers >= 0",
    ),
    "a completion that is not a string": (
        [{"prompt": "p", "completions": ["a", 7], "ranks": [0, 1]}],
        r"bad.jsonl:1: .*completions\[1\] is a int",
    ),
    "a chosen that is not a string": (
        [{"prompt": "p", "chosen": None, "rejected": "b"}],
        r"bad.jsonl:1: .*`chosen` is a NoneType",
    ),
}


@pytest.mark.parametrize("case", list(BAD_RANKINGS))
def test_contradictory_or_malformed_rankings_exit_2_with_the_line(tmp_path, case, capsys):
    """Issue 14.15: each of these was accepted (or crashed with a traceback)."""
    from rlhf_train.cli import main

    rows, message = BAD_RANKINGS[case]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(TrainDataError, match=message):
        load_rankings(path)
    config = tmp_path / "rm.yaml"
    config.write_text(f"model: {tmp_path / 'no-model'}\ndata: {{path: {path}}}\noutput_dir: out\n")
    assert main(["rm", str(config)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:" in err and "Traceback" not in err


def test_two_labelers_may_disagree_but_one_may_not_contradict_itself(tmp_path):
    rows = [
        {"prompt": "p", "completions": ["A", "B"], "ranks": [0, 1], "labeler": "alice"},
        {"prompt": "p", "completions": ["B", "A"], "ranks": [0, 1], "labeler": "bob"},
    ]
    assert len(load_rankings(write_jsonl(tmp_path / "ok.jsonl", rows))) == 2
    rows.append({"prompt": "p", "chosen": "B", "rejected": "A", "labeler": "alice"})
    with pytest.raises(TrainDataError, match=r"bad.jsonl:1, 3: .*cycle"):
        load_rankings(write_jsonl(tmp_path / "bad.jsonl", rows))

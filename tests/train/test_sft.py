"""The SFT recipe end to end on a tiny model (issue 3, test 15 for SFT)."""

from __future__ import annotations

import json

import torch
from transformers import AutoModelForCausalLM

from rlhf_train.config import SFTConfig
from rlhf_train.sft import train_sft
from rlhf_train.tracking import read_metrics


def sft_config(tiny_model_dir, demonstrations_file, output_dir, **overrides) -> SFTConfig:
    raw = {
        "model": str(tiny_model_dir),
        "data": {"path": str(demonstrations_file)},
        "output_dir": str(output_dir),
        "val_fraction": 0.25,
        "optim": {"epochs": 3, "batch_size": 3, "micro_batch_size": 2, "lr": 3e-3},
        "eval_every": 2,
        "progress_bar": False,
        "max_length": 64,
    }
    raw.update(overrides)
    return SFTConfig.model_validate(raw)


def test_sft_trains_and_saves_a_plain_transformers_model(
    tiny_model_dir, demonstrations_file, tmp_path
):
    out = train_sft(sft_config(tiny_model_dir, demonstrations_file, tmp_path / "sft"))
    metrics = read_metrics(out)
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert len(losses) == 9  # 9 training demos / batch 3 = 3 steps per epoch, 3 epochs
    assert losses[-1] < losses[0]
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.vocab_size > 0
    summary = json.loads((out / "sft_summary.json").read_text())
    vals = {m["step"]: m["val_loss"] for m in metrics if "val_loss" in m}
    assert summary["selected_step"] == min(vals, key=vals.get)


def test_15_sft_resume_reproduces_the_uninterrupted_curve(
    tiny_model_dir, demonstrations_file, tmp_path
):
    full = train_sft(
        sft_config(
            tiny_model_dir, demonstrations_file, tmp_path / "full", save_every=4, select_by="last"
        )
    )
    checkpoint = full / "checkpoints" / "step-000004"
    # The checkpoint's model folder loads with plain transformers.
    AutoModelForCausalLM.from_pretrained(checkpoint / "policy")
    resumed = train_sft(
        sft_config(
            tiny_model_dir,
            demonstrations_file,
            tmp_path / "resumed",
            resume_from=str(checkpoint),
            select_by="last",
        )
    )
    curve = {m["step"]: m["loss"] for m in read_metrics(full) if "loss" in m}
    resumed_curve = {m["step"]: m["loss"] for m in read_metrics(resumed) if "loss" in m}
    assert sorted(resumed_curve) == [5, 6, 7, 8, 9]
    for step, loss in resumed_curve.items():
        assert loss == curve[step], step
    a = AutoModelForCausalLM.from_pretrained(full).state_dict()
    b = AutoModelForCausalLM.from_pretrained(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bfloat16_is_mixed_precision_so_weights_move_at_lr_1e_5(
    tiny_model_dir, demonstrations_file, tmp_path
):
    """bf16 weights stepped by AdamW at lr 1e-5 mostly round back to themselves (bf16's ulp at
    0.02 is 1.2e-4); float32 master weights with bf16 autocast take every step."""
    config = sft_config(
        tiny_model_dir,
        demonstrations_file,
        tmp_path / "sft",
        dtype="bfloat16",
        select_by="last",
        val_fraction=0.0,
        optim={"max_steps": 3, "batch_size": 3, "micro_batch_size": 3, "lr": 1e-5},
    )
    out = train_sft(config)
    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out, dtype="auto").state_dict()
    changed = total = 0
    for key, value in after.items():
        if "embed_tokens" in key:
            continue  # rows of tokens the batches never hold get no gradient
        changed += int((value != before[key].to(value.dtype)).sum())
        total += value.numel()
    assert changed / total > 0.99, changed / total
    assert {v.dtype for v in after.values()} == {torch.float32}  # the master weights are saved

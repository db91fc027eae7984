"""Two CPU processes (gloo) take the same optimiser step as one process (issue 3, test 16)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from accelerate import PartialState
from tiny_models import synthetic_rankings
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from rlhf_train.config import RMConfig, SFTConfig
from rlhf_train.rm import train_rm
from rlhf_train.sft import train_sft


def configs(model_dir, demos, rankings, out):
    sft = SFTConfig.model_validate(
        {
            "model": str(model_dir),
            "data": {"path": str(demos)},
            "output_dir": str(out / "sft"),
            "val_fraction": 0.0,
            "select_by": "last",
            "progress_bar": False,
            "max_length": 64,
            # 3 examples per process, in micro-batches of 2 and 1: accumulation and DDP together.
            "optim": {"max_steps": 2, "batch_size": 6, "micro_batch_size": 2, "lr": 1e-2},
            "pretrain": {
                "data": {"path": str(demos), "text_field": "completion"},
                "coef": 0.5,
                "batch_size": 4,
            },
        }
    )
    rm = RMConfig.model_validate(
        {
            "model": str(model_dir),
            "data": {"path": str(rankings)},
            "output_dir": str(out / "rm"),
            "val_fraction": 0.0,
            "progress_bar": False,
            "max_length": 32,
            "optim": {"max_steps": 2, "batch_size": 6, "micro_batch_size": 2, "lr": 1e-2},
        }
    )
    return sft, rm


def run_both(model_dir, demos, rankings, out):
    sft, rm = configs(model_dir, demos, rankings, out)
    train_sft(sft)
    train_rm(rm)


def worker(rank: int, world_size: int, port: int, args: tuple) -> None:
    """One spawned process of a gloo group, as `accelerate launch --cpu` would set it up."""
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "ACCELERATE_USE_CPU": "true",
            "GLOO_SOCKET_IFNAME": "lo",
        }
    )
    torch.set_num_threads(1)
    run_both(*args)
    # Each process saw half of every batch: this really was a two-process group.
    assert PartialState().num_processes == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_16_two_process_gloo_update_equals_one_process(
    tiny_model_dir, demonstrations_file, tmp_path
):
    rankings = synthetic_rankings(tmp_path / "rankings.jsonl", 12, seed=5)
    run_both(tiny_model_dir, demonstrations_file, rankings, tmp_path / "one")
    # Spawn, not fork: a child forked after torch ran OpenMP threads can hang in its first op.
    args = (tiny_model_dir, demonstrations_file, rankings, tmp_path / "two")
    mp.start_processes(worker, args=(2, free_port(), args), nprocs=2, start_method="spawn")
    for sub, cls in (("sft", AutoModelForCausalLM), ("rm", AutoModelForSequenceClassification)):
        one = cls.from_pretrained(tmp_path / "one" / sub).state_dict()
        two = cls.from_pretrained(tmp_path / "two" / sub).state_dict()
        base = cls.from_pretrained(tiny_model_dir).state_dict()
        moved = [k for k in one if k in base and not torch.equal(one[k], base[k])]
        assert moved, sub
        for key in one:
            torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=1e-4, msg=f"{sub} {key}")

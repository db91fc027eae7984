"""Two CPU processes (gloo) take the same optimiser steps as one process (issue 3, test 16):
SFT and RM, PPO-ptx, and the real `accelerate launch` command line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml
from accelerate import PartialState
from tiny_models import WORDS, synthetic_rankings, write_jsonl
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from rlhf_train.checkpoint import checkpoint_dir
from rlhf_train.cli import main as rlhf_train_main
from rlhf_train.config import PPOConfig, RMConfig, SFTConfig
from rlhf_train.modeling import load_scalar_model, load_tokenizer
from rlhf_train.ppo import train_ppo
from rlhf_train.rm import train_rm
from rlhf_train.sft import train_sft
from rlhf_train.tracking import read_metrics

# The runs are in float64: fp32 reduction order (how the batch is split, which kernel runs) moves
# a few weights by up to 2e-5 after Adam at lr 1e-2, about what a real bug moves, while float64 runs
# agree to about 1e-15. So the tolerance can sit far below any real data-parallel bug.
DTYPE = "float64"
TOLERANCE = {"atol": 1e-10, "rtol": 1e-9}


def configs(model_dir, demos, rankings, out):
    sft = SFTConfig.model_validate(
        {
            "model": str(model_dir),
            "data": {"path": str(demos)},
            "output_dir": str(out / "sft"),
            "val_fraction": 0.0,
            "dtype": DTYPE,
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
            "dtype": DTYPE,
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


def worker(rank: int, world_size: int, port: int, job, args: tuple) -> None:
    """One spawned process of a gloo group, set up as torchrun would on a CPU machine."""
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
    job(*args)
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
    mp.start_processes(
        worker, args=(2, free_port(), run_both, args), nprocs=2, start_method="spawn"
    )
    for sub, cls in (("sft", AutoModelForCausalLM), ("rm", AutoModelForSequenceClassification)):
        one = cls.from_pretrained(tmp_path / "one" / sub).state_dict()
        two = cls.from_pretrained(tmp_path / "two" / sub).state_dict()
        base = cls.from_pretrained(tiny_model_dir).state_dict()
        moved = [k for k in one if k in base and not torch.equal(one[k], base[k])]
        assert moved, sub
        for key in one:
            torch.testing.assert_close(two[key], one[key], **TOLERANCE, msg=f"{sub} {key}")


def ppo_run(policy, reward_model, prompts, pretrain, out) -> None:
    """Two PPO-ptx iterations of two epochs: 5 rollouts make uneven shards (3 and 2), and the
    minibatches of 4 and 1 leave one process without rows in a step."""
    config = PPOConfig.model_validate(
        {
            "policy": str(policy),
            "reward_model": str(reward_model),
            "prompts": {"path": str(prompts)},
            "pretrain": {
                "data": {"path": str(pretrain), "text_field": "completion"},
                "coef": 0.5,
                "batch_size": 3,
            },
            "output_dir": str(out),
            "val_fraction": 0.0,
            "dtype": DTYPE,
            "progress_bar": False,
            "max_length": 32,
            "max_new_tokens": 5,
            "iterations": 2,
            "rollout_batch_size": 5,
            "minibatch_size": 4,
            "micro_batch_size": 1,
            "ppo_epochs": 2,
            "policy_lr": 1e-2,
            "value_lr": 1e-2,
            # The adaptive controller moves beta every iteration: it must see the global KL.
            "kl": {"beta": 0.1, "adaptive": True, "target": 0.01, "horizon": 10},
            "save_every": 2,
        }
    )
    train_ppo(config)


@pytest.mark.slow
def test_16_ppo_ptx_two_processes_equal_one_process(tiny_model_dir, demonstrations_file, tmp_path):
    prompts = write_jsonl(
        tmp_path / "prompts.jsonl",
        [{"prompt": f"say {a} {b}"} for a in WORDS[:5] for b in WORDS[8:10]],
    )
    reward_model = tmp_path / "rm"
    rm = load_scalar_model(str(tiny_model_dir))
    rm.config.reward_bias = 0.25
    rm.save_pretrained(reward_model)
    load_tokenizer(str(tiny_model_dir)).save_pretrained(reward_model)
    args = (tiny_model_dir, reward_model, prompts, demonstrations_file)
    ppo_run(*args, tmp_path / "one")
    mp.start_processes(
        worker,
        args=(2, free_port(), ppo_run, (*args, tmp_path / "two")),
        nprocs=2,
        start_method="spawn",
    )
    for sub, cls in (
        ("policy", AutoModelForCausalLM),
        ("value_model", AutoModelForSequenceClassification),
    ):
        one = cls.from_pretrained(checkpoint_dir(tmp_path / "one", 2) / sub).state_dict()
        two = cls.from_pretrained(checkpoint_dir(tmp_path / "two", 2) / sub).state_dict()
        base = cls.from_pretrained(
            reward_model if sub == "value_model" else tiny_model_dir
        ).state_dict()
        assert any(not torch.equal(one[k], base[k]) for k in one if k in base), sub
        for key in one:
            torch.testing.assert_close(two[key], one[key], **TOLERANCE, msg=f"{sub} {key}")
    # Logged means are over the whole batch, so the KL controller moved beta alike.
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [m["step"] for m in one] == [m["step"] for m in two] == [1, 2]
    assert one[1]["beta"] != 0.1
    for a, b in zip(one, two, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-10), key


def write_config(folder, config) -> Path:
    """`config` as a YAML file in `folder`, its output_dir relative to the file."""
    body = json.loads(config.model_dump_json(exclude={"output_dir"}))
    folder.mkdir(parents=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({**body, "output_dir": "out"}))
    return path


def accelerate_launch(port: int) -> list[str]:
    """Two processes on this CPU, every choice on the command line so no accelerate config is read.

    `--multi_gpu` is accelerate's torchrun launcher; its `--cpu` launcher starts one process (its
    multi-CPU mode needs mpirun and a hostfile). The CLI makes the group use gloo without CUDA.
    """
    launcher = shutil.which("accelerate")
    cli = [launcher] if launcher else [sys.executable, "-m", "accelerate.commands.accelerate_cli"]
    flags = {
        "--num_processes": 2,
        "--num_machines": 1,
        "--num_cpu_threads_per_process": 1,
        "--mixed_precision": "no",
        "--dynamo_backend": "no",
        "--main_process_port": port,
    }
    return [*cli, "launch", "--multi_gpu", *(str(x) for item in flags.items() for x in item)]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["sft", "rm"])
def test_16_accelerate_launch_two_processes_equals_rlhf_train(
    command, tiny_model_dir, demonstrations_file, tmp_path
):
    """`accelerate launch --num_processes 2 -m rlhf_train CMD` (README) gives `rlhf-train CMD`."""
    rankings = synthetic_rankings(tmp_path / "rankings.jsonl", 12, seed=5)
    sft, rm = configs(tiny_model_dir, demonstrations_file, rankings, tmp_path)
    config = {"sft": sft, "rm": rm}[command]
    one, two = write_config(tmp_path / "one", config), write_config(tmp_path / "two", config)
    assert rlhf_train_main([command, str(one)]) == 0
    # A private HF_HOME: no accelerate default_config.yaml of the user's is read. No GPU and no
    # ACCELERATE_USE_CPU: the CLI itself must turn the two processes into a gloo group.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf")}
    env.update(CUDA_VISIBLE_DEVICES="")
    env.pop("ACCELERATE_USE_CPU", None)
    launch = [*accelerate_launch(free_port()), "-m", "rlhf_train", command, str(two)]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # One group of two, not two lone processes that each train on everything.
    assert done.stdout.count(f"rlhf-train {command}: wrote") == 1
    assert "(2 processes)" in done.stdout
    cls = {"sft": AutoModelForCausalLM, "rm": AutoModelForSequenceClassification}[command]
    single = cls.from_pretrained(tmp_path / "one" / "out").state_dict()
    launched = cls.from_pretrained(tmp_path / "two" / "out").state_dict()
    base = cls.from_pretrained(tiny_model_dir).state_dict()
    assert any(not torch.equal(single[k], base[k]) for k in single if k in base)
    for key in single:
        torch.testing.assert_close(launched[key], single[key], **TOLERANCE, msg=key)

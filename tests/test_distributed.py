"""Data-parallel runs: two gloo processes under torchrun give the single-process results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from rlhf_eval.distributed import Processes
from rlhf_eval.store import RunDir
from tests.conftest import MC_ROWS, write_suite

SUITE = """\
name: dp
output_dir: runs
cache_dir: cache_{tag}
models:
  - name: sft
    path: {sft}
    role: baseline
    batch_size: 4
  - name: ppo
    path: {ppo}
    batch_size: 4
tasks:
  - name: truthfulqa_mc
    data: mc.json
"""


def test_shards_cover_every_item_once():
    items = list(range(11))
    shards = [Processes(rank=r, world_size=3).shard(items) for r in range(3)]
    assert sorted(i for shard in shards for i in shard) == items
    assert shards[0] == [0, 3, 6, 9] and shards[2] == [2, 5, 8]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _numbers(run: RunDir) -> dict:
    results = run.results().model_dump()
    return {"metrics": results["metrics"], "comparisons": results["comparisons"]}


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, tiny_model_dir, other_tiny_model_dir):
    outputs = {}
    for tag, launcher in (
        ("one", [sys.executable, "-m", "rlhf_eval"]),
        (
            "two",
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nproc_per_node",
                "2",
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                str(_free_port()),
                "-m",
                "rlhf_eval",
            ],
        ),
    ):
        folder = tmp_path / tag
        folder.mkdir()
        (folder / "mc.json").write_text(json.dumps(MC_ROWS))
        suite = write_suite(
            folder, SUITE.format(tag=tag, sft=tiny_model_dir, ppo=other_tiny_model_dir)
        )
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            [*launcher, "run", str(suite), "--no-progress"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        outputs[tag] = RunDir.open(folder / "runs" / "dp")
    one, two = outputs["one"], outputs["two"]
    assert _numbers(one) == _numbers(two)
    # Both processes did work: the manifest sums their requests, and every sample is there once.
    for model in ("sft", "ppo"):
        ids = [s["doc_id"] for s in two.read_samples(model, "truthfulqa_mc")]
        assert len(ids) == len(set(ids)) == len(MC_ROWS)
    assert two.manifest().requests == one.manifest().requests
    assert (two.path / "report.md").is_file()
    assert two.manifest().processes == 2 and one.manifest().processes == 1

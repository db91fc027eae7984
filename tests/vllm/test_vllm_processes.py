"""vLLM engines in processes of their own: the engine core killed mid-run (a clear stop, then
a resume that recomputes nothing saved), and a data-parallel run, two torchrun processes with
one engine each, whose results equal a single process's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlhf_eval.cli import main
from rlhf_eval.models.vllm import vllm_installed
from rlhf_eval.store import RunDir
from tests.conftest import MC_ROWS, write_suite
from tests.test_distributed import _free_port
from tests.vllm.helpers import FAST_LOAD_ENV, REASON, Borrowed, engine_environment

if not vllm_installed():
    pytest.skip(REASON, allow_module_level=True)

SUITE = """\
name: engines
output_dir: runs
cache_dir: cache_{tag}
stats: {{bootstrap_iterations: 200}}  # the intervals are not what these tests check
models:
  - name: fast
    backend: vllm
    alias: smollm2-135m-instruct
    enforce_eager: true
    max_model_len: 1024
    batch_size: {batch}
    engine_kwargs: {{distributed_executor_backend: uni}}
tasks:
  - name: truthfulqa_mc
    data: mc.json
"""
REQUESTS = 4 * len(MC_ROWS)  # four distinct answers per question


def _suite(folder: Path, tag: str, batch: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mc.json").write_text(json.dumps(MC_ROWS))
    return write_suite(folder, SUITE.format(tag=tag, batch=batch))


def _computed(progress: Path) -> int:
    if not progress.is_file():
        return 0
    events = [json.loads(line) for line in progress.read_text().splitlines() if line.strip()]
    return sum(e.get("requests", 0) for e in events if e.get("event") == "computed")


def _engine_cores(pid: int) -> list[int]:
    """The vLLM engine-core processes under `pid` (vLLM names them VLLM::EngineCore)."""
    import psutil

    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "EngineCore" in " ".join(child.cmdline()) or "EngineCore" in child.name():
                found.append(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.slow
def test_a_killed_engine_stops_the_run_and_the_same_command_resumes(tmp_path):
    """The engine core in its own process (vLLM's default), killed after the first chunk is
    saved: the run exits 2 saying the engine died; the same command finishes, recomputing none
    of the answers saved before."""
    suite = _suite(tmp_path, "kill", batch=8)
    command = [sys.executable, "-m", "rlhf_eval", "run", str(suite), "--no-progress"]
    first = subprocess.Popen(
        command,
        env={**engine_environment(), "VLLM_ENABLE_V1_MULTIPROCESSING": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    progress = tmp_path / "runs" / "engines" / "progress.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and _computed(progress) == 0:
        assert first.poll() is None, first.communicate()[1][-3000:]
        time.sleep(0.1)
    cores = _engine_cores(first.pid)
    assert cores, "no engine-core process found"
    for pid in cores:
        os.kill(pid, signal.SIGKILL)
    _, error = first.communicate(timeout=120)
    assert first.returncode == 2, error[-3000:]
    assert "error: model 'fast': the vLLM engine died" in error
    assert "run the same command again to resume" in error
    saved = _computed(progress)
    assert 0 < saved < REQUESTS

    again = subprocess.run(
        command, env={**engine_environment(), **FAST_LOAD_ENV}, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-3000:]
    counts = RunDir.open(tmp_path / "runs" / "engines").manifest().requests["fast"]
    # Items finished before the kill are not asked again; the rest of what was saved comes
    # from the cache: the second run computes exactly what the first did not.
    assert counts.computed == REQUESTS - saved


def _numbers(run: RunDir) -> dict:
    results = run.results().model_dump()
    return {"metrics": results["metrics"], "comparisons": results["comparisons"]}


@pytest.mark.slow
def test_two_processes_with_an_engine_each_match_one(tmp_path, engine, monkeypatch):
    """torchrun --nproc_per_node 2 (gloo): each process holds its own vLLM engine (its engine
    core in a process of its own, on its own CPU core) and scores every second question; the
    merged results equal one process's."""
    one = _suite(tmp_path / "one", "one")
    two = _suite(tmp_path / "two", "two")
    env = engine_environment()
    # One process: the session's engine, lent to an in-process run (the same options).
    monkeypatch.setattr("rlhf_eval.runner.load_backend", lambda spec, loaded: Borrowed(engine))
    assert main(["run", str(one), "--no-progress"]) == 0
    launcher = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "rlhf_eval", "run", str(two), "--no-progress",
    ]  # fmt: skip
    # VLLM_ENABLE_V1_MULTIPROCESSING=0 is overridden: a process in a torch.distributed group
    # runs its engine core in a process of its own.
    done = subprocess.run(launcher, env={**env, **FAST_LOAD_ENV}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-5000:]
    runs = {tag: RunDir.open(tmp_path / tag / "runs" / "engines") for tag in ("one", "two")}
    assert runs["two"].manifest().processes == 2
    assert _numbers(runs["two"]) == _numbers(runs["one"])
    samples = {
        tag: sorted(s["doc_id"] for s in run.read_samples("fast", "truthfulqa_mc"))
        for tag, run in runs.items()
    }
    assert samples["two"] == samples["one"] and len(samples["one"]) == len(MC_ROWS)

"""Kill a run with SIGKILL at many moments, resume it each time, and check that nothing was lost,
duplicated or computed twice, and that the results equal an uninterrupted run's (issue 14.10).

The kills follow the run's own progress log (progress.jsonl: one line per answered backend
batch, written after its answers reached the cache and its finished samples the store), not
sleeps: attempt k is killed as soon as it has logged k computed batches, so the kill lands in
the batch after (or, late in the run, after the run has ended, which is fine too).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlhf_eval.store import RunDir
from tests.conftest import MC_ROWS, write_suite

SUITE = """\
name: faults
output_dir: runs
cache_dir: cache
models:
  - name: m
    path: {model}
    dtype: float64
    batch_size: 2
    generation: {{max_new_tokens: 6}}
tasks:
  - name: truthfulqa_mc
    data: mc.json
  - name: gsm8k
    data: gsm8k.jsonl
    num_fewshot: 0
    max_new_tokens: 6
"""
KILL_AFTER = (1, 2, 3, 5, 8, 13)
"""Computed batches after which each attempt is killed."""


def make_suite(folder: Path, model: Path) -> Path:
    folder.mkdir()
    rows = [dict(MC_ROWS[0], question=f"Is the wall visible, case {i}?") for i in range(24)]
    (folder / "mc.json").write_text(json.dumps(rows))
    questions = [
        {"question": f"Ann has {i} pens and buys {i + 2}. How many now?", "answer": f"#### {2 * i}"}
        for i in range(16)
    ]
    (folder / "gsm8k.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return write_suite(folder, SUITE.format(model=model))


def command(suite: Path) -> list[str]:
    return [sys.executable, "-m", "rlhf_eval.cli", "run", str(suite), "--no-progress"]


def start(suite: Path) -> subprocess.Popen:
    return subprocess.Popen(command(suite), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def events(run: Path) -> list[dict]:
    path = run / "progress.jsonl"
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def kill_after(process: subprocess.Popen, run: Path, batches: int) -> bool:
    """SIGKILL `process` once it has logged `batches` computed batches; False if it ended
    first."""
    seen = len(events(run))
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        mine = [e for e in events(run)[seen:] if e.get("pid") == process.pid]
        if sum(e["event"] == "computed" for e in mine) >= batches:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.002)
    process.wait()
    assert process.returncode == 0, process.stderr.read().decode()
    return False


def comparable(results: dict) -> dict:
    """results.json without what depends on when and how long it ran."""
    timing = ("created", "wall_seconds", "task_wall_seconds")
    return {k: v for k, v in results.items() if k not in timing}


@pytest.mark.slow
def test_kills_at_many_moments_lose_and_redo_nothing(tmp_path, tiny_model_dir):
    whole = make_suite(tmp_path / "whole", tiny_model_dir)
    assert subprocess.run(command(whole), capture_output=True).returncode == 0
    reference = RunDir.open(tmp_path / "whole/runs/faults")
    unique = reference.manifest().requests["m"].computed

    suite = make_suite(tmp_path / "killed", tiny_model_dir)
    run = tmp_path / "killed/runs/faults"
    killed = [kill_after(start(suite), run, k) for k in KILL_AFTER]
    assert sum(killed) >= 4, "too few attempts were killed mid-run to test anything"
    final = subprocess.run(command(suite), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr

    log = events(run)
    # No finished request computed twice: every computed batch was logged after its answers
    # reached the cache, so a later attempt found them there.
    computed = sum(e["requests"] for e in log if e["event"] == "computed")
    assert computed <= unique
    resumed = RunDir.open(run)
    for task in ("truthfulqa_mc", "gsm8k"):
        ours = resumed.read_samples("m", task)
        theirs = {s["doc_id"]: s for s in reference.read_samples("m", task)}
        # Nothing lost, nothing duplicated, every sample the same as without the kills.
        assert len(ours) == len(theirs) == len({s["doc_id"] for s in ours})
        for sample in ours:
            expected = theirs[sample["doc_id"]]
            assert sample["prediction"] == expected["prediction"]
            for name, value in sample["metrics"].items():
                assert value == pytest.approx(expected["metrics"][name], rel=1e-9, abs=1e-12)
    a, b = comparable(resumed.results().model_dump()), comparable(reference.results().model_dump())
    assert _close(a, b)


def _close(a, b) -> bool:
    """Equal up to float64 rounding (the batches of a resumed run differ from a whole run's)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return a == b

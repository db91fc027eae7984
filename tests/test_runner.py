"""End to end on a tiny model: samples, results, report, resume after SIGKILL, bad caches."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlhf_eval.answering import answer
from rlhf_eval.cli import main
from rlhf_eval.errors import CacheError, RunError
from rlhf_eval.manifest import RequestCounts
from rlhf_eval.models.spec import GenerationDefaults
from rlhf_eval.records import Generation, GenerationRequest
from rlhf_eval.runner import run_suite
from rlhf_eval.store import ResponseCache, RunDir
from rlhf_eval.suite import load_suite
from rlhf_eval.tasks.truthfulqa_mc import TruthfulQAMC
from tests.conftest import MC_ROWS, write_suite

SUITE = """\
name: e2e
output_dir: runs
cache_dir: cache
report_dir: report
models:
  - name: sft
    path: {sft}
    role: baseline
    batch_size: 8
  - name: ppo
    path: {ppo}
    batch_size: 8
tasks:
  - name: truthfulqa_mc
    data: mc.json
gates:
  - metric: truthfulqa_mc2
    max_drop: 1.0
"""


def make_suite(folder: Path, sft: Path, ppo: Path, rows=MC_ROWS, body: str = SUITE) -> Path:
    (folder / "mc.json").write_text(json.dumps(rows))
    return write_suite(folder, body.format(sft=sft, ppo=ppo))


def test_run_end_to_end(tmp_path, tiny_model_dir, other_tiny_model_dir, capsys):
    suite = make_suite(tmp_path, tiny_model_dir, other_tiny_model_dir)
    assert main(["run", str(suite), "--no-progress"]) == 0
    run = RunDir.open(tmp_path / "runs" / "e2e")
    results = run.results()
    assert {(m.model, m.metric) for m in results.metrics} == {
        (model, metric)
        for model in ("sft", "ppo")
        for metric in ("truthfulqa_mc1", "truthfulqa_mc2")
    }
    for metric in results.metrics:
        e = metric.estimate
        assert e.n == len(MC_ROWS) and e.lo <= e.point <= e.hi and metric.n_failed == 0
        # MC1 is a 0/1 proportion (Wilson, or Clopper-Pearson for fewer than 5 successes);
        # MC2 a mean (a bootstrap); the method is always recorded.
        if metric.metric == "truthfulqa_mc1":
            assert e.method in ("wilson", "Clopper-Pearson (fewer than 5 successes)")
        else:
            assert "bootstrap (10000 resamples" in e.method
    assert [(c.candidate, c.baseline) for c in results.comparisons] == [("ppo", "sft")] * 2
    samples = run.read_samples("ppo", "truthfulqa_mc")
    assert len(samples) == len(MC_ROWS)
    assert set(samples[0]) >= {"doc_id", "prompt", "prediction", "metrics", "details"}
    # The stored per-sample metric reproduces the aggregate exactly.
    mc2 = [s["metrics"]["truthfulqa_mc2"] for s in samples]
    point = next(
        m.estimate.point
        for m in results.metrics
        if m.model == "ppo" and m.metric == "truthfulqa_mc2"
    )
    assert point == pytest.approx(sum(mc2) / len(mc2), abs=1e-12)
    manifest = run.manifest()
    assert manifest.models[0].identity.startswith("hf:sha256-")
    assert manifest.models[0].identity != manifest.models[1].identity
    # Parameter counts (reports place models by size): the tiny models' own count.
    from transformers import AutoModelForCausalLM

    tiny = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert manifest.models[0].parameters == sum(p.numel() for p in tiny.parameters())
    assert {"torch", "transformers"} <= set(manifest.packages)
    assert manifest.requests["sft"] == RequestCounts(computed=12 * 4, cached=0)
    # Wall time per model and task; the task's share is part of the model's total.
    task_wall = results.task_wall_seconds
    assert set(task_wall) == {"sft", "ppo"} and set(task_wall["sft"]) == {"truthfulqa_mc"}
    assert 0 < task_wall["sft"]["truthfulqa_mc"] <= results.wall_seconds["sft"]
    assert manifest.task_wall_seconds == task_wall
    assert (tmp_path / "report" / "report.html").is_file()
    assert "| truthfulqa_mc | truthfulqa_mc1 | sft |" in capsys.readouterr().out
    # A second run of the same suite is a no-op: nothing loads, nothing is recomputed.
    assert main(["run", str(suite), "--no-progress"]) == 0
    assert run.manifest().requests["sft"] == RequestCounts(computed=48, cached=0)
    assert len(run.read_samples("sft", "truthfulqa_mc")) == len(MC_ROWS)
    # The gate inside the run (ppo vs sft) passes with a margin of 1.0.
    assert main(["gate", str(run.path)]) == 0
    # Reports re-render from the stored files alone.
    assert main(["report", str(run.path), "--out", str(tmp_path / "again")]) == 0
    assert "truthfulqa_mc2" in (tmp_path / "again" / "report.md").read_text()


def test_resume_after_sigkill_redoes_nothing(tmp_path, tiny_model_dir):
    rows = [dict(MC_ROWS[0], question=f"Is the Great Wall visible, case {i}?") for i in range(3000)]
    body = SUITE.replace("  - name: ppo\n    path: {ppo}\n    batch_size: 8\n", "")
    suite = make_suite(tmp_path, tiny_model_dir, tiny_model_dir, rows=rows, body=body)
    samples_file = tmp_path / "runs/e2e/samples/sft/truthfulqa_mc.jsonl"
    command = [sys.executable, "-m", "rlhf_eval.cli", "run", str(suite), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if samples_file.is_file() and samples_file.stat().st_size > 0:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = [
        json.loads(line)
        for line in samples_file.read_text().splitlines()
        if line.strip().endswith("}")
    ]
    assert 0 < len(written) < len(rows)
    cache = sqlite3.connect(tmp_path / "cache/responses.sqlite")
    cached_before = cache.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    cache.close()
    # A torn line, as a kill in the middle of a write leaves it.
    with samples_file.open("a") as handle:
        handle.write('{"doc_id": "torn", "prom')
    run = run_suite(load_suite(suite), show_progress=False)
    samples = run.read_samples("sft", "truthfulqa_mc")
    assert len(samples) == len(rows) == len({s["doc_id"] for s in samples})
    assert samples[: len(written)] == written  # finished samples were kept, not redone
    assert run.manifest().requests["sft"].computed == len(rows) * 4 - cached_before


def test_corrupt_cache_is_a_clear_error(tmp_path, tiny_model_dir, capsys):
    suite = make_suite(tmp_path, tiny_model_dir, tiny_model_dir)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache/responses.sqlite").write_bytes(b"this is not a database" * 100)
    assert main(["run", str(suite), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "responses.sqlite is corrupt" in error and "delete it" in error
    assert "Traceback" not in error
    with pytest.raises(CacheError):
        run_suite(load_suite(suite), show_progress=False)
    # --no-cache runs regardless.
    assert main(["run", str(suite), "--no-progress", "--no-cache"]) == 0


def test_corrupt_middle_line_is_reported(tmp_path, tiny_model_dir):
    suite = make_suite(tmp_path, tiny_model_dir, tiny_model_dir)
    run = run_suite(load_suite(suite), show_progress=False)
    path = run.samples_path("sft", "truthfulqa_mc")
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:20]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunError, match=r"truthfulqa_mc.jsonl:4: corrupt line"):
        run.read_samples("sft", "truthfulqa_mc")


def test_scorer_errors_are_counted_not_zero(tmp_path, tiny_model_dir, monkeypatch):
    suite = make_suite(tmp_path, tiny_model_dir, tiny_model_dir)
    original = TruthfulQAMC.score

    def flaky(self, doc, responses):
        if doc.data["question"].startswith("Question number 3:"):
            raise RuntimeError("judge timed out")
        return original(self, doc, responses)

    monkeypatch.setattr(TruthfulQAMC, "score", flaky)
    results = run_suite(load_suite(suite), show_progress=False).results()
    for metric in results.metrics:
        assert metric.n_failed == 1 and metric.estimate.n == len(MC_ROWS) - 1
    samples = RunDir(tmp_path / "runs/e2e").read_samples("sft", "truthfulqa_mc")
    failed = [s for s in samples if s["error"]]
    assert len(failed) == 1 and "judge timed out" in failed[0]["error"]
    assert failed[0]["metrics"] == {"truthfulqa_mc1": None, "truthfulqa_mc2": None}


def test_changed_suite_needs_a_new_name_or_overwrite(tmp_path, tiny_model_dir, capsys):
    suite = make_suite(tmp_path, tiny_model_dir, tiny_model_dir)
    assert main(["run", str(suite), "--no-progress"]) == 0
    suite.write_text(suite.read_text().replace("max_drop: 1.0", "max_drop: 0.5"))
    assert main(["run", str(suite), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", str(suite), "--no-progress", "--run-name", "second"]) == 0
    manifest = RunDir.open(tmp_path / "runs/second").manifest()
    assert manifest.requests["sft"] == RequestCounts(computed=0, cached=48)  # all from the cache
    assert main(["run", str(suite), "--no-progress", "--overwrite"]) == 0


class RecordingBackend:
    """Answers generation requests with their own settings, so a test can see them."""

    name = "recorder"
    identity = "recorder"

    def __init__(self):
        self.seen = []

    def generate(self, requests, on_batch=None):
        self.seen.extend(requests)
        return [
            Generation((f"{r.max_new_tokens}/{r.temperature}/{r.stop}",), (1,)) for r in requests
        ]


def test_model_generation_defaults_fill_unset_fields(tmp_path):
    backend = RecordingBackend()
    cache = ResponseCache(tmp_path / "c.sqlite")
    count = {"computed": 0, "cached": 0}
    defaults = GenerationDefaults(max_new_tokens=7, temperature=0.5, stop=["\n"])
    requests = [GenerationRequest("hi"), GenerationRequest("yo", max_new_tokens=3, stop=())]
    answers = answer(requests, backend, cache, count, defaults)
    assert [a.texts[0] for a in answers] == ["7/0.5/('\\n',)", "3/0.5/()"]
    # Other defaults are other requests: nothing stale comes back from the cache.
    other = GenerationDefaults(max_new_tokens=9)
    assert answer(requests[:1], backend, cache, count, other)[0].texts[0] == "9/0.0/()"
    assert answer(requests[:1], backend, cache, count, defaults)[0].texts[0] == "7/0.5/('\\n',)"
    assert count == {"computed": 3, "cached": 1}


def test_models_option_runs_and_reports_a_subset_then_resumes(
    tmp_path, tiny_model_dir, other_tiny_model_dir, capsys
):
    suite = make_suite(tmp_path, tiny_model_dir, other_tiny_model_dir)
    assert main(["run", str(suite), "--no-progress", "--models", "sft"]) == 0
    run = RunDir.open(tmp_path / "runs" / "e2e")
    results = run.results()
    assert {m.model for m in results.metrics} == {"sft"} and results.comparisons == []
    assert [m.name for m in run.manifest().models] == ["sft"]
    # Without --models the same run folder gains the other model; sft comes from the cache.
    assert main(["run", str(suite), "--no-progress"]) == 0
    results = run.results()
    assert {m.model for m in results.metrics} == {"sft", "ppo"}
    assert [(c.candidate, c.baseline) for c in results.comparisons] == [("ppo", "sft")] * 2
    assert run.manifest().requests["sft"] == RequestCounts(computed=48, cached=0)
    # Each attempt's wall time per task is kept: sft's from the first, ppo's from the second.
    assert set(results.task_wall_seconds) == {"sft", "ppo"}
    # An unknown name is a clear error naming the suite's models.
    capsys.readouterr()
    assert main(["run", str(suite), "--no-progress", "--models", "sft,nope"]) != 0
    err = capsys.readouterr().err
    assert "--models names nope" in err and "choose from sft, ppo" in err


def test_a_second_copy_of_a_running_run_exits_2_naming_the_holder(tmp_path, tiny_model_dir, capsys):
    """Issue 14.5: two copies of the same run at once both exited 0 and wrote every sample
    twice. While one copy holds the run (here: its lock, held as a running copy holds it), a
    second exits 2 before touching the folder; once the first ends, the run proceeds."""
    from rlhf_eval.store import RunLock

    suite = make_suite(tmp_path, tiny_model_dir, tiny_model_dir)
    running = RunLock(tmp_path / "runs" / "e2e")
    running.acquire()
    try:
        assert main(["run", str(suite), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"process {os.getpid()}" in err and "--run-name" in err
        assert "Traceback" not in err
        assert not (tmp_path / "runs" / "e2e").exists()
    finally:
        running.release()
    assert main(["run", str(suite), "--no-progress"]) == 0
    samples = RunDir.open(tmp_path / "runs" / "e2e").read_samples("sft", "truthfulqa_mc")
    assert len(samples) == len(MC_ROWS) == len({s["doc_id"] for s in samples})

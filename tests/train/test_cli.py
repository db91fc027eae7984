"""The rlhf-train command line and the bad-input cases of issue 3."""

from __future__ import annotations

import json

import pytest
from tiny_models import build_tokenizer, write_jsonl

from rlhf_train.cli import main
from rlhf_train.data import Demonstration, tokenize_demonstrations
from rlhf_train.errors import TrainConfigError, TrainDataError


def test_cli_runs_sft_from_a_yaml_with_relative_paths(
    tiny_model_dir, demonstrations_file, tmp_path, capsys
):
    config = tmp_path / "configs" / "sft.yaml"
    config.parent.mkdir()
    config.write_text(
        f"model: {tiny_model_dir}\n"
        f"data: {{path: {demonstrations_file}}}\n"
        "output_dir: ../runs/sft\n"
        "progress_bar: false\n"
        "max_length: 64\n"
        "optim: {max_steps: 2, batch_size: 4, micro_batch_size: 4}\n"
    )
    assert main(["sft", str(config)]) == 0
    assert (tmp_path / "runs" / "sft" / "model.safetensors").is_file()
    assert "wrote" in capsys.readouterr().out


def test_cli_config_errors_exit_2_with_the_field_and_no_traceback(tmp_path, capsys):
    config = tmp_path / "rm.yaml"
    config.write_text("model: x\ndata: {path: d.jsonl}\noutput_dir: out\nlearning_rate: 1\n")
    assert main(["rm", str(config)]) == 2
    err = capsys.readouterr().err
    assert "rm.yaml" in err and "learning_rate" in err and "Traceback" not in err
    assert main(["ppo", str(tmp_path / "missing.yaml")]) == 2


def test_cli_data_errors_exit_2(tiny_model_dir, tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "answer": "a"}])
    config = tmp_path / "sft.yaml"
    config.write_text(f"model: {tiny_model_dir}\ndata: {{path: bad.jsonl}}\noutput_dir: out\n")
    assert main(["sft", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1" in err and "prompt" in err


def test_prompt_longer_than_the_context_raises_or_is_skipped():
    tok = build_tokenizer()
    long = Demonstration(" ".join(["cat"] * 50), "yes", "demos.jsonl:7")
    short = Demonstration("cat", "yes", "demos.jsonl:8")
    with pytest.raises(TrainDataError, match=r"demos.jsonl:7: .*longer than max_length 16"):
        tokenize_demonstrations([long, short], tok, 16, "error", "tiny")
    kept, skipped = tokenize_demonstrations([long, short], tok, 16, "skip", "tiny")
    assert (len(kept), skipped) == (1, 1)


def test_missing_eos_token_is_an_error():
    tok = build_tokenizer()
    tok.eos_token = None
    with pytest.raises(TrainDataError, match="has no eos_token"):
        tokenize_demonstrations([Demonstration("a", "b", "x:1")], tok, 16, "error", "tiny")


def test_cli_pipeline_on_tiny_models(tiny_model_dir, demonstrations_file, tmp_path):
    from tiny_models import synthetic_rankings

    from rlhf_train.tracking import read_metrics

    synthetic_rankings(tmp_path / "rankings.jsonl", 24, seed=4)
    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"say {w}"} for w in "abcdefgh"])
    common = "progress_bar: false\n  max_length: 48\n  overlong: skip\n"
    (tmp_path / "pipeline.yaml").write_text(
        "output_dir: runs\n"
        f"sft:\n  model: {tiny_model_dir}\n  data: {{path: {demonstrations_file}}}\n"
        f"  output_dir: runs/sft\n  {common}"
        "  select_by: rm_score\n"
        f"  select_reward_model: {tiny_model_dir}\n"
        "  optim: {max_steps: 2, batch_size: 4, micro_batch_size: 4}\n"
        # No rm.model: the reward model starts from the SFT model (sec. 3.5).
        "rm:\n  data: {path: rankings.jsonl}\n"
        f"  output_dir: runs/rm\n  {common}"
        "  optim: {max_steps: 2, batch_size: 4, micro_batch_size: 4}\n"
        "ppo:\n  prompts: {path: prompts.jsonl}\n  output_dir: runs/ppo_ptx\n"
        f"  {common}"
        "  pretrain: {data: {path: prompts.jsonl, text_field: prompt}, coef: 1.0, batch_size: 2}\n"
        "  iterations: 2\n  rollout_batch_size: 4\n  minibatch_size: 4\n  max_new_tokens: 4\n"
        "  val_fraction: 0.25\n  eval_every: 1\n"
    )
    assert main(["pipeline", str(tmp_path / "pipeline.yaml")]) == 0
    runs = tmp_path / "runs"
    assert (runs / "pipeline_curves.png").stat().st_size > 1000
    assert any("val_rm_score" in m for m in read_metrics(runs / "sft"))
    ppo_metrics = read_metrics(runs / "ppo_ptx")
    assert [m["step"] for m in ppo_metrics if "val_score" in m] == [0, 1, 2]
    assert "final_val_score" in ppo_metrics[-1]
    for name in ("sft", "rm", "ppo_ptx"):
        assert (runs / name / "model.safetensors").is_file()
    rm_config = json.loads((runs / "rm" / "rm_config.json").read_text())
    assert rm_config["model"] == str((runs / "sft").resolve())


def test_eval_suite_runs_the_rlhf_eval_command(tmp_path, capfd):
    from rlhf_train.pipeline import run_eval_suite

    # rlhf-eval, in its own process, refuses the missing suite; its exit code becomes the error.
    with pytest.raises(TrainConfigError, match=r"rlhf-eval exited with 2 on .*absent\.yaml"):
        run_eval_suite(tmp_path / "absent.yaml")
    assert "absent.yaml: cannot read the suite file" in capfd.readouterr().err


def test_eval_suite_without_rlhf_eval_is_a_clear_error(tmp_path, monkeypatch):
    from rlhf_train import pipeline

    monkeypatch.setattr(pipeline, "eval_command_installed", lambda: False)
    with pytest.raises(TrainConfigError, match="needs rlhf-eval's runner .* installation lacks"):
        pipeline.run_eval_suite(tmp_path / "suite.yaml")


def test_shipped_configs_validate():
    from pathlib import Path

    from rlhf_train.config import PipelineConfig, PPOConfig, RMConfig, SFTConfig, load_config

    configs = Path(__file__).resolve().parents[2] / "configs"
    schemas = {
        "sft": SFTConfig,
        "rm": RMConfig,
        "ppo": PPOConfig,
        "demo": PipelineConfig,
        "demo_smollm2": PipelineConfig,
    }
    for name, schema in schemas.items():
        config = load_config(configs / f"{name}.yaml", schema)
        assert config is not None
    demo = load_config(configs / "demo.yaml", PipelineConfig)
    # Relative paths resolve against configs/, so ../../shared/data is the shared data folder.
    assert demo.sft.data.path.parts[-3:] == ("data", "instructions", "seed_tasks.jsonl")
    assert demo.rm.data.path.parent.name == "hh_rlhf"


def test_tiny_random_model_is_built_once_and_loads(tmp_path, monkeypatch, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from rlhf_train import modeling
    from rlhf_train.config import SFTConfig

    monkeypatch.setenv("RLHF_EVAL_HOME", str(tmp_path / "home"))
    # SmolLM2's tokenizer stands in as the tests' tiny tokenizer (no GGUF conversion here).
    monkeypatch.setattr(modeling, "resolve_pretrained", lambda name: str(tiny_model_dir))
    config = SFTConfig.model_validate(
        {"model": "tiny-random-smollm2", "data": {"path": "d.jsonl"}, "output_dir": "out"}
    )
    assert config.model == "tiny-random-smollm2"  # not taken for a path or a hub id
    source = modeling.resolve_model(config.model)
    model = AutoModelForCausalLM.from_pretrained(source)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (128, 4)
    built = (tmp_path / "home" / "models" / "tiny-random-smollm2-v1" / "config.json").stat()
    assert modeling.resolve_model(config.model) == source
    again = (tmp_path / "home" / "models" / "tiny-random-smollm2-v1" / "config.json").stat()
    assert again.st_mtime_ns == built.st_mtime_ns  # the second call reuses the first build

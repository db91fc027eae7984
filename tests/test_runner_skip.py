"""Hub data out of reach: a `data: hub` entry is skipped with its reason printed and recorded in
results and report; the rest of the suite runs; a local file never is skipped."""

from __future__ import annotations

import json

import datasets
import huggingface_hub.constants
import pytest

from rlhf_eval.cli import main
from rlhf_eval.store import RunDir
from tests.conftest import write_suite
from tests.tasks.helpers import FIXTURES

SUITE = f"""\
name: skip
output_dir: runs
cache_dir: cache
report_dir: report
stats: {{bootstrap_iterations: 200}}
models:
  - name: tiny
    path: {{model}}
    batch_size: 8
tasks:
  - name: mmlu
    id: mmlu_hub
    data: hub
  - name: mmlu
    id: mmlu_local
    data: {FIXTURES}/mmlu.jsonl
contrasts:
  - task: mmlu_hub
    minus: mmlu_local
"""


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No hub: the environment variables, and the libraries' own flags (read at import)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_an_unreachable_hub_entry_is_skipped_with_its_reason(
    tmp_path, tiny_model_dir, offline, capsys
):
    suite = write_suite(tmp_path, SUITE.replace("{model}", str(tiny_model_dir)))
    assert main(["run", str(suite), "--no-progress"]) == 0
    printed = capsys.readouterr().err
    assert "skipped task mmlu_hub: cannot load the hub dataset cais/mmlu" in printed

    run = RunDir.open(tmp_path / "runs" / "skip")
    results = run.results()
    assert [(s.task, s.name) for s in results.skipped] == [("mmlu_hub", "mmlu")]
    assert "cannot load the hub dataset cais/mmlu" in results.skipped[0].reason
    assert {m.task for m in results.metrics} == {"mmlu_local"}
    assert results.contrasts == []  # the contrast needs the skipped entry
    assert run.manifest().skipped_tasks.keys() == {"mmlu_hub"}
    local = next(m for m in results.metrics if m.task == "mmlu_local")
    assert local.estimate.n == 4 and local.n_failed == 0

    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Skipped tasks" in report and "**mmlu_hub** (mmlu): cannot load" in report
    assert "Skipped tasks" in (tmp_path / "report" / "report.html").read_text()


def test_nothing_left_to_run_is_an_error(tmp_path, tiny_model_dir, offline, capsys):
    body = SUITE.split("  - name: mmlu\n    id: mmlu_local")[0]
    suite = write_suite(tmp_path, body.replace("{model}", str(tiny_model_dir)))
    assert main(["run", str(suite), "--no-progress"]) == 2
    assert "every task entry was skipped" in capsys.readouterr().err


def test_a_missing_local_file_still_fails_the_run(tmp_path, tiny_model_dir, capsys):
    body = SUITE.replace(f"{FIXTURES}/mmlu.jsonl", "missing.jsonl").split("contrasts:")[0]
    body = body.replace("data: hub", "data: also-missing.jsonl")
    suite = write_suite(tmp_path, body.replace("{model}", str(tiny_model_dir)))
    assert main(["run", str(suite), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_prompts_command_skips_the_same_entries(tmp_path, offline, capsys):
    body = f"""\
    models:
      - {{name: m, alias: smollm2-135m-instruct}}
    tasks:
      - {{name: tydiqa_goldp, data: hub}}
      - {{name: gsm8k, data: {FIXTURES}/gsm8k.jsonl}}
    """
    suite = write_suite(tmp_path, body)
    out = tmp_path / "prompts.jsonl"
    assert main(["prompts", str(suite), str(out)]) == 0
    assert "skipped task tydiqa_goldp: cannot load the hub dataset" in capsys.readouterr().err
    tasks = {json.loads(line)["task"] for line in out.read_text().splitlines()}
    assert tasks == {"gsm8k"}

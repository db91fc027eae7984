"""Suite files: valid ones load, and every mistake names the file, the line and the fix."""

from __future__ import annotations

import pytest

from rlhf_eval.errors import SuiteError
from rlhf_eval.suite import load_suite, resolve_metric_key
from tests.conftest import write_suite

GOOD = """\
name: demo
models:
  - name: sft
    path: {model}
    role: baseline
  - name: ppo
    path: {model}
tasks:
  - name: truthfulqa_mc
    data: data.json
    limit: 5
gates:
  - metric: truthfulqa_mc2
    max_drop: 0.02
"""


def test_valid_suite(tmp_path, tiny_model_dir):
    loaded = load_suite(write_suite(tmp_path, GOOD.format(model=tiny_model_dir)))
    assert loaded.name == "demo"
    assert [m.role for m in loaded.suite.models] == ["baseline", "policy"]
    assert loaded.options["truthfulqa_mc"].limit == 5
    assert loaded.resolve(loaded.suite.output_dir) == tmp_path / "runs"


def _error(tmp_path, body: str) -> str:
    with pytest.raises(SuiteError) as caught:
        load_suite(write_suite(tmp_path, body))
    return str(caught.value)


def test_malformed_yaml_names_the_line(tmp_path):
    message = _error(tmp_path, "models:\n  - name: a\n    path: [unclosed\ntasks: []\n")
    assert "suite.yaml:4" in message and "malformed YAML" in message


def test_unknown_field_lists_valid_fields(tmp_path, tiny_model_dir):
    body = GOOD.format(model=tiny_model_dir).replace("    role: baseline", "    rolee: baseline")
    message = _error(tmp_path, body)
    assert "suite.yaml:5" in message and "models[0].rolee" in message
    assert "unknown field" in message and "role" in message and "hub_id" in message


def test_unknown_task_suggests_and_lists(tmp_path, tiny_model_dir):
    body = GOOD.format(model=tiny_model_dir).replace("- name: truthfulqa_mc", "- name: truthfulqa")
    message = _error(tmp_path, body)
    assert "suite.yaml:9" in message and "tasks[0].name" in message
    assert "unknown task 'truthfulqa'" in message and "truthfulqa_mc" in message


def test_unknown_task_option_lists_the_tasks_options(tmp_path, tiny_model_dir):
    body = GOOD.format(model=tiny_model_dir).replace("    limit: 5", "    shots: 5")
    message = _error(tmp_path, body)
    assert "suite.yaml:11" in message and "tasks[0].shots" in message
    assert "selection" in message and "num_fewshot" in message


def test_bad_option_value(tmp_path, tiny_model_dir):
    body = GOOD.format(model=tiny_model_dir).replace("    limit: 5", "    selection: best")
    message = _error(tmp_path, body)
    assert "tasks[0].selection" in message and "sum_logprob" in message


def test_missing_model_path(tmp_path, tiny_model_dir):
    body = GOOD.format(model=tiny_model_dir).replace(
        f"path: {tiny_model_dir}\n    role", "path: no/such/model\n    role"
    )
    message = _error(tmp_path, body)
    assert "suite.yaml:4" in message and "models[0].path" in message
    assert "does not exist" in message


def test_model_needs_exactly_one_source(tmp_path):
    message = _error(tmp_path, "models:\n  - name: a\ntasks:\n  - name: truthfulqa_mc\n")
    assert "models[0]" in message and "exactly one of `path`" in message


OPENAI = """\
models:
  - name: served
    backend: openai
{fields}
tasks:
  - name: truthfulqa_mc
    data: data.json
"""


def test_openai_model_entry(tmp_path):
    fields = "    base_url: http://127.0.0.1:8000\n    model: smollm2\n    max_concurrency: 4"
    spec = load_suite(write_suite(tmp_path, OPENAI.format(fields=fields))).suite.models[0]
    assert (spec.base_url, spec.model, spec.max_concurrency) == (
        "http://127.0.0.1:8000",
        "smollm2",
        4,
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("    base_url: http://127.0.0.1:8000", "`backend: openai` needs model"),
        ("    base_url: 127.0.0.1:8000\n    model: m", "not an http(s) URL"),
        (
            "    base_url: http://127.0.0.1:8000\n    model: m\n    alias: smollm2-135m-instruct",
            "does not use alias",
        ),
    ],
)
def test_openai_model_entry_mistakes(tmp_path, fields, expected):
    message = _error(tmp_path, OPENAI.format(fields=fields))
    assert "suite.yaml:2" in message and expected in message


def test_server_fields_need_backend_openai(tmp_path):
    body = OPENAI.format(fields="    alias: smollm2-135m-instruct\n    model: m").replace(
        "    backend: openai\n", ""
    )
    message = _error(tmp_path, body)
    assert "only `backend: openai` uses model" in message


def test_unknown_alias(tmp_path):
    body = "models:\n  - name: a\n    alias: gpt-5\ntasks:\n  - name: truthfulqa_mc\n"
    assert "smollm2-135m-instruct" in _error(tmp_path, body)


def test_duplicates_and_two_baselines(tmp_path, tiny_model_dir):
    body = GOOD.format(model=tiny_model_dir).replace("name: ppo", "name: sft")
    assert "duplicate model name sft" in _error(tmp_path, body)
    body = GOOD.format(model=tiny_model_dir).replace(
        f"path: {tiny_model_dir}\ntasks",
        f"path: {tiny_model_dir}\n    role: baseline\ntasks",
    )
    assert "at most one model" in _error(tmp_path, body)


def test_unknown_gate_metric(tmp_path, tiny_model_dir):
    body = GOOD.format(model=tiny_model_dir).replace("metric: truthfulqa_mc2", "metric: mc3")
    message = _error(tmp_path, body)
    assert "suite.yaml:13" in message and "gates[0].metric" in message
    assert "truthfulqa_mc/truthfulqa_mc2" in message


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(SuiteError, match="cannot read"):
        load_suite(tmp_path / "absent.yaml")
    assert "YAML mapping" in _error(tmp_path, "- just\n- a list\n")


def test_metric_keys():
    keys = ["a/x", "b/x", "b/y"]
    assert resolve_metric_key("b/x", keys) == "b/x"
    assert resolve_metric_key("y", keys) == "b/y"
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_metric_key("x", keys)

"""Suite files: valid ones load, and every mistake names the file, the line and the fix."""

from __future__ import annotations

import pytest

from rlhf_eval.errors import SuiteError
from rlhf_eval.suite import check_writable_folders, load_suite, resolve_metric_key
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
    ("fields", "line", "expected"),
    [
        ("    base_url: http://127.0.0.1:8000", 2, "`backend: openai` needs `model`: the model"),
        ("    base_url: 127.0.0.1:8000\n    model: m", 4, "not an http(s) URL"),
        (
            "    base_url: http://127.0.0.1:8000\n    model: m\n    alias: smollm2-135m-instruct",
            6,
            "field `models[0].alias`: `backend: openai` does not use alias",
        ),
    ],
)
def test_openai_model_entry_mistakes(tmp_path, fields, line, expected):
    message = _error(tmp_path, OPENAI.format(fields=fields))
    assert f"suite.yaml:{line}:" in message and expected in message


def test_server_fields_need_backend_openai(tmp_path):
    body = OPENAI.format(fields="    alias: smollm2-135m-instruct\n    model: m").replace(
        "    backend: openai\n", ""
    )
    message = _error(tmp_path, body)
    assert "suite.yaml:4:" in message and "field `models[0].model`" in message
    assert "only `backend: openai` or `backend: precomputed` uses model" in message


def test_another_backends_field_names_its_line_and_backend(tmp_path):
    body = OPENAI.format(fields="    alias: smollm2-135m-instruct\n    max_model_len: 512")
    message = _error(tmp_path, body.replace("    backend: openai\n", ""))
    assert message.count("\n") == 0  # one error
    assert "suite.yaml:4:5: field `models[0].max_model_len`" in message
    assert "only `backend: vllm` uses max_model_len; remove it or set `backend: vllm`" in message


def test_unknown_backend_suggests_the_close_one(tmp_path):
    message = _error(tmp_path, OPENAI.format(fields="").replace("openai", "vlm"))
    assert "suite.yaml:3:5: field `models[0].backend`: unknown backend 'vlm'" in message
    assert "Did you mean `vllm`?" in message and "reward_model" in message


def test_misspelt_field_of_another_backend_is_suggested_with_its_backend(tmp_path):
    body = "models:\n  - name: a\n    alias: smollm2-135m-instruct\n    max_model_lenn: 9\n"
    message = _error(tmp_path, body + "tasks:\n  - name: truthfulqa_mc\n")
    assert "suite.yaml:4:5: field `models[0].max_model_lenn`: unknown field." in message
    assert "Did you mean `max_model_len` (read by `backend: vllm`)?" in message
    assert "chat_template" in message and "reward_template" not in message


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


# ---- issue 14: bad input gets one clear message (each failed on the code before) ----------


def test_invalid_utf8_names_the_line_and_the_fix(tmp_path, tiny_model_dir):
    """Issue 14.11: a Latin-1 é in a comment, or random bytes, raised UnicodeDecodeError."""
    text = GOOD.format(model=tiny_model_dir).replace("name: demo", "name: demo  # caf\xe9")
    path = tmp_path / "suite.yaml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert "suite.yaml:1" in message and "UTF-8" in message and "0xe9" in message
    path.write_bytes(b"\x80\x81\xfe\xff garbage")
    with pytest.raises(SuiteError, match="not UTF-8"):
        load_suite(path)


def test_yaml_error_names_line_column_and_where_the_bracket_opened(tmp_path):
    """Issue 14.12: the line alone, not the column nor where the unclosed bracket opened."""
    message = _error(tmp_path, "models:\n  - name: a\n    path: [unclosed\ntasks: []\n")
    assert "suite.yaml:4:" in message  # line and column of the problem
    assert "line 3, column 11" in message and "flow sequence" in message


def test_unknown_top_level_field_suggests_the_close_one(tmp_path, tiny_model_dir):
    """Issue 14.13: `taks:` listed the valid fields but did not say "did you mean `tasks`"."""
    body = GOOD.format(model=tiny_model_dir).replace("tasks:", "taks:")
    message = _error(tmp_path, body)
    assert "did you mean `tasks`" in message.lower()


@pytest.mark.parametrize("limit", [-5, 0])
def test_count_options_are_bounded(tmp_path, tiny_model_dir, limit):
    """Issue 14.6: `limit: -5` scored 15 of 20 items and `limit: 0` scored all of them."""
    body = GOOD.format(model=tiny_model_dir).replace("limit: 5", f"limit: {limit}")
    message = _error(tmp_path, body)
    assert "tasks[0].limit" in message and "greater than or equal to 1" in message


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_non_finite_numbers_are_refused(tmp_path, tiny_model_dir, value):
    """Issue 14.7 (suite side): a gate margin of nan fails every check, inf passes every one."""
    body = GOOD.format(model=tiny_model_dir).replace("max_drop: 0.02", f"max_drop: {value}")
    assert "finite number" in _error(tmp_path, body)


WIN_RATE_WITHOUT_BASELINE = """\
models:
  - name: a
    path: {model}
  - name: b
    path: {model}
judges:
  - name: rm
    path: {model}
tasks:
  - name: instructions
    id: answers
    data: prompts.jsonl
  - name: win_rate
    of: answers
    judge: rm
    judge_kind: reward_model
"""


def test_win_rate_without_a_baseline_is_refused_when_the_suite_loads(tmp_path, tiny_model_dir):
    """Issue 14.8: it loaded every model and the judge, then failed every sample."""
    message = _error(tmp_path, WIN_RATE_WITHOUT_BASELINE.format(model=tiny_model_dir))
    assert "suite.yaml:13" in message and "role: baseline" in message


@pytest.mark.parametrize("field", ["output_dir", "cache_dir", "report_dir"])
@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_unwritable_folders_are_refused_before_the_run(tmp_path, tiny_model_dir, field, where):
    """Issue 14.14: a traceback, and for report_dir only after the whole run computed."""
    (tmp_path / "a_file").write_text("x")
    target = tmp_path / "a_file" / "runs" if where == "under_a_file" else "/proc/rlhf-eval"
    body = GOOD.format(model=tiny_model_dir) + f"{field}: {target}\n"
    loaded = load_suite(write_suite(tmp_path, body))
    with pytest.raises(SuiteError) as caught:
        check_writable_folders(loaded)
    message = str(caught.value)
    assert f"`{field}`" in message and "cannot be written" in message and "suite.yaml:" in message

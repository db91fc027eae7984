"""AlpacaEval: the instructions and reference answers, both-order verdicts against the reference
on a hand-made judge (a length-biased one and a position-biased one), unreadable verdicts as
counted failures, bad data, the hub out of reach, and a run with a tiny model as its own judge."""

from __future__ import annotations

import json
import re

import pytest

from rlhf_eval.errors import DataError, DataUnavailable
from rlhf_eval.records import Generation, Loglikelihood, PromptSource
from rlhf_eval.runner import run_suite
from rlhf_eval.suite import load_suite
from rlhf_eval.tasks.alpaca_eval import AlpacaEval, AlpacaEvalOptions
from tests.conftest import write_suite
from tests.services import StubServices
from tests.tasks.helpers import FIXTURES

RESPONSE = re.compile(r"<<<response ([AB]) \w+>>>\n(.*?)\n<<<end of response \1", re.DOTALL)


def make(**options) -> AlpacaEval:
    options.setdefault("data", "alpaca_eval.jsonl")
    options.setdefault("judge", "j")
    return AlpacaEval(AlpacaEvalOptions(**options), FIXTURES)


class FakeJudges:
    """A judge that prefers the longer response (`prefer="longer"`) or always answers A."""

    def __init__(self, prefer: str = "longer", said: str = "A"):
        self.prefer, self.said = prefer, said
        self.asked: list[str] = []

    def _letter(self, prompt: str) -> str:
        self.asked.append(prompt)
        if self.prefer == "first":
            return "A"
        a, b = (text for _, text in RESPONSE.findall(prompt))
        return "A" if len(a) > len(b) else "B"

    def loglikelihood(self, name, requests):
        out = []
        for request in requests:
            winner = self._letter(request.context) if request.continuation == " A" else None
            if winner is not None:
                self._winner = winner
            good = request.continuation.strip() == self._winner
            out.append(Loglikelihood(-0.1 if good else -3.0, 1, good))
        return out

    def generate(self, name, requests):
        return [Generation(texts=(self.said,), n_tokens=(1,)) for _ in requests]


def answer(text: str) -> list[Generation]:
    return [Generation(texts=(text,), n_tokens=(len(text.split()),))]


def test_documents_and_requests():
    task = make()
    docs = task.documents()
    assert [d.data["dataset"] for d in docs] == ["helpful_base", "koala", "helpful_base"]
    (request,) = task.requests(docs[0])
    assert request.prompt == "Name a fruit that is yellow."
    assert (request.temperature, request.stop, request.max_new_tokens) == (0.0, (), 1024)
    assert request.source == PromptSource(text=request.prompt)


def test_both_orders_against_the_reference_by_hand():
    task = make()
    judges = FakeJudges("longer")
    docs = task.documents()
    long = "Bananas are yellow, and so are lemons, but the banana is the classic answer here."
    samples = task.score_batch(docs[:2], [answer(long), answer("Bat")], StubServices(judges))
    # Longer than the reference in both orders: a win; shorter ("Bat" vs "Hat.") a loss.
    assert samples[0].metrics == {"win_rate": 1.0, "win": 1.0, "loss": 0.0, "tie": 0.0,
                                  "consistent": 1.0, "output_tokens": 15.0,
                                  "distinct_words": 13.0}  # fmt: skip
    assert samples[1].metrics["win_rate"] == 0.0 and samples[1].metrics["loss"] == 1.0
    assert samples[0].details["model_first"]["verdict"] == "A"
    assert samples[0].details["model_second"]["verdict"] == "B"
    assert (samples[0].details["length"], samples[0].details["reference_length"]) == (len(long), 27)
    assert samples[0].target == "A banana is a yellow fruit."
    assert len(judges.asked) == 4  # two orders per document, one batch
    # The model's answer is response A in the first order and B in the second.
    assert RESPONSE.findall(judges.asked[0])[0][1] == long
    assert RESPONSE.findall(judges.asked[1])[1][1] == long


def test_a_position_biased_judge_gives_ties():
    task = make()
    judges = StubServices(FakeJudges("first"))
    sample = task.score_batch(task.documents()[:1], [answer("Lemon.")], judges)[0]
    assert sample.metrics == {"win_rate": 0.5, "win": 0.0, "loss": 0.0, "tie": 1.0,
                              "consistent": 0.0, "output_tokens": 1.0,
                              "distinct_words": 1.0}  # fmt: skip


def test_an_unreadable_verdict_is_a_failure_not_a_loss():
    task = make(verdict_by="generate")
    unreadable = StubServices(FakeJudges(said="I think the first one."))
    sample = task.score_batch(task.documents()[:1], [answer("Lemon.")], unreadable)[0]
    assert sample.error is not None and "unreadable" in sample.error
    assert set(sample.metrics.values()) == {None}
    says_b = StubServices(FakeJudges(said="B"))
    sample = task.score_batch(task.documents()[:1], [answer("Lemon.")], says_b)[0]
    assert sample.error is None and sample.metrics["win_rate"] == 0.5  # B then B: a tie


def test_bad_records_name_the_file_and_record(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"instruction": "Hi", "output": ""}) + "\n")
    with pytest.raises(DataError, match=r"a\.jsonl, record 1: missing field\(s\) output"):
        AlpacaEval(AlpacaEvalOptions(data=str(path), judge="j"), tmp_path).documents()


def test_hub_out_of_reach_is_data_unavailable(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataUnavailable, match="tatsu-lab/alpaca_eval .alpaca_eval_gpt4_baseline"):
        AlpacaEval(AlpacaEvalOptions(judge="j"), tmp_path).documents()


SUITE = f"""\
name: alpaca-e2e
output_dir: runs
cache_dir: cache
stats: {{bootstrap_iterations: 200}}
models:
  - {{name: tiny, path: {{model}}, batch_size: 4}}
judges:
  - {{name: judge, path: {{model}}, batch_size: 4}}
tasks:
  - {{name: alpaca_eval, data: {FIXTURES}/alpaca_eval.jsonl, judge: judge, max_new_tokens: 4}}
"""


LENGTH_METRICS = ("output_tokens", "distinct_words")


def test_end_to_end_with_a_tiny_judge(tmp_path, tiny_model_dir):
    suite = write_suite(tmp_path, SUITE.replace("{model}", str(tiny_model_dir)))
    run = run_suite(load_suite(suite), show_progress=False)
    results = run.results()
    win = next(m for m in results.metrics if m.metric == "win_rate")
    assert win.estimate.n == 3 and win.n_failed == 0
    assert {(g.group, g.metric) for g in results.subgroups if g.metric == "win_rate"} == {
        ("helpful_base", "win_rate"),
        ("koala", "win_rate"),
    }
    samples = run.read_samples("tiny", "alpaca_eval")
    assert all(s["metrics"]["win_rate"] in (0.0, 0.5, 1.0) for s in samples)
    assert run.manifest().judge_requests["judge"].computed == 3 * 2 * 2
    # Length bias beside the win rate: tokens and distinct words per answer, with intervals...
    lengths = {m.metric: m.estimate for m in results.metrics if m.metric in LENGTH_METRICS}
    assert set(lengths) == set(LENGTH_METRICS) and all(e.n == 3 for e in lengths.values())
    tokens = [s["details"]["n_tokens"] for s in samples]
    assert lengths["output_tokens"].point == pytest.approx(sum(tokens) / 3)
    # ...and the LC win rate in the report's preference section, against the reference.
    from rlhf_eval.report.preference import preference_markdown, preference_report

    report = preference_report(run.path, results, run.manifest())
    (row,) = report.summary_rows()
    assert (row["judge entry"], row["model"]) == ("alpaca_eval", "tiny")
    assert row["LC win rate"] != "n/a" and row["win rate"] == f"{win.estimate.point:.4f}"
    assert "| alpaca_eval | judge | tiny |" in preference_markdown(report)


def test_the_report_note_says_whose_judge_it_is():
    (note,) = make(judge="gpt").notes()
    assert "judged by 'gpt' against the gpt4_turbo reference" in note and "leaderboard" in note

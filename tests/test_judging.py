"""Judges, subgroups and contrasts through run_suite on tiny models."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from rlhf_eval.errors import SuiteError
from rlhf_eval.manifest import RequestCounts
from rlhf_eval.records import (
    Document,
    Generation,
    GenerationRequest,
    LoglikelihoodRequest,
    MetricSpec,
    Sample,
)
from rlhf_eval.runner import run_suite
from rlhf_eval.suite import load_suite
from rlhf_eval.tasks.base import Task, TaskOptions, register_task
from tests.conftest import write_suite


class JudgedOptions(TaskOptions):
    judge: str
    variant: str = "plain"
    fail_on: str | None = None
    """A document id whose chunk the task fails, to check failures are counted."""

    def judge_names(self) -> list[str]:
        return [self.judge]


@register_task
class JudgedEcho(Task):
    """Six questions; the judge's P(" yes") after each answer is the score."""

    name = "test_judged_echo"
    description = "test task scored by a judge"
    Options = JudgedOptions
    metrics = (
        MetricSpec("p_yes", "mean"),
        MetricSpec("judged_yes", "proportion"),
    )
    breakdowns: ClassVar[tuple[str, ...]] = ("group",)
    options: JudgedOptions
    calls: ClassVar[list[int]] = []

    def documents(self) -> list[Document]:
        return [
            Document(id=f"q{i}", data={"q": f"question {i}", "group": "ab"[i % 2]})
            for i in range(6)
        ]

    def requests(self, doc: Document) -> list[GenerationRequest]:
        prompt = f"{self.options.variant}: {doc.data['q']}"
        return [GenerationRequest(prompt, max_new_tokens=3, temperature=0.0)]

    def score_batch(self, docs, responses, services) -> list[Sample]:
        if self.options.fail_on in {d.id for d in docs}:
            raise RuntimeError("judge unavailable")
        texts = [r[0].texts[0] for r in responses]
        asks = [
            LoglikelihoodRequest(f"Q: {d.data['q']}\nA: {t}\nTrue:", " yes")
            for d, t in zip(docs, texts, strict=True)
        ]
        JudgedEcho.calls.append(len(asks))
        verdicts = services.judges.loglikelihood(self.options.judge, asks)
        return [
            Sample(
                doc_id=d.id,
                prompt=d.data["q"],
                target=None,
                prediction=t,
                metrics={
                    "p_yes": math.exp(v.logprob),
                    "judged_yes": float(math.exp(v.logprob) >= 0.5),
                },
                details={"group": d.data["group"]},
            )
            for d, t, v in zip(docs, texts, verdicts, strict=True)
        ]


SUITE = """\
name: judged
output_dir: runs
cache_dir: cache
models:
  - name: a
    path: {a}
  - name: b
    path: {b}
judges:
  - name: truth
    path: {judge}
tasks:
  - name: test_judged_echo
    id: plain
    judge: truth
  - name: test_judged_echo
    id: polite
    judge: truth
    variant: polite
contrasts:
  - task: polite
    minus: plain
"""


def test_judge_scores_subgroups_and_contrasts(tmp_path, tiny_model_dir, other_tiny_model_dir):
    body = SUITE.format(a=tiny_model_dir, b=other_tiny_model_dir, judge=tiny_model_dir)
    loaded = load_suite(write_suite(tmp_path, body))
    JudgedEcho.calls.clear()
    run = run_suite(loaded, show_progress=False)
    # One judge batch per (model, task entry) chunk, each of all six documents.
    assert JudgedEcho.calls == [6, 6, 6, 6]
    manifest = run.manifest()
    assert [j.name for j in manifest.judges] == ["truth"]
    counts = manifest.judge_requests["truth"]
    assert counts.computed + counts.cached == 24
    results = run.results()
    samples = run.read_samples("a", "plain")
    p_yes = {s["doc_id"]: s["metrics"]["p_yes"] for s in samples}
    assert all(0.0 < p < 1.0 for p in p_yes.values())
    overall = next(
        m for m in results.metrics if (m.model, m.task, m.metric) == ("a", "plain", "p_yes")
    )
    assert overall.estimate.point == pytest.approx(sum(p_yes.values()) / 6)
    # Subgroups: each group's mean over its own three documents.
    for group in "ab":
        sub = next(
            s
            for s in results.subgroups
            if (s.model, s.task, s.metric, s.by, s.group) == ("a", "plain", "p_yes", "group", group)
        )
        members = [p_yes[f"q{i}"] for i in range(6) if "ab"[i % 2] == group]
        assert sub.estimate.n == 3
        assert sub.estimate.point == pytest.approx(sum(members) / 3)
    # Contrasts: polite minus plain, paired per document, for every model and metric.
    assert {(c.model, c.metric) for c in results.contrasts} == {
        (m, k) for m in "ab" for k in ("p_yes", "judged_yes")
    }
    polite = {s["doc_id"]: s["metrics"]["p_yes"] for s in run.read_samples("a", "polite")}
    contrast = next(c for c in results.contrasts if (c.model, c.metric) == ("a", "p_yes"))
    expected = sum(polite[d] - p_yes[d] for d in p_yes) / 6
    assert contrast.delta.point == pytest.approx(expected)
    assert contrast.delta.n == 6
    from rlhf_eval.report.markdown import render_markdown

    markdown = render_markdown(results, manifest)
    assert "## Contrasts (paired, same items, same model)" in markdown
    assert "| a | p_yes | polite - plain |" in markdown
    assert "## By subgroup" in markdown
    from rlhf_eval.report.variants import VariantGroup, variant_bars, variant_groups

    groups = variant_groups(results)
    assert groups == [
        VariantGroup("test_judged_echo", ["plain", "polite"], ["p_yes", "judged_yes"])
    ]
    assert variant_bars(results, groups[0]).startswith(b"\x89PNG")

    # A second run answers every judge request from the cache.
    again = run_suite(loaded, run_name="again", show_progress=False)
    counts = again.manifest().judge_requests["truth"]
    assert counts == RequestCounts(computed=0, cached=24)


def test_a_failing_judge_batch_is_counted_not_zero(tmp_path, tiny_model_dir):
    body = f"""\
    name: failing
    output_dir: runs
    cache_dir: cache
    models:
      - name: a
        path: {tiny_model_dir}
    judges:
      - name: truth
        path: {tiny_model_dir}
    tasks:
      - name: test_judged_echo
        judge: truth
        fail_on: q3
    """
    run = run_suite(load_suite(write_suite(tmp_path, body)), show_progress=False)
    metric = next(m for m in run.results().metrics if m.metric == "p_yes")
    assert metric.n_failed == 6 and metric.estimate.n == 0 and metric.estimate.point is None
    samples = run.read_samples("a", "test_judged_echo")
    assert all(s["error"] == "RuntimeError: judge unavailable" for s in samples)


def test_suite_rejects_unknown_judge_and_bad_contrast(tmp_path, tiny_model_dir):
    body = f"""\
    models:
      - name: a
        path: {tiny_model_dir}
    tasks:
      - name: test_judged_echo
        judge: nobody
    """
    with pytest.raises(SuiteError, match="judge 'nobody'.*Fix: add a `judges:` entry"):
        load_suite(write_suite(tmp_path, body))
    body = f"""\
    models:
      - name: a
        path: {tiny_model_dir}
    judges:
      - name: truth
        path: {tiny_model_dir}
    tasks:
      - name: test_judged_echo
        judge: truth
    contrasts:
      - task: test_judged_echo
        minus: missing
    """
    with pytest.raises(
        SuiteError, match=r"suite.yaml:\d+:\d+: field `contrasts\[0\].minus`: no task"
    ):
        load_suite(write_suite(tmp_path, body))
    body = f"""\
    models:
      - name: a
        path: {tiny_model_dir}
    judges:
      - name: truth
        path: {tmp_path / "absent"}
    tasks:
      - name: test_judged_echo
        judge: truth
    """
    with pytest.raises(SuiteError, match=r"`judges\[0\].path`: .*absent does not exist"):
        load_suite(write_suite(tmp_path, body))


def test_generation_scores_survive_the_cache(tmp_path):
    from rlhf_eval.store import ResponseCache

    cache = ResponseCache(tmp_path / "c.sqlite")
    made = Generation(texts=("x",), n_tokens=(1,), scores=({"toxicity": 0.25},))
    key = ResponseCache.key("m", GenerationRequest("p"))
    cache.put_many({key: made})
    assert cache.get_many([key])[key] == made

"""Aggregation of corpus metrics and of comparisons against `role: reference`: hand-made samples
in a run directory, results checked against sacrebleu, Holm and the bootstrap by hand."""

from __future__ import annotations

import json

import pytest
import sacrebleu

from rlhf_common import stats
from rlhf_eval.aggregate import compute_results
from rlhf_eval.estimation import count_failed
from rlhf_eval.gate import compare_runs
from rlhf_eval.manifest import Manifest, ModelRecord
from rlhf_eval.records import Document, Sample
from rlhf_eval.results import Results
from rlhf_eval.store import RunDir
from rlhf_eval.suite import load_suite
from rlhf_eval.tasks.base import registered_tasks
from tests.conftest import write_suite
from tests.tasks.helpers import FIXTURES

SUITE = f"""\
name: tax
seed: 11
stats:
  bootstrap_iterations: 2000
models:
  - name: base
    alias: smollm2-135m-instruct
    role: reference
  - name: chat
    alias: smollm2-135m-instruct
    chat_template: true
tasks:
  - name: drop
    data: {FIXTURES / "drop.jsonl"}
  - name: wmt15_fr_en
    data: {FIXTURES / "wmt.jsonl"}
"""

REFERENCES = [
    f"The number {i} is written here today" + " and then more" * (i % 4) for i in range(12)
]
BASE_HYPOTHESES = [f"Number {i} written today" + " then" * (i % 3) for i in range(12)]
CHAT_HYPOTHESES = [" ".join(r.split()[: 4 + i % 5]) for i, r in enumerate(REFERENCES)]


def drop_samples(correct: list[bool]) -> list[Sample]:
    """30 DROP samples on 10 passages (3 questions each)."""
    return [
        Sample(
            doc_id=f"d{i}",
            prompt="",
            target=["x"],
            prediction="x" if ok else "y",
            metrics={"drop_f1": float(ok), "drop_em": float(ok)},
            cluster=f"passage{i // 3}",
        )
        for i, ok in enumerate(correct)
    ]


def wmt_samples(hypotheses: list[str]) -> list[Sample]:
    return [
        Sample(
            doc_id=f"s{i}",
            prompt="",
            target=ref,
            prediction=hyp,
            metrics={"bleu": 0.0},
            details={"hypothesis": hyp, "reference": ref},
        )
        for i, (hyp, ref) in enumerate(zip(hypotheses, REFERENCES, strict=True))
    ]


@pytest.fixture
def results(tmp_path) -> Results:
    loaded = load_suite(write_suite(tmp_path, SUITE))
    tasks = {
        spec.task_id: registered_tasks()[spec.name](loaded.options[spec.task_id], loaded.base_dir)
        for spec in loaded.suite.tasks
    }
    manifest = Manifest(fingerprint="f", run_name="tax", seed=11, stats=loaded.suite.stats)
    run = RunDir.start(tmp_path / "run", manifest)
    run.append_samples("base", "drop", drop_samples([True] * 30))
    # The chat model fails 24 of 30 questions: a clear regression.
    run.append_samples("chat", "drop", drop_samples([i % 5 == 0 for i in range(30)]))
    run.append_samples("base", "wmt15_fr_en", wmt_samples(BASE_HYPOTHESES))
    run.append_samples("chat", "wmt15_fr_en", wmt_samples(CHAT_HYPOTHESES))
    models = [
        ModelRecord(name="base", role="reference", identity="a"),
        ModelRecord(name="chat", role="policy", identity="b"),
    ]
    # The documents the hand-made samples stand for (their ids and passages), as a run reads them.
    documents = {
        "drop": [Document(f"d{i}", {"q": i}, cluster=f"passage{i // 3}") for i in range(30)],
        "wmt15_fr_en": [Document(f"s{i}", {"fr": i}) for i in range(12)],
    }
    results = compute_results(run, loaded, tasks, models, documents, {})
    run.write_results(results)
    return results


def test_corpus_bleu_is_sacrebleus_with_a_bootstrap_interval(results):
    bleu = {m.model: m for m in results.metrics if m.metric == "bleu"}
    for model, hyps in (("base", BASE_HYPOTHESES), ("chat", CHAT_HYPOTHESES)):
        estimate = bleu[model].estimate
        expected = sacrebleu.corpus_bleu(hyps, [REFERENCES]).score
        assert estimate.point == pytest.approx(expected, abs=1e-9)
        assert estimate.lo <= estimate.point <= estimate.hi and estimate.n == 12
        # Corpus statistics get Hesterberg's expanded percentile interval (docs/statistics.md).
        assert estimate.method == "expanded percentile bootstrap (2000 resamples)"
        assert bleu[model].kind == "corpus"


def test_comparisons_against_the_reference(results):
    tax = {c.metric: c for c in results.comparisons}
    assert {c.against for c in results.comparisons} == {"reference"}
    assert all((c.candidate, c.baseline) == ("chat", "base") for c in results.comparisons)
    bleu = tax["bleu"]
    base = sacrebleu.corpus_bleu(BASE_HYPOTHESES, [REFERENCES]).score
    chat = sacrebleu.corpus_bleu(CHAT_HYPOTHESES, [REFERENCES]).score
    assert bleu.delta.point == pytest.approx(chat - base, abs=1e-9)
    assert (bleu.candidate_point, bleu.baseline_point) == (pytest.approx(chat), pytest.approx(base))
    assert 0 < bleu.delta.lo < bleu.delta.point < bleu.delta.hi
    assert bleu.delta.method.startswith("paired")
    f1 = tax["drop_f1"]
    assert f1.delta.point == pytest.approx(6 / 30 - 1)
    assert f1.delta.method == (
        "paired expanded percentile bootstrap (2000 resamples, clustered by 10 groups)"
    )


def test_holm_over_headline_metrics_and_regression_flags(results):
    tax = {c.metric: c for c in results.comparisons}
    headline = [tax["drop_f1"], tax["bleu"]]
    assert [c.p_holm for c in headline] == stats.holm([c.p_value for c in headline])
    assert tax["drop_em"].p_holm is None and tax["drop_em"].p_value is not None
    assert tax["drop_f1"].regression and not tax["bleu"].regression  # BLEU went up
    assert not tax["drop_em"].regression  # outside the Holm family: never flagged
    # A clear regression on 10 passages: significant before and after Holm's adjustment.
    assert tax["drop_f1"].p_value < tax["drop_f1"].p_holm < 0.05


def test_results_json_round_trips_and_old_files_still_load(results):
    again = Results.model_validate_json(results.model_dump_json())
    assert again == results
    old = json.loads(results.model_dump_json())
    old["schema_version"] = 1
    for comparison in old["comparisons"]:
        for field in ("against", "p_value", "p_holm", "regression"):
            del comparison[field]
    for metric in old["metrics"]:
        metric["kind"] = "mean"
    loaded = Results.model_validate(old)
    assert loaded.comparisons[0].against == "baseline" and loaded.comparisons[0].p_holm is None


def test_a_metric_that_does_not_apply_is_not_a_failure():
    samples = [
        {"doc_id": "a", "metrics": {"squad_hasans_f1": None}, "error": None},
        {"doc_id": "b", "metrics": {"squad_hasans_f1": 0.5}, "error": None},
        {"doc_id": "c", "metrics": {"squad_hasans_f1": None}, "error": "RuntimeError: x"},
        {"doc_id": "d", "metrics": {"squad_hasans_f1": float("nan")}, "error": None},
    ]
    assert count_failed(samples, "squad_hasans_f1") == 2


def test_compare_runs_recomputes_corpus_bleu(results, tmp_path):
    """`rlhf-eval compare` pairs two runs by doc id; BLEU must be the corpus difference there
    too, not a mean of sentence scores."""
    run = RunDir.open(tmp_path / "run")
    by_metric = {c.metric: c for c in compare_runs(run, run, "chat", "base")}
    tax = {c.metric: c for c in results.comparisons}
    assert by_metric["bleu"].delta == tax["bleu"].delta
    assert by_metric["bleu"].p_value == tax["bleu"].p_value
    assert by_metric["drop_f1"].delta == tax["drop_f1"].delta

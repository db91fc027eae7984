"""compare and gate on synthetic runs whose differences are known exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rlhf_eval.cli import main
from rlhf_eval.gate import GateCheck, compare_runs, gate_checks
from rlhf_eval.pairing import item_hash
from rlhf_eval.results import (
    ComparisonResult,
    EstimateRecord,
    MetricResult,
    ModelEntry,
    Results,
    TaskEntry,
)
from rlhf_eval.store import RunDir


def make_run(
    folder: Path,
    name: str,
    scores: list[float],
    model: str = "m",
    options: dict | None = None,
    content: str = "question",
    hashes: bool = True,
) -> Path:
    """A run of one task entry `qa` whose item i is `d{i}` with text `{content} {i}`."""
    path = folder / name
    (path / "samples" / model).mkdir(parents=True)
    with (path / "samples" / model / "qa.jsonl").open("w") as handle:
        for i, score in enumerate(scores):
            handle.write(
                json.dumps(
                    {
                        "doc_id": f"d{i}",
                        "prompt": "p",
                        "target": 1,
                        "prediction": 1,
                        "metrics": {"acc": score},
                        "details": {},
                        "cluster": None,
                        "error": None,
                    }
                )
                + "\n"
            )
    (path / "manifest.json").write_text(
        json.dumps(
            {
                "run_name": name,
                "suite_name": name,
                "seed": 0,
                "stats": {"confidence": 0.95, "bootstrap_iterations": 2000},
                "gates": [{"metric": "acc", "max_drop": 0.05}],
            }
        )
    )
    estimate = EstimateRecord(
        point=float(np.mean(scores)), lo=0.0, hi=1.0, n=len(scores), method="wilson"
    )
    results = Results(
        run_name=name,
        suite_name=name,
        created="now",
        models=[ModelEntry(name=model, role="policy", identity="x")],
        tasks=[
            TaskEntry(
                id="qa",
                name="synthetic",
                options=options or {"selection": "sum_logprob", "limit": None},
                n_documents=len(scores),
                version=1,
                item_hashes={
                    f"d{i}": item_hash({"text": f"{content} {i}"}) for i in range(len(scores))
                }
                if hashes
                else {},
            )
        ],
        metrics=[
            MetricResult(model=model, task="qa", metric="acc", kind="proportion", estimate=estimate)
        ],
    )
    (path / "results.json").write_text(results.model_dump_json())
    return path


RNG = np.random.default_rng(0)
BASE = (RNG.random(400) < 0.6).astype(float).tolist()


def test_identical_runs_compare_to_zero_with_an_honest_interval(tmp_path):
    """Identical answers on 400 items: the difference is 0, yet 0 discordant pairs in 400 cannot
    rule out a small drop: Tango's interval is about +-0.0095, not the bootstrap's [0, 0]."""
    a, b = make_run(tmp_path, "a", BASE), make_run(tmp_path, "b", BASE)
    (c,) = compare_runs(RunDir.open(a), RunDir.open(b))
    assert (c.delta.point, c.delta.n) == (0.0, 400)
    assert c.delta.lo == pytest.approx(-c.delta.hi) and 0.009 < c.delta.hi < 0.01
    assert "Tango" in c.delta.method
    assert main(["gate", str(a), "--baseline", str(b), "--max-drop", "acc=0.01"]) == 0
    assert main(["gate", str(a), "--baseline", str(b), "--max-drop", "acc=0"]) == 1


def test_a_clear_regression_fails_and_a_wide_margin_passes(tmp_path, capsys):
    worse = list(BASE)
    for i in range(0, 400, 4):  # lose 1 item in 4 that were right: a drop of ~0.15
        worse[i] = 0.0
    drop = np.mean(BASE) - np.mean(worse)
    a, b = make_run(tmp_path, "cand", worse), make_run(tmp_path, "base", BASE)
    assert main(["gate", str(a), "--baseline", str(b), "--max-drop", "acc=0.02"]) == 1
    table = capsys.readouterr().out
    assert "| qa/acc |" in table and "❌ FAIL" in table and "**FAIL**" in table
    assert f"{-drop:.4f}" in table
    assert main(["gate", str(a), "--baseline", str(b), "--max-drop", "qa/acc=0.5"]) == 0
    assert "✅ pass" in capsys.readouterr().out
    # Without --max-drop the candidate suite's own gates (acc: 0.05) apply.
    assert main(["gate", str(a), "--baseline", str(b)]) == 1


def test_pairs_by_document_not_position(tmp_path):
    a = make_run(tmp_path, "a", BASE)
    b = make_run(tmp_path, "b", BASE)
    path = b / "samples/m/qa.jsonl"
    path.write_text("".join(reversed(path.read_text().splitlines(keepends=True))))
    (c,) = compare_runs(RunDir.open(a), RunDir.open(b))
    assert c.delta.point == 0.0 and "discordant b=0, c=0" in c.delta.method


def test_worst_drop_respects_direction():
    delta = EstimateRecord(point=-0.01, lo=-0.03, hi=0.01, n=10, method="m")
    up = ComparisonResult(candidate="a", baseline="b", task="t", metric="acc", delta=delta)
    down = up.model_copy(update={"higher_is_better": False})
    assert GateCheck(up, 0.02).worst_drop == pytest.approx(0.03)
    assert not GateCheck(up, 0.02).passed and GateCheck(up, 0.03).passed
    assert GateCheck(down, 0.0).worst_drop == pytest.approx(0.01)
    with pytest.raises(Exception, match="no metric 'bleu'"):
        gate_checks([up], {"bleu": 0.1})


@pytest.mark.parametrize("margin", ["acc", "acc=-1", "=0.1", "acc=abc"])
def test_bad_margins_exit_2(tmp_path, margin, capsys):
    a = make_run(tmp_path, "a", BASE)
    assert main(["gate", str(a), "--baseline", str(a), "--max-drop", margin]) == 2
    assert "METRIC=MARGIN" in capsys.readouterr().err


def test_unusable_runs_exit_2(tmp_path, capsys):
    assert main(["gate", str(tmp_path / "nothing")]) == 2
    assert "nothing does not exist" in capsys.readouterr().err
    a = make_run(tmp_path, "a", BASE)
    (a / "results.json").unlink()
    assert main(["compare", str(a), str(a)]) == 2
    assert "results.json not found" in capsys.readouterr().err
    b = make_run(tmp_path, "b", BASE)
    assert main(["gate", str(b)]) == 2  # no baseline model inside the run
    assert "--baseline" in capsys.readouterr().err


def test_compare_prints_a_table(tmp_path, capsys):
    a, b = make_run(tmp_path, "a", BASE), make_run(tmp_path, "b", BASE)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| qa | acc | m (a) - m (b) |" in out
    assert "Tango score interval for paired proportions (n=400, discordant b=0, c=0)" in out


def test_tasks_lists_options(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "truthfulqa_mc:" in out and "selection" in out and "truthfulqa_mc2 (mean)" in out


def test_runs_of_different_options_are_not_paired(tmp_path, capsys):
    """Issue 14.1: the same entry id under another `selection` once paired and passed."""
    a = make_run(tmp_path, "a", BASE, options={"selection": "mean_token_logprob"})
    b = make_run(tmp_path, "b", BASE[:200] + [0.0] * 200, options={"selection": "sum_logprob"})
    assert main(["gate", str(a), "--baseline", str(b), "--max-drop", "acc=0.02"]) == 2
    err = capsys.readouterr().err
    assert "option `selection`: 'mean_token_logprob' vs 'sum_logprob'" in err
    assert "Traceback" not in err
    assert main(["compare", str(a), str(b)]) == 2
    assert "measures different things" in capsys.readouterr().err


def test_runs_of_different_data_are_not_paired(tmp_path, capsys):
    a = make_run(tmp_path, "a", BASE, content="question")
    b = make_run(tmp_path, "b", BASE, content="edited question")
    assert main(["gate", str(a), "--baseline", str(b), "--max-drop", "acc=0.02"]) == 2
    assert "different content" in capsys.readouterr().err


def test_different_item_sets_need_shared_items_and_say_so(tmp_path, capsys):
    """Issue 14.1: a 10-item candidate against a 20-item baseline was paired on 10 items while
    the table showed the 20-item baseline's value."""
    baseline_scores = [1.0] * 10 + [0.0] * 10  # 0.5 on 20 items, 1.0 on the first 10
    a = make_run(tmp_path, "a", [1.0] * 10)
    b = make_run(tmp_path, "b", baseline_scores)
    assert main(["gate", str(a), "--baseline", str(b), "--max-drop", "acc=0.02"]) == 2
    err = capsys.readouterr().err
    assert "scored 10 items" in err and "and 20 in" in err and "--shared-items" in err
    (c,) = compare_runs(RunDir.open(a), RunDir.open(b), shared_items=True)
    assert c.baseline_point == 1.0 and c.candidate_point == 1.0 and c.delta.n == 10
    assert (c.candidate_items, c.baseline_items) == (10, 20)
    args = ["gate", str(a), "--baseline", str(b), "--max-drop", "acc=0.5", "--shared-items"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "the candidate's entry scored 10 items and the baseline's 20" in out
    assert main(["compare", str(a), str(b), "--shared-items"]) == 0
    assert "the candidate's entry scored 10 items" in capsys.readouterr().out


def test_runs_without_item_records_are_refused(tmp_path, capsys):
    a, b = make_run(tmp_path, "a", BASE), make_run(tmp_path, "b", BASE, hashes=False)
    assert main(["compare", str(a), str(b)]) == 2
    assert "run its suite again" in capsys.readouterr().err


@pytest.mark.parametrize("margin", ["acc=nan", "acc=inf", "acc=-inf", "acc=NaN"])
def test_non_finite_margins_exit_2(tmp_path, margin, capsys):
    """Issue 14.7: nan failed every check and inf passed every check."""
    a = make_run(tmp_path, "a", BASE)
    assert main(["gate", str(a), "--baseline", str(a), "--max-drop", margin]) == 2
    assert "finite" in capsys.readouterr().err


def test_a_warned_interval_is_flagged_in_the_gate_table(tmp_path, capsys):
    """A paired difference resting on a few differing items carries a warning (issue 19); the
    gate table shows it beside the interval and says why."""
    base = [0.5] * 100
    cand = [0.5] * 95 + [0.4] * 5
    a, b = make_run(tmp_path, "a", cand), make_run(tmp_path, "b", base)
    main(["gate", str(a), "--baseline", str(b), "--max-drop", "acc=0.05"])
    out = capsys.readouterr().out
    assert "⚠ |" in out and "- ⚠ qa/acc:" in out


def bleu_run(folder: Path, name: str, hypotheses: list[str], corpus: str | None) -> Path:
    """A run of one corpus-BLEU entry `mt`; `corpus` is the statistic's stored name (None: a
    run written before metric definitions were stored)."""
    from rlhf_eval.results import MetricDefinition

    path = folder / name
    (path / "samples" / "m").mkdir(parents=True)
    references = [f"the cat sat on mat number {i}" for i in range(len(hypotheses))]
    with (path / "samples" / "m" / "mt.jsonl").open("w") as handle:
        for i, (hyp, ref) in enumerate(zip(hypotheses, references, strict=True)):
            sample = {
                "doc_id": f"d{i}",
                "prompt": "p",
                "target": ref,
                "prediction": hyp,
                "metrics": {"bleu": 0.0},
                "details": {"hypothesis": hyp, "reference": ref},
                "cluster": None,
                "error": None,
            }
            handle.write(json.dumps(sample) + "\n")
    (path / "manifest.json").write_text(
        json.dumps({"run_name": name, "seed": 0, "stats": {"bootstrap_iterations": 500}})
    )
    definitions = (
        [] if corpus is None else [MetricDefinition(name="bleu", kind="corpus", corpus=corpus)]
    )
    results = Results(
        run_name=name,
        suite_name=name,
        created="now",
        models=[ModelEntry(name="m", role="policy", identity="x")],
        tasks=[
            TaskEntry(
                id="mt",
                name="retired_translation_task",  # no longer registered: the run must suffice
                options={},
                n_documents=len(hypotheses),
                version=1,
                item_hashes={f"d{i}": item_hash({"i": i}) for i in range(len(hypotheses))},
                metrics=definitions,
            )
        ],
        metrics=[
            MetricResult(
                model="m",
                task="mt",
                metric="bleu",
                kind="corpus",
                estimate=EstimateRecord(point=50.0, lo=40.0, hi=60.0, n=8, method="x"),
            )
        ],
    )
    (path / "results.json").write_text(results.model_dump_json())
    return path


def test_a_corpus_metric_is_rebuilt_from_the_definition_the_run_stored(tmp_path, capsys):
    from rlhf_eval.estimation import metric_point
    from rlhf_eval.metrics.corpus import CORPUS_BLEU
    from rlhf_eval.records import MetricSpec

    good = [f"the cat sat on mat number {i}" for i in range(8)]
    bad = [f"a dog stood near rug {i}" for i in range(8)]
    cand, base = (
        bleu_run(tmp_path, "cand", bad, "corpus_bleu"),
        bleu_run(tmp_path, "base", good, "corpus_bleu"),
    )
    (result,) = compare_runs(RunDir.open(cand), RunDir.open(base))
    spec = MetricSpec("bleu", "corpus", corpus=CORPUS_BLEU)
    samples = [RunDir(p).read_samples("m", "mt") for p in (cand, base)]
    expected = metric_point(spec, samples[0]) - metric_point(spec, samples[1])
    assert result.delta.point == pytest.approx(expected) and expected < -50
    assert main(["gate", str(cand), "--baseline", str(base), "--max-drop", "mt/bleu=1"]) == 1
    capsys.readouterr()
    # A statistic this rlhf-eval does not know, and a run that stored no definition: exit 2.
    unknown = bleu_run(tmp_path, "unknown", bad, "bleu_v9")
    assert main(["gate", str(unknown), "--baseline", str(base), "--max-drop", "mt/bleu=1"]) == 2
    assert "corpus statistic 'bleu_v9'" in capsys.readouterr().err
    old = bleu_run(tmp_path, "old", bad, None)
    assert main(["gate", str(old), "--baseline", str(base), "--max-drop", "mt/bleu=1"]) == 2
    assert "run the suite again" in capsys.readouterr().err

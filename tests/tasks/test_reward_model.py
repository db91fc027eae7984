"""The reward_model task: the metrics against hand-computed values and scipy, a run of tiny
random reward models on hand-made pairs (rewards recomputed with plain transformers), two
reward models paired, the LLM judge as a scorer, the response cache, and every bad input."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau, norm

from rlhf_eval.cli import main
from rlhf_eval.errors import DataError, ModelLoadError
from rlhf_eval.judges.pointwise import pointwise_prompt
from rlhf_eval.manifest import RequestCounts
from rlhf_eval.metrics.reward_model import (
    calibration_statistics,
    ece_from_statistics,
    expected_calibration_error,
    kendall_tau,
    length_outcome,
    log_loss,
    pair_outcome,
    pearson_from_statistics,
    pearson_statistics,
    ranked_pairs,
    reliability_table,
)
from rlhf_eval.models.hf import HFBackend
from rlhf_eval.records import LoglikelihoodRequest, RewardRequest
from rlhf_eval.runner import run_suite
from rlhf_eval.suite import load_suite
from rlhf_eval.tasks.reward_data import read_ranked_items
from tests.conftest import build_tokenizer, write_suite

# --- the metrics, by hand ------------------------------------------------------------------------


def test_ece_on_a_hand_example():
    # Four comparisons: p = sigmoid(m) = 0.77 twice right and once wrong; p = 0.92 right.
    m77, m92 = math.log(0.77 / 0.23), math.log(0.92 / 0.08)
    margins = [m77, m77, -m77, m92]
    # 10 bins of width 0.05 on [0.5, 1]: 0.77 falls in bin 5 ([0.75, 0.8)), 0.92 in bin 8.
    # Bin 5: 3 comparisons, confidence 2.31, hits 2 -> |2 - 2.31| = 0.31; bin 8: |1 - 0.92|.
    assert expected_calibration_error(margins) == pytest.approx((0.31 + 0.08) / 4)
    table = reliability_table(calibration_statistics(margins))
    assert [(round(lo, 3), round(c, 3), round(a, 3), n) for lo, c, a, n in table] == [
        (0.75, 0.77, 0.667, 3),
        (0.9, 0.92, 1.0, 1),
    ]
    # Statistics add: two halves summed give the whole corpus's ECE.
    halves = calibration_statistics(margins[:2]) + calibration_statistics(margins[2:])
    assert float(ece_from_statistics(halves)) == pytest.approx(0.0975)
    # A perfectly calibrated set: p = 0.75 right three times in four.
    assert expected_calibration_error([math.log(3)] * 3 + [-math.log(3)]) == pytest.approx(0)
    # A tie (m = 0): confidence 0.5, half a hit: calibrated.
    assert expected_calibration_error([0.0]) == pytest.approx(0)


def test_pair_rules_and_loss():
    assert ranked_pairs([0, 1]) == [(0, 1)]
    assert ranked_pairs([1, 0, 1, 2]) == [(1, 0), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert [pair_outcome(m) for m in (0.3, -0.1, 0.0)] == [1.0, 0.0, 0.5]
    assert [length_outcome(a, b) for a, b in ((10, 3), (3, 10), (5, 5))] == [1.0, 0.0, 0.5]
    for m in (-40.0, -1.3, 0.0, 2.0, 40.0):
        assert log_loss(m) == pytest.approx(-math.log(1 / (1 + math.exp(-m))), rel=1e-9)
    assert log_loss(0.0) == pytest.approx(math.log(2))


def test_kendall_tau_against_scipy():
    assert kendall_tau([0, 1, 2], [3.0, 2.0, 1.0]) == pytest.approx(1.0)
    assert kendall_tau([0, 1, 2], [1.0, 2.0, 3.0]) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        k = int(rng.integers(3, 8))
        ranks = [int(r) for r in rng.integers(0, 3, size=k)]
        if len(set(ranks)) < 2:
            continue
        scores = [float(s) for s in rng.normal(size=k).round(1)]
        # Rank 0 is best and a higher reward is better: tau of -rank against reward.
        expected = kendalltau([-r for r in ranks], scores).statistic
        assert kendall_tau(ranks, scores) == pytest.approx(expected, nan_ok=True)
    assert math.isnan(kendall_tau([0, 1, 2], [1.0, 1.0, 1.0]))


def test_pearson_from_summed_statistics():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    sums = pearson_statistics(x[:10], y[:10]) + pearson_statistics(x[10:], y[10:])
    assert float(pearson_from_statistics(sums)) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert math.isnan(float(pearson_from_statistics(pearson_statistics([1, 2], [3, 3]))))


# --- tiny reward models and hand-made data ------------------------------------------------------


def build_reward_model(folder: Path, seed: int, outputs: int = 1, bias: float = 0.25) -> Path:
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = build_tokenizer(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        num_labels=outputs,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    config.reward_bias = bias
    torch.manual_seed(seed)
    LlamaForSequenceClassification(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def reward_models(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("reward-models")
    return build_reward_model(root / "a", 0), build_reward_model(root / "b", 1)


def golden_reward(folder: Path, prompt: str, completion: str) -> float:
    """The classifier's own output on one unpadded sequence (prompt with special tokens, the
    completion without, then EOS) plus the stored bias: none of rlhf_eval's scoring code."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    ids = (
        tokenizer(prompt)["input_ids"]
        + tokenizer(completion, add_special_tokens=False)["input_ids"]
    )
    with torch.no_grad():
        value = model(torch.tensor([ids + [tokenizer.eos_token_id]])).logits[0, 0]
    return float(value) + model.config.reward_bias


QUESTIONS = [
    "What is human life expectancy in the United States?",
    "Who was president of the United States in 1955?",
    "Is the Great Wall of China visible from space?",
    "How long do goldfish remember things?",
    "What happens if you eat watermelon seeds?",
    "How do telescopes work?",
]
ANSWERS = [
    ("It is 78 years.", "Nothing happens."),
    ("Dwight D. Eisenhower.", "I have no comment about the president of the United States."),
    ("It is not visible from space with the naked eye.", "Yes."),
    ("Goldfish have memories that last months, not three seconds.", "Three seconds."),
    ("The seeds pass through your digestive system.", "You grow watermelons in your stomach."),
    ("Telescopes use lenses or mirrors to focus light.", "They make objects appear closer."),
]


def hh(question: str, reply: str) -> str:
    return f"\n\nHuman: {question}\n\nAssistant: {reply}"


def write_jsonl(path: Path, rows: list[dict], gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def hh_rows(copies: int = 1, swapped: int = 0) -> list[dict]:
    """The six pairs, `copies` times over, each copy's questions numbered apart (distinct
    prompts: no two pairs share a cluster); the last `swapped` copies with chosen and rejected
    the other way round."""
    return [
        {"chosen": hh(f"{q} ({k})", x), "rejected": hh(f"{q} ({k})", y)}
        for k in range(copies)
        for q, (a, b) in zip(QUESTIONS, ANSWERS, strict=True)
        for x, y in [(b, a) if k >= copies - swapped else (a, b)]
    ]


def rm_suite(folder: Path, data: Path, models: str, task: str = "", judges: str = "") -> Path:
    return write_suite(
        folder,
        f"""
        name: rm
        output_dir: runs
        cache_dir: cache
        stats: {{bootstrap_iterations: 200}}
        models:
{models}
        tasks:
          - name: reward_model
            data: {data}
{task}
{judges}
        """,
    )


def classifier(name: str, path: Path, extra: str = "") -> str:
    return (
        f"          - name: {name}\n            backend: reward_model\n"
        f"            path: {path}\n            reward_template: hh\n{extra}"
    )


def wilson(successes: float, n: int) -> tuple[float, float]:
    """Wilson's interval written out (Wilson 1927), independent of rlhf_common.stats."""
    z = norm.ppf(0.975)
    p = successes / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return center - half, center + half


def test_pairs_are_scored_as_rlhf_train_scores_them(tmp_path, reward_models):
    first, second = reward_models
    # 24 pairs; half of them reversed, so a random model gets some right and some wrong.
    data = write_jsonl(tmp_path / "pairs.jsonl.gz", hh_rows(4, swapped=2), gz=True)
    suite = rm_suite(
        tmp_path,
        data,
        classifier("a", first, "            role: baseline\n") + classifier("b", second),
    )
    run = run_suite(load_suite(suite), show_progress=False)
    samples = {s["doc_id"]: s for s in run.read_samples("a", "reward_model")}
    assert len(samples) == 24
    hits = 0.0
    for i, (q, (a, b)) in enumerate(zip(QUESTIONS * 4, ANSWERS * 4, strict=True)):
        a, b = (b, a) if i >= 12 else (a, b)
        sample = samples[f"row{i + 1}"]
        prompt = f"\n\nHuman: {q} ({i // 6})\n\nAssistant:"
        chosen, rejected = (
            golden_reward(first, prompt, " " + a),
            golden_reward(first, prompt, " " + b),
        )
        assert sample["details"]["rewards"] == pytest.approx([chosen, rejected], abs=1e-5)
        expected = 1.0 if chosen > rejected else 0.0
        assert sample["metrics"]["accuracy"] == expected
        assert sample["metrics"]["longer_baseline"] == (1.0 if len(a) > len(b) else 0.0)
        assert sample["metrics"]["log_loss"] == pytest.approx(
            math.log1p(math.exp(-(chosen - rejected))), abs=1e-5
        )
        hits += expected
    results = run.results()
    accuracy = next(
        m for m in results.metrics if m.model == "a" and m.metric == "accuracy"
    ).estimate
    # Wilson's interval (Clopper-Pearson below 5 hits or misses).
    assert accuracy.point == pytest.approx(hits / 24) and accuracy.n == 24
    assert accuracy.method == "wilson" and min(hits, 24 - hits) >= 5
    assert (accuracy.lo, accuracy.hi) == pytest.approx(wilson(hits, 24))
    # The longer-response baseline on the same pairs: 3 of 6 chosen responses are longer.
    longer = next(m for m in results.metrics if m.model == "a" and m.metric == "longer_baseline")
    assert longer.estimate.point == pytest.approx(3 / 6)
    # |r| of reward and log(1 + characters) over every completion of every pair.
    rewards = [r for s in samples.values() for r in s["details"]["rewards"]]
    logs = [math.log1p(n) for s in samples.values() for n in s["details"]["lengths"]]
    size = next(
        m for m in results.metrics if m.model == "a" and m.metric == "abs_length_correlation"
    )
    assert size.estimate.point == pytest.approx(abs(np.corrcoef(logs, rewards)[0, 1]))
    # Two reward models, paired on the same pairs (Tango's interval for 0/1 metrics).
    paired = next(c for c in results.comparisons if c.metric == "accuracy" and c.candidate == "b")
    assert paired.baseline == "a" and paired.delta.n == 24
    assert "Tango" in paired.delta.method
    # Pairs where the chosen response is the shorter one form their own subgroup.
    groups = {
        g.group: g.estimate.n
        for g in results.subgroups
        if g.model == "a" and g.metric == "accuracy" and g.by == "chosen_length"
    }
    assert groups == {"chosen longer": 12, "chosen shorter": 12}
    # A second run computes nothing: every reward comes from the response cache.
    again = run_suite(load_suite(suite), show_progress=False, run_name="again")
    assert again.manifest().requests["a"] == RequestCounts(computed=0, cached=48)


def test_kway_rankings_tau_and_ranking_accuracy(tmp_path, reward_models):
    first, _ = reward_models
    rows = [
        {
            "prompt": "Q: " + q + "\nA:",
            "completions": [" " + a, " " + b, " " + q],
            "ranks": [0, 1, 1],
            "labeler": f"labeler{i % 2}",
        }
        for i, (q, (a, b)) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))
    ]
    data = write_jsonl(tmp_path / "kway.jsonl", rows)
    suite = rm_suite(tmp_path, data, classifier("a", first))
    run = run_suite(load_suite(suite), show_progress=False)
    for row, sample in zip(rows, run.read_samples("a", "reward_model"), strict=True):
        rewards = [golden_reward(first, row["prompt"], c) for c in row["completions"]]
        assert sample["details"]["rewards"] == pytest.approx(rewards, abs=1e-5)
        expected = kendalltau([-r for r in row["ranks"]], rewards).statistic
        assert sample["metrics"]["kendall_tau"] == pytest.approx(expected, abs=1e-6)
        right = [rewards[0] > rewards[1], rewards[0] > rewards[2]]  # the two untied pairs
        assert sample["metrics"]["ranking_accuracy"] == pytest.approx(np.mean(right))
        assert sample["metrics"]["accuracy"] is None  # pairs only
        assert sample["details"]["labeler"] == row["labeler"]


def test_rewardbench_rows_keep_their_subsets(tmp_path, reward_models):
    first, _ = reward_models
    rows = [
        {"prompt": q, "chosen": a, "rejected": b, "subset": "chat" if i < 3 else "safety", "id": i}
        for i, (q, (a, b)) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))
    ]
    items = read_ranked_items(str(write_jsonl(tmp_path / "rb.jsonl", rows)), tmp_path)
    assert [i.subset for i in items] == ["chat"] * 3 + ["safety"] * 3
    assert items[0].prompt == (("user", QUESTIONS[0]),) and items[0].id == "0"
    suite = rm_suite(tmp_path, tmp_path / "rb.jsonl", classifier("a", first))
    results = run_suite(load_suite(suite), show_progress=False).results()
    subsets = {
        g.group: g.estimate.n
        for g in results.subgroups
        if g.metric == "accuracy" and g.by == "subset"
    }
    assert subsets == {"chat": 3, "safety": 3}


# --- bad input ------------------------------------------------------------------------------------


def test_identical_and_empty_responses_are_counted_failures(tmp_path, reward_models):
    first, _ = reward_models
    rows = hh_rows()
    rows[1] = {"chosen": hh(QUESTIONS[1], "Same."), "rejected": hh(QUESTIONS[1], "Same.")}
    rows[2] = {"chosen": hh(QUESTIONS[2], "Yes."), "rejected": hh(QUESTIONS[2], " ")}
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    run = run_suite(
        load_suite(rm_suite(tmp_path, data, classifier("a", first))), show_progress=False
    )
    errors = {s["doc_id"]: s["error"] for s in run.read_samples("a", "reward_model")}
    assert f"{data}:2: the chosen and rejected responses are the same text" in errors["row2"]
    assert "Fix:" in errors["row2"]
    assert f"{data}:3: response 2 of 2 is empty" in errors["row3"]
    results = run.results()
    accuracy = next(m for m in results.metrics if m.metric == "accuracy")
    assert accuracy.estimate.n == 4 and accuracy.n_failed == 2  # counted, not scored as zero
    notes = next(t.notes for t in results.tasks)
    assert any("2 ranking(s) could not be scored" in n for n in notes)


def test_a_ranking_of_one_response_exits_2_naming_the_line(tmp_path, reward_models, capsys):
    first, _ = reward_models
    rows = [
        {"prompt": "Q", "completions": ["a b", "c"], "ranks": [0, 1]},
        {"prompt": "Q", "completions": ["only one"], "ranks": [0]},
    ]
    data = write_jsonl(tmp_path / "one.jsonl", rows)
    with pytest.raises(DataError, match=rf"{data}:2: a ranking holds 2 to 9 completions, not 1"):
        read_ranked_items(str(data), tmp_path)
    assert main(["run", str(rm_suite(tmp_path, data, classifier("a", first)))]) == 2
    assert f"{data}:2" in capsys.readouterr().err


def test_a_head_with_two_outputs_or_none_exits_2(tmp_path, tiny_model_dir, capsys):
    two = build_reward_model(tmp_path / "two", 0, outputs=2)
    data = write_jsonl(tmp_path / "pairs.jsonl", hh_rows())
    assert main(["run", str(rm_suite(tmp_path, data, classifier("two", two)))]) == 2
    err = capsys.readouterr().err
    assert "has 2 outputs; a reward model has one" in err and "Fix:" in err
    # A causal LM has no reward head: refused rather than given a random one.
    suite = rm_suite(tmp_path, data, classifier("lm", tiny_model_dir))
    assert main(["run", str(suite), "--run-name", "lm"]) == 2
    assert "not a sequence classifier" in capsys.readouterr().err


def test_a_language_model_on_the_task_is_refused(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "pairs.jsonl", hh_rows())
    models = f"          - name: lm\n            path: {tiny_model_dir}\n"
    with pytest.raises(ModelLoadError, match="cannot answer RewardRequests"):
        run_suite(load_suite(rm_suite(tmp_path, data, models)), show_progress=False)


def test_reward_fields_need_the_reward_backend(tmp_path, tiny_model_dir, capsys):
    data = write_jsonl(tmp_path / "pairs.jsonl", hh_rows())
    models = (
        f"          - name: lm\n            path: {tiny_model_dir}\n"
        "            reward_template: hh\n"
    )
    assert main(["run", str(rm_suite(tmp_path, data, models))]) == 2
    assert "only `backend: reward_model` uses reward_template" in capsys.readouterr().err
    judge = (
        "          - name: judge\n            backend: reward_model\n"
        "            reward_scorer: llm\n            reward_template: hh\n"
        f"            path: {tiny_model_dir}\n"
    )
    assert main(["run", str(rm_suite(tmp_path, data, judge))]) == 2
    assert "an LLM judge (`reward_scorer: llm`) reads the request as text" in (
        capsys.readouterr().err
    )


# --- the LLM judge as a reward model ---------------------------------------------------------


def test_llm_judge_rewards_are_its_answer_log_odds(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "pairs.jsonl", hh_rows()[:3])
    models = (
        f"          - name: judge\n            backend: reward_model\n"
        f"            reward_scorer: llm\n            path: {tiny_model_dir}\n"
    )
    run = run_suite(load_suite(rm_suite(tmp_path, data, models)), show_progress=False)
    pairwise = run_suite(
        load_suite(rm_suite(tmp_path, data, models, task="            pairwise: true")),
        show_progress=False,
        run_name="pairwise",
    )
    lm = HFBackend("check", str(tiny_model_dir))
    ask = lm.loglikelihood
    for i, (sample, paired) in enumerate(
        zip(
            run.read_samples("judge", "reward_model"),
            pairwise.read_samples("judge", "reward_model"),
            strict=True,
        )
    ):
        q, (a, b) = f"{QUESTIONS[i]} (0)", ANSWERS[i]
        rewards = []
        for reply in (a, b):
            yes, no = ask(
                [
                    LoglikelihoodRequest(pointwise_prompt(q, reply), " Yes"),
                    LoglikelihoodRequest(pointwise_prompt(q, reply), " No"),
                ]
            )
            rewards.append(yes.logprob - no.logprob)
        assert sample["details"]["rewards"] == pytest.approx(rewards, abs=1e-4)
        from rlhf_eval.judges.pairwise import judge_prompt

        first = ask(
            [LoglikelihoodRequest(judge_prompt(q, a, b, "loglikelihood"), c) for c in (" A", " B")]
        )
        second = ask(
            [LoglikelihoodRequest(judge_prompt(q, b, a, "loglikelihood"), c) for c in (" A", " B")]
        )
        m1, m2 = first[0].logprob - first[1].logprob, second[0].logprob - second[1].logprob
        assert paired["details"]["margins"] == pytest.approx([(m1 - m2) / 2], abs=1e-4)
        assert paired["details"]["rewards"] is None
        assert paired["metrics"]["abs_length_correlation"] is None


def test_reward_requests_of_a_conversation_are_hashable_and_cached_apart():
    request = RewardRequest((("user", "Hi"),), "Hello")
    assert hash(request) == hash(RewardRequest((("user", "Hi"),), "Hello"))
    assert request != RewardRequest((("user", "Hi"),), "Hello", versus="Hey")


# --- the report -------------------------------------------------------------------------------


def test_report_section_subsets_pairs_and_scorecard(tmp_path, reward_models):
    from rlhf_eval.report import render_report

    first, second = reward_models
    rows = [
        {"prompt": f"{q} ({k})", "chosen": x, "rejected": y, "subset": f"s{k % 2}"}
        for k in range(4)
        for q, (a, b) in zip(QUESTIONS, ANSWERS, strict=True)
        for x, y in [(a, b) if k != 3 else (b, a)]  # s0 never flipped, s1 half: the subsets differ
    ]
    data = write_jsonl(tmp_path / "rb.jsonl", rows)
    models = classifier("a", first, "            role: baseline\n") + classifier("b", second)
    run = run_suite(load_suite(rm_suite(tmp_path, data, models)), show_progress=False)
    md, html = render_report(run.path)
    text = md.read_text()
    assert "## Reward models" in text and "longer-response baseline" in text
    assert "### Accuracy by subset (score test against 0.5, Holm across subsets)" in text
    assert "| reward_model | s0 | a |" in text and "| reward_model | s1 | b |" in text
    assert "### Reward models compared by subset (paired, Holm across subsets)" in text
    assert "| reward_model | s0 | b - a |" in text
    # The scorecard's reward-model family: b against the baseline reward model a.
    assert "| Reward model | reward_model / accuracy ↑ |" in text
    page = html.read_text()
    assert 'id="reward-models"' in page and "Reliability" in page
    # Computed at aggregation and stored: the report only reads them.
    (stored,) = run.results().reward_models
    assert {(t.model, t.subset) for t in stored.subset_tests} == {
        (m, s) for m in "ab" for s in ("s0", "s1")
    }
    assert {(t.candidate, t.baseline, t.subset) for t in stored.paired_subsets} == {
        ("b", "a", "s0"),
        ("b", "a", "s1"),
    }
    assert set(stored.reliability) == {"a", "b"}
    # Each subset's score test against 0.5 and Holm across a model's two subsets, by hand.
    for model in "ab":
        accuracy = {
            s: [
                x["metrics"]["accuracy"]
                for x in run.read_samples(model, "reward_model")
                if x["details"]["subset"] == s
            ]
            for s in ("s0", "s1")
        }
        z = {s: (sum(v) / len(v) - 0.5) / math.sqrt(0.25 / len(v)) for s, v in accuracy.items()}
        p = {s: math.erfc(abs(value) / math.sqrt(2)) for s, value in z.items()}
        low, high = sorted(p, key=p.get)
        holm = {low: min(1.0, 2 * p[low])}
        holm[high] = min(1.0, max(holm[low], p[high]))
        for test in (t for t in stored.subset_tests if t.model == model):
            assert test.p_value == pytest.approx(p[test.subset])
            assert test.p_holm == pytest.approx(holm[test.subset])
    for test in stored.paired_subsets:
        mean = {
            m: np.mean(
                [
                    x["metrics"]["accuracy"]
                    for x in run.read_samples(m, "reward_model")
                    if x["details"]["subset"] == test.subset
                ]
            )
            for m in "ab"
        }
        assert test.delta.point == pytest.approx(mean["b"] - mean["a"])
    n_pairs = len(QUESTIONS) * 4
    assert sum(b.accuracy.n for b in stored.reliability["a"]) == n_pairs
    first_test = stored.subset_tests[0]
    results = json.loads((run.path / "results.json").read_text())
    results["reward_models"][0]["subset_tests"][0]["p_holm"] = 0.000123
    (run.path / "results.json").write_text(json.dumps(results))
    text = render_report(run.path)[0].read_text()
    row = f"| reward_model | {first_test.subset} | {first_test.model} |"
    assert "0.000123" in next(line for line in text.splitlines() if line.startswith(row))


def test_labels_of_a_run_and_the_labelers_agreement(tmp_path, reward_models):
    from rlhf_eval.labeling.store import Label, LabelStore
    from rlhf_eval.report import render_report
    from tests.labeling.conftest import MODELS, output_text, prompt_text, write_run

    first, _ = reward_models
    labeled = write_run(tmp_path / "labeled", n=3)
    ranks = {
        "al": ([1, 2, 3], [1, 2, 3], [3, 2, 1]),
        "bo": ([1, 2, 3], [2, 1, 3], [3, 2, 1]),  # disagrees with al on one pair of p1
    }
    store = LabelStore.for_run(labeled)
    for who, per_doc in ranks.items():
        for i, r in enumerate(per_doc):
            store.save(
                [
                    Label(
                        "instructions",
                        who,
                        f"p{i}",
                        model,
                        4,
                        (),
                        r[m],
                        prompt_text(i),
                        output_text(model, i),
                    )
                    for m, model in enumerate(sorted(MODELS))
                ]
            )
    suite = rm_suite(tmp_path, f"labels:{labeled}", classifier("a", first))
    run = run_suite(load_suite(suite), show_progress=False)
    samples = run.read_samples("a", "reward_model")
    assert sorted(s["doc_id"] for s in samples) == [
        f"p{i}:{who}" for i in range(3) for who in ("al", "bo")
    ]
    assert {s["details"]["labeler"] for s in samples} == {"al", "bo"}
    text = render_report(run.path)[0].read_text()
    assert "6 rankings by 2 labeler(s)" in text
    # 9 pairs both labelers ranked, 8 in the same order.
    assert "labelers agree with each other on 0.889" in text and "of 9 pairs" in text

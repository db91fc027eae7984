"""`rlhf-eval label RUN --summary` on hand-made labels: every number computed by hand."""

from __future__ import annotations

import json
import math

import pytest

from rlhf_eval.cli import main
from rlhf_eval.labeling.items import load_labeling_set
from rlhf_eval.labeling.store import Label, LabelStore
from rlhf_eval.labeling.summary import compare_ranks, human_verdicts, labeler_agreement
from rlhf_eval.records import Sample
from rlhf_eval.store import RunDir
from tests.labeling.conftest import write_run

Z, Q, P = "zebrasft", "quokkappo", "okapippoptx"  # Z is the baseline
# (labeler, prompt): {model: (Likert, flags, rank)}; rank 1 is best, ties share a rank.
SC, HA, FI, EO = "satisfies_constraint", "hallucination", "fails_to_follow", "expresses_opinion"
HAND = {
    ("alice", "p0"): {Z: (4, (), 2), Q: (6, (SC,), 1), P: (2, (HA,), 3)},
    ("alice", "p1"): {Z: (5, (), 1), Q: (5, (), 1), P: (3, (FI,), 2)},
    ("alice", "p2"): {Z: (2, ("harmful_advice",), 3), Q: (7, (), 1), P: (4, (), 2)},
    ("alice", "p3"): {Z: (6, (), 1), Q: (3, (), 2), P: (3, (HA,), 2)},
    ("bob", "p0"): {Z: (4, (), 2), Q: (6, (), 1), P: (4, (), 2)},
    ("bob", "p1"): {Z: (6, (), 1), Q: (4, (), 2), P: (2, (FI, EO), 3)},
    ("bob", "p2"): {Z: (1, (), 3), Q: (6, (), 1), P: (5, (), 2)},
}  # fmt: skip
SUITE = """\
name: demo
tasks:
  - name: instructions
  - name: win_rate
    id: wr_rm
    of: instructions
    judge: rm
    judge_kind: reward_model
"""
# The RM judge's verdicts on each prompt (None: the judge failed there).
JUDGE = {Q: [1.0, 1.0, 1.0, 0.0], P: [0.0, 0.0, 0.5, None]}
Z95 = 1.959963984540054


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p, z2 = k / n, Z95**2
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (0.0 if k == 0 else center - half), (1.0 if k == n else center + half)


def hand_labels() -> list[Label]:
    return [
        Label("instructions", labeler, doc, model, likert, flags, rank, f"prompt {doc}", "out")
        for (labeler, doc), entries in HAND.items()
        for model, (likert, flags, rank) in entries.items()
    ]


@pytest.fixture
def labeled_run(tmp_path):
    path = write_run(
        tmp_path / "run",
        n=4,
        models=(Z, Q, P),
        extra_tasks={"wr_rm": "win_rate@1"},
        suite=SUITE,
        closed=(3,),
    )
    run = RunDir(path)
    for model, scores in JUDGE.items():
        run.append_samples(
            model,
            "wr_rm",
            [
                Sample(
                    f"p{i}",
                    "",
                    None,
                    "out",
                    {"win_rate": score},
                    error=None if score is not None else "judge failed",
                )
                for i, score in enumerate(scores)
            ],
        )
    # The baseline against itself has no verdict (metric None, no error): not a failure.
    run.append_samples(Z, "wr_rm", [Sample("p0", "", None, "out", {"win_rate": None})])
    store = LabelStore.for_run(path)
    for (labeler, doc), _ in HAND.items():
        store.save([x for x in hand_labels() if (x.labeler, x.doc_id) == (labeler, doc)])
    return path


def test_compare_ranks_counts_a_tie_as_half():
    assert [compare_ranks(1, 2), compare_ranks(2, 2), compare_ranks(3, 2)] == [1.0, 0.5, 0.0]


def test_human_verdicts_against_the_baseline():
    verdicts = human_verdicts(hand_labels(), Z)
    scores = {(v.judge, v.doc_id, v.model): v.score for v in verdicts}
    assert scores[("human:alice", "p1", Q)] == 0.5  # tied with the baseline
    assert scores[("human:bob", "p0", P)] == 0.5
    assert scores[("human:alice", "p3", Q)] == 0.0
    assert len(verdicts) == 2 * len(HAND)


def test_labeler_agreement_by_hand():
    # p0: (P,Q) agree, (P,Z) alice P worse / bob tie: disagree, (Q,Z) agree -> 2/3
    # p1: (P,Q) agree, (P,Z) agree, (Q,Z) alice tie / bob Z better: disagree -> 2/3
    # p2: bob ranked exactly as alice -> 3/3. p3: one labeler only, not counted.
    estimate = labeler_agreement(hand_labels(), iterations=2000, seed=7)
    assert estimate.n == 9
    assert estimate.point == pytest.approx(7 / 9)
    # Resampling the three prompts: every replicate averages three of {2/3, 2/3, 1}; all three
    # draws are p0/p1 with probability 8/27 > 2.5% and all p2 with 1/27 > 2.5%.
    assert estimate.lo == pytest.approx(2 / 3)
    assert estimate.hi == pytest.approx(1.0)
    assert "cluster" in estimate.method


def test_summary_golden(labeled_run, capsys):
    assert main(["label", str(labeled_run), "--summary"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((labeled_run / "labels_summary.json").read_text())
    assert summary["labelers"] == ["alice", "bob"]
    assert (summary["prompts_labeled"], summary["rankings"], summary["baseline"]) == (4, 7, Z)

    # Win rate against the baseline, ties counting half:
    # Q: alice 1, 0.5, 1, 0; bob 1, 0, 1 -> 4 W, 2 L, 1 T, (4 + 0.5) / 7
    # P: alice 0, 0, 1, 0; bob 0.5, 0, 1 -> 2 W, 4 L, 1 T, (2 + 0.5) / 7
    assert set(summary["win_rate"]) == {Q, P}
    q, o = summary["win_rate"][Q], summary["win_rate"][P]
    assert (q["wins"], q["losses"], q["ties"], q["n"], q["prompts"]) == (4, 2, 1, 7, 4)
    assert (o["wins"], o["losses"], o["ties"], o["n"], o["prompts"]) == (2, 4, 1, 7, 4)
    assert q["win_rate"] == pytest.approx(4.5 / 7) and o["win_rate"] == pytest.approx(2.5 / 7)
    for s in (q, o):
        assert s["lo"] < s["win_rate"] < s["hi"] and "cluster" in s["method"]

    # Likert means, bootstrap clustered by prompt.
    likert = summary["likert"]
    assert likert[Z]["point"] == pytest.approx(28 / 7)
    assert likert[Q]["point"] == pytest.approx(37 / 7)
    assert likert[P]["point"] == pytest.approx(23 / 7)
    assert all(e["n"] == 7 and e["lo"] < e["point"] < e["hi"] for e in likert.values())

    # Flag rates with Wilson intervals.
    flags = summary["flags"]
    assert set(flags[P]) == {
        "fails_to_follow",
        "inappropriate_for_customer_assistant",
        "hallucination",
        "satisfies_constraint",
        "sexual_content",
        "violent_content",
        "encourages_violence",
        "denigrates_protected_class",
        "harmful_advice",
        "expresses_opinion",
        "expresses_moral_judgment",
    }
    hallucination = flags[P]["hallucination"]
    assert (hallucination["point"], hallucination["n"]) == (pytest.approx(2 / 7), 7)
    assert (hallucination["lo"], hallucination["hi"]) == pytest.approx(wilson_by_hand(2, 7))
    assert (hallucination["lo"], hallucination["hi"]) == pytest.approx((0.08222, 0.64107), abs=1e-5)
    assert flags[P]["fails_to_follow"]["point"] == pytest.approx(2 / 7)
    assert flags[P]["expresses_opinion"]["point"] == pytest.approx(1 / 7)
    assert flags[Q]["satisfies_constraint"]["point"] == pytest.approx(1 / 7)
    assert flags[Z]["harmful_advice"]["point"] == pytest.approx(1 / 7)
    assert flags[Z]["sexual_content"] == {**flags[Z]["sexual_content"], "point": 0.0, "lo": 0.0}

    # Hallucination on closed-domain prompts only (p3, labeled by alice alone).
    closed = summary["hallucination_closed_domain"]
    assert (closed[P]["point"], closed[P]["n"]) == (1.0, 1)
    assert closed[P]["lo"] == pytest.approx(wilson_by_hand(1, 1)[0])
    assert (closed[Q]["point"], closed[Z]["point"]) == (0.0, 0.0)

    assert summary["inter_annotator"]["point"] == pytest.approx(7 / 9)
    assert summary["inter_annotator"]["n"] == 9

    # The RM judge against the labelers, on the overlap (P on p3 failed: left out).
    # alice: Q 3/4 agree, P 2/3; bob: Q 2/3, P 1/3 -> pooled 8/13.
    judge = summary["judge_agreement"]["wr_rm"]
    assert (judge["n"], judge["agreement"]) == (13, pytest.approx(8 / 13))
    # Marginals judge W6 L5 T2, human W6 L5 T2: p_e = 65/169, kappa = (8/13 - 65/169) / (1 - 65/169)
    assert judge["kappa"] == pytest.approx(0.375)
    assert judge["per_labeler"]["alice"]["agreement"] == pytest.approx(5 / 7)
    assert judge["per_labeler"]["bob"]["agreement"] == pytest.approx(3 / 6)

    assert "0.643" in printed and "4/2/1" in printed and "0.778" in printed
    assert "wr_rm" in printed and "labels_summary.json" in printed


def test_summary_without_baseline_or_judge(tmp_path):
    path = write_run(tmp_path / "run", n=4, models=(Q, P))  # no baseline among them
    store = LabelStore.for_run(path)
    for (labeler, doc), _ in HAND.items():
        store.save(
            [x for x in hand_labels() if (x.labeler, x.doc_id) == (labeler, doc) and x.model != Z]
        )
    from rlhf_eval.labeling.summary import summarize_labels

    labeling = load_labeling_set(path)
    summary = summarize_labels(labeling, store.labels("instructions"))
    assert summary["win_rate"] == {} and summary["judge_agreement"] == {}
    assert summary["likert"][Q]["point"] == pytest.approx(37 / 7)

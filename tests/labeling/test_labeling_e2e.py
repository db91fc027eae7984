"""Labeling a real run: two tiny models answer a prompt set (`instructions`), a tiny reward
model judges them (`win_rate`), a labeler ranks every prompt, and the summary sets the judge's
verdicts against the labeler's."""

from __future__ import annotations

import json

import pytest

from rlhf_eval.cli import main
from rlhf_eval.labeling.app import create_app
from rlhf_eval.labeling.items import display_order, load_labeling_set
from rlhf_eval.labeling.store import LabelStore
from rlhf_eval.runner import run_suite
from rlhf_eval.suite import load_suite
from tests.conftest import write_suite
from tests.labeling.conftest import TOKEN
from tests.preference.conftest import PROMPTS, build_tiny_reward_model

SUITE = """
name: labeled
output_dir: runs
cache_dir: cache
stats: {{bootstrap_iterations: 200}}
models:
  - {{name: sft, path: {sft}, role: baseline}}
  - {{name: policy, path: {policy}}}
judges:
  - {{name: rm, path: {rm}}}
tasks:
  - {{name: instructions, id: outputs, data: prompts.jsonl, max_new_tokens: 8}}
  - {{name: win_rate, id: win_rm, of: outputs, judge: rm, judge_kind: reward_model}}
"""


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory, tiny_model_dir, other_tiny_model_dir):
    folder = tmp_path_factory.mktemp("labeled-run")
    rm = build_tiny_reward_model(folder / "rm")
    (folder / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    suite = write_suite(
        folder, SUITE.format(sft=tiny_model_dir, policy=other_tiny_model_dir, rm=rm)
    )
    return run_suite(load_suite(suite), show_progress=False).path


def test_label_a_judged_run_and_compare_with_the_judge(judged_run, tmp_path):
    labeling = load_labeling_set(judged_run)
    assert labeling.task_id == "outputs" and labeling.baseline == "sft"
    assert [i.doc_id for i in labeling.items] == [p["id"] for p in PROMPTS]
    summary_item = labeling.item("p3")
    assert summary_item.instruction == "Summarize the text." and summary_item.closed_domain
    assert "Great Wall" in summary_item.input

    app = create_app(labeling, LabelStore.for_run(judged_run), TOKEN).test_client()
    page = app.get(f"/item/p3?labeler=dana&token={TOKEN}").get_data(as_text=True)
    assert "Summarize the text." in page and "not visible from space" in page
    # dana prefers the policy on p1, p3, p5, the baseline on p2 and p4, and ties them on p6.
    human = {}
    for n, item in enumerate(labeling.items):
        policy_rank = 1 if n % 2 == 0 else 2
        if item.doc_id == "p6":
            policy_rank = 1
        ranks = {"policy": policy_rank, "sft": 1 if item.doc_id == "p6" else 3 - policy_rank}
        human[item.doc_id] = (
            1.0 if ranks["policy"] < ranks["sft"] else 0.5 if ranks["policy"] == ranks["sft"] else 0
        )
        form = {}
        for i, output in enumerate(display_order("dana", item)):
            form |= {f"likert_{i}": "4", f"rank_{i}": str(ranks[output.model])}
        url = f"/item/{item.doc_id}?labeler=dana&token={TOKEN}"
        assert app.post(url, data=form).status_code == 302

    assert main(["label", str(judged_run), "--summary"]) == 0
    summary = json.loads((judged_run / "labels_summary.json").read_text())
    win = summary["win_rate"]["policy"]
    assert (win["wins"], win["losses"], win["ties"]) == (3, 2, 1)  # p1 p3 p5 / p2 p4 / p6
    assert win["win_rate"] == pytest.approx(3.5 / 6)

    # The judge's verdicts as the win_rate task stored them, matched prompt by prompt.
    judged = {}
    with open(judged_run / "samples" / "policy" / "win_rm.jsonl") as handle:
        for line in handle:
            sample = json.loads(line)
            judged[sample["doc_id"]] = sample["metrics"]["win_rate"]
    assert set(judged) == set(human) and all(v is not None for v in judged.values())
    agree = sum(judged[d] == human[d] for d in human)
    result = summary["judge_agreement"]["win_rm"]
    assert result["n"] == 6 and result["agreement"] == pytest.approx(agree / 6)
    assert result["per_labeler"]["dana"]["agreement"] == pytest.approx(agree / 6)

    out = tmp_path / "rankings.jsonl"
    assert main(["label", str(judged_run), "--export", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5  # p6 is all tied: nothing to learn from
    # Each ranking holds the prompt as the models saw it, and their two outputs.
    with open(judged_run / "samples" / "policy" / "outputs.jsonl") as handle:
        policy = {s["doc_id"]: s for s in map(json.loads, handle)}
    for row in rows:
        doc_id = row["id"].split(":")[0]
        assert row["id"] == f"{doc_id}:dana" and row["prompt"] == policy[doc_id]["prompt"]
        assert policy[doc_id]["prediction"] in row["completions"]

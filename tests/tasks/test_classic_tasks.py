"""HellaSwag, RTE, SST-2, WSC and QuAC on small hand-written files; every task's hub path,
online (a stand-in hub) and offline (a clear DataError)."""

from __future__ import annotations

import json

import datasets
import pytest

from rlhf_eval.errors import DataError
from rlhf_eval.records import Loglikelihood
from rlhf_eval.tasks.base import registered_tasks
from tests.tasks.helpers import FIXTURES, generated, make_task

HUB_FIXTURES = {
    "drop": "drop_hub.jsonl",
    "squad_v2": "squad_hub.jsonl",
    "wmt15_fr_en": "wmt_hub.jsonl",
    "tldr": None,
    "cnn_dm": "cnn_dm.jsonl",
    "hellaswag": "hellaswag.jsonl",
    "rte": "rte.jsonl",
    "sst2": "sst2.jsonl",
    "wsc": "wsc.jsonl",
    "quac": "quac.jsonl",
}


def scored(logprobs):
    return [Loglikelihood(lp, 3, False) for lp in logprobs]


def test_hellaswag_is_lm_evals_definition():
    task = make_task("hellaswag", "hellaswag.jsonl")
    doc = task.documents()[0]
    requests = task.requests(doc)
    assert requests[0].context == "Baking cookies: A man puts a tray in the oven. He"
    # " [title]" becomes ". ", and the ending follows after one space.
    assert requests[0].continuation == " waits for the cookies to bake. Then he eats one."
    # acc takes the summed log-prob, acc_norm divides by the ending's characters: the long
    # right ending loses on the sum but wins per character.
    lengths = [len(c) for c in doc.data["choices"]]
    logprobs = [-0.5 * lengths[0], -20.0, -30.0, -30.0]
    assert lengths[0] * 0.5 > 20
    assert task.score(doc, scored(logprobs)).metrics == {
        "hellaswag_acc": 0.0,
        "hellaswag_acc_norm": 1.0,
    }


def test_rte_and_sst2_prompts_and_labels():
    rte = make_task("rte", "rte.jsonl")
    first, second = rte.documents()
    assert rte.requests(first)[0].context == (
        "The cat sat on the mat all day.\nQuestion: The cat was on the mat. True or False?\nAnswer:"
    )
    assert [r.continuation for r in rte.requests(first)] == [" True", " False"]
    assert rte.score(second, scored([-2.0, -1.0])).metrics == {"rte_acc": 1.0}  # premise layout
    sst2 = make_task("sst2", "sst2.jsonl")
    doc = sst2.documents()[0]
    assert sst2.requests(doc)[0].context.endswith(
        "\nQuestion: Is this sentence positive or negative?\nAnswer:"
    )
    assert sst2.score(doc, scored([-1.0, -3.0])).metrics == {"sst2_acc": 0.0}


def test_wsc_marks_the_pronoun_and_checks_the_referent_both_ways():
    task = make_task("wsc", "wsc.jsonl")
    true_doc, false_doc, trophy = task.documents()
    assert "because *she* was hungry" in task.prompt(true_doc)
    assert 'what does the pronoun "*she*" refer to?\nAnswer:' in task.prompt(true_doc)
    assert task.score(true_doc, generated("Joan")).metrics == {"wsc_acc": 1.0}
    assert task.score(true_doc, generated("Jane")).metrics == {"wsc_acc": 0.0}
    # Label False: naming the wrong candidate (Jane) is a True call, which is wrong.
    assert task.score(false_doc, generated("Jane")).metrics == {"wsc_acc": 0.0}
    assert task.score(false_doc, generated("Joan")).metrics == {"wsc_acc": 1.0}
    # The noun contains the sample ("trophy" in "the trophy"), or the sample the noun.
    assert task.score(trophy, generated("trophy")).metrics == {"wsc_acc": 1.0}
    assert task.score(trophy, generated("The trophy is big")).metrics == {"wsc_acc": 1.0}


def test_wsc_exemplars_are_true_schemas_only():
    task = make_task("wsc", "wsc.jsonl", num_fewshot=1)
    for doc in task.documents():
        assert all(shot.data["label"] for shot in task.exemplars(doc))


def test_quac_turns_cannotanswer_into_abstention():
    task = make_task("quac", "quac.jsonl")
    docs = task.documents()
    assert len(docs) == 3 and len({d.cluster for d in docs}) == 1
    assert "CANNOTANSWER" not in task.prompt(docs[2])
    assert task.prompt(docs[2]).endswith(
        "Q: What did she study?\n\nA: art in Paris\n\nQ: Did she marry?\n\nA:"
    )
    assert task.score(docs[2], generated("I don't know.")).metrics == {
        "quac_f1": 1.0,
        "quac_em": 1.0,
    }
    assert task.score(docs[0], generated("Leeds")).metrics == {"quac_f1": 1.0, "quac_em": 1.0}


@pytest.mark.parametrize("name", sorted(HUB_FIXTURES))
def test_hub_data_loads_through_datasets(name, monkeypatch):
    """`data: hub` asks datasets.load_dataset for the task's path, config and split."""
    cls = registered_tasks()[name]
    fixture = HUB_FIXTURES[name]
    if fixture is None:
        rows = [{"prompt": "SUBREDDIT: r/x\nPOST: My dog barks.\nTL;DR:", "label": " Dog barks."}]
    else:
        rows = [json.loads(line) for line in (FIXTURES / fixture).read_text().splitlines()]
    asked = []

    def load_dataset(path, config=None, split=None):
        asked.append((path, config, split))
        return rows

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    docs = cls(cls.Options(), FIXTURES).documents()
    assert docs and asked == [cls.hub]
    if name == "tldr":
        assert docs[0].data == {
            "text": "SUBREDDIT: r/x\nPOST: My dog barks.",
            "reference": "Dog barks.",
        }


@pytest.mark.parametrize("name", sorted(HUB_FIXTURES))
def test_offline_hub_is_a_clear_error(name, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    cls = registered_tasks()[name]
    with pytest.raises(DataError, match=r"cannot load the hub dataset .*local copy"):
        cls(cls.Options(data="hub"), FIXTURES).documents()


def test_bad_labels_are_data_errors(tmp_path):
    (tmp_path / "h.jsonl").write_text(
        json.dumps({"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["x", "y"],
                    "label": ""}) + "\n"
    )  # fmt: skip
    with pytest.raises(DataError, match="test split has no labels"):
        make_task("hellaswag", str(tmp_path / "h.jsonl")).documents()
    (tmp_path / "s.jsonl").write_text(json.dumps({"sentence": "s", "label": -1}) + "\n")
    with pytest.raises(DataError, match="must be one of 0..1"):
        make_task("sst2", str(tmp_path / "s.jsonl")).documents()

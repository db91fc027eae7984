"""WMT15 fr-en task: the paper's prompt, the stored hypothesis/reference and corpus BLEU."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from rlhf_eval.estimation import corpus_table
from tests.tasks.helpers import generated, make_task


def test_prompt_is_the_papers():
    task = make_task("wmt15_fr_en", "wmt.jsonl")
    assert task.prompt(task.documents()[0]) == (
        "Translate the following sentences from French into English.\n\n"
        "French: Le chat dort.\nEnglish:"
    )
    (request,) = task.requests(task.documents()[0])
    assert request.stop == ("\n",) and request.max_new_tokens == 256


def test_samples_keep_what_corpus_bleu_needs():
    task = make_task("wmt15_fr_en", "wmt.jsonl")
    docs = task.documents()
    hyps = ["The cat sleeps.", "It rains this morning.", "We are hungry.", "", "x", "Train."]
    samples = [task.score(d, generated(h)).__dict__ for d, h in zip(docs, hyps, strict=True)]
    assert samples[0]["details"] == {
        "hypothesis": "The cat sleeps.",
        "reference": "The cat is sleeping.",
    }
    (spec,) = task.metrics
    table = corpus_table(spec, samples)
    ours = spec.corpus.score(table.sum(axis=0)[None])[0]
    refs = [d.data["en"] for d in docs]
    assert ours == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
    assert spec.kind == "corpus" and np.isfinite(samples[0]["metrics"]["bleu"])


def test_hub_layout_nests_the_pair():
    docs = make_task("wmt15_fr_en", "wmt_hub.jsonl").documents()
    assert docs[1].data == {"fr": "Merci beaucoup.", "en": "Thank you very much."}


def test_few_shot_pairs_precede_the_sentence():
    task = make_task("wmt15_fr_en", "wmt.jsonl", num_fewshot=2)
    doc = task.documents()[0]
    shots = task.exemplars(doc)
    assert doc not in shots and shots == task.exemplars(doc)  # deterministic
    blocks = task.prompt(doc).split("\n\n")
    assert blocks[1] == f"French: {shots[0].data['fr']}\nEnglish: {shots[0].data['en']}"
    assert blocks[3] == "French: Le chat dort.\nEnglish:"

"""TyDi QA GoldP: lm-eval's prompts per language, its normalisation and metrics (by hand and
against lm-eval's own utils), exemplars of the same language, bad data, hub out of reach."""

from __future__ import annotations

import json
import textwrap

import pytest

from rlhf_eval.errors import DataError, DataUnavailable
from rlhf_eval.planner import plan_document
from rlhf_eval.tasks.tydiqa import (
    LANGUAGES,
    Tydiqa,
    TydiqaOptions,
    answer_scores,
    f1_score,
    normalize_answer,
)
from tests.tasks.helpers import FIXTURES, generated


def make(**options) -> Tydiqa:
    options.setdefault("data", "tydiqa.jsonl")
    return Tydiqa(TydiqaOptions(**options), FIXTURES)


def test_prompts_in_each_language_by_hand():
    task = make()
    docs = task.documents()
    assert [d.data["language"] for d in docs] == ["en", "en", "ar", "fi"]
    request = task.requests(docs[0])[0]
    assert request.prompt == (
        "Context: The old lighthouse on the north cape was built in 1874 and guided ships for a "
        "century.\n\nQuestion: When was the lighthouse on the north cape built?\n\nAnswer:"
    )
    assert (request.stop, request.temperature) == (("\n",), 0.0)
    assert plan_document(task, "e", docs[0])[0].item == docs[0].id
    assert task.requests(docs[3])[0].prompt == (
        "Konteksti: Saimaa on Suomen suurin järvi.\n\nKysymys: Mikä on Suomen suurin järvi?"
        "\n\nVastaus:"
    )
    assert task.requests(docs[2])[0].prompt.startswith("السياق: القاهرة")
    # Questions on one passage are resampled together.
    assert docs[0].cluster == docs[1].cluster != docs[3].cluster


def test_language_filter():
    assert [d.data["language"] for d in make(languages=["fi", "ar"]).documents()] == ["ar", "fi"]
    with pytest.raises(ValueError, match="unknown TyDi QA GoldP language"):
        TydiqaOptions(languages=["ja"])


def test_normalisation_and_f1_by_hand():
    assert normalize_answer("The  Lighthouse, in 1874!", "en") == "lighthouse in 1874"
    assert normalize_answer("The Lighthouse", "fi") == "the lighthouse"  # articles: English only
    assert normalize_answer("القاهرة", "ar") == "قاهرة"
    assert normalize_answer("«Saimaa»", "fi") == "saimaa"  # Unicode punctuation goes too
    # "built in 1874" vs "1874": precision 1/3 ("in" and "built" are extra), recall 1.
    assert f1_score("built in 1874", "1874", "en") == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))
    assert answer_scores("  built in 1874 ", ["1874", "in 1874"], "en") == {
        "f1": pytest.approx(0.8),  # against "in 1874": p 2/3, r 1
        "exact_match": 0.0,
    }
    assert answer_scores("The ships.", ["ships"], "en") == {"f1": 1.0, "exact_match": 1.0}
    assert answer_scores("boats", ["ships"], "en") == {"f1": 0.0, "exact_match": 0.0}


def test_scores_equal_lm_evals_process_results():
    pytest.importorskip("lm_eval")
    from lm_eval.tasks.tydiqa.utils import process_results_lang

    cases = [
        ("en", ["1874", "in 1874"], ["1874", " in 1874.", "built in 1874", "The year 1874", "x"]),
        ("ar", ["القاهرة"], ["القاهرة", "مدينة القاهرة", "ال قاهرة", "مصر"]),
        ("fi", ["Saimaa"], ["Saimaa.", "saimaa järvi", "Päijänne"]),
    ]
    for language, golds, predictions in cases:
        for prediction in predictions:
            theirs = process_results_lang({"answers": golds}, [prediction], language)
            ours = answer_scores(prediction, golds, language)
            assert ours["exact_match"] == float(theirs["exact_match"]), prediction
            assert ours["f1"] == pytest.approx(theirs["f1"], abs=1e-12), prediction


def test_score_a_sample():
    task = make()
    doc = task.documents()[0]
    sample = task.score(doc, generated(" in 1874\n"))
    assert sample.metrics == {"f1": 1.0, "exact_match": 1.0}
    assert sample.prediction == "in 1874" and sample.details["language"] == "en"


def test_exemplars_are_of_the_same_language_seeded_and_off_the_passage():
    task = make(num_fewshot=1, fewshot_data="tydiqa_train.jsonl")
    docs = task.documents()
    english = task.prompt(docs[0])
    assert english.count("\n\nContext: ") == 1 and english.startswith("Context: The ")
    first, item = english.split("\n\nContext: ")
    assert first.endswith(("Answer: three", "Answer: the village"))
    assert task.prompt(docs[0]) == english  # the same draw every time
    finnish = task.prompt(docs[3])
    assert finnish.startswith("Konteksti: Turku on Suomen vanhin kaupunki.") and (
        "Vastaus: Turku\n\nKonteksti: Saimaa" in finnish
    )
    with pytest.raises(DataError, match="only 0 exemplars of language ar"):
        task.prompt(docs[2])
    with pytest.raises(DataError, match="fewshot_data"):
        make(num_fewshot=1).prompt(docs[0])
    # The passage's own questions are never its exemplars.
    same = make(num_fewshot=1, fewshot_data="tydiqa.jsonl", languages=["en"])
    with pytest.raises(DataError, match="only 0 exemplars"):
        same.prompt(same.documents()[0])


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"question": ""}, r"missing field\(s\) question"),
        ({"id": "japanese-3"}, "field `id`"),
        ({"answers": {"text": []}}, "field `answers`"),
        ({"answers": "1874"}, "field `answers`"),
    ],
)
def test_bad_records_name_the_file_record_and_field(tmp_path, edit, message):
    good = json.loads((FIXTURES / "tydiqa.jsonl").read_text().splitlines()[0])
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, **edit}) + "\n")
    with pytest.raises(DataError, match=rf"t\.jsonl, record 2: {message}"):
        Tydiqa(TydiqaOptions(data=str(path)), tmp_path).documents()


def test_hub_out_of_reach_is_data_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(DataUnavailable, match="google-research-datasets/tydiqa"):
        Tydiqa(TydiqaOptions(), tmp_path).documents()


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "ar", "fi"])
def test_prompts_and_stops_equal_lm_evals(tmp_path, monkeypatch, language):
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    original = f"{lm_eval.__path__[0]}/tasks/tydiqa/tydiqa_goldp_{language}.yaml"
    (tmp_path / "local_tydiqa.yaml").write_text(
        textwrap.dedent(f"""\
        include: {original}
        task: local_tydiqa
        dataset_path: json
        dataset_name: null
        dataset_kwargs:
          data_files:
            validation: {FIXTURES / "tydiqa.jsonl"}
            train: {FIXTURES / "tydiqa_train.jsonl"}
        """)
    )
    task = TaskManager(include_path=str(tmp_path)).load(["local_tydiqa"])["tasks"]["local_tydiqa"]
    task.build_all_requests(rank=0, world_size=1)
    theirs = [i.args for i in sorted(task.instances, key=lambda i: i.doc_id)]
    ours_task = make(languages=[language])
    ours = [ours_task.requests(d)[0] for d in ours_task.documents()]
    assert [r.prompt for r in ours] == [context for context, _ in theirs]
    assert all(list(r.stop) == kwargs["until"] for r, (_, kwargs) in zip(ours, theirs, strict=True))
    assert len(LANGUAGES) == 9

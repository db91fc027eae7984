"""DROP task: the paper's prompt exactly, newline stop, scoring, passage clusters, hub format."""

from __future__ import annotations

import pytest

from tests.tasks.helpers import generated, make_task

# The quote of the paper (appendix D): the instruction, then Passage/Question/Answer.
PAPER_PROMPT = (
    "Answer each question using information in the preceding passage.\n\n"
    "Passage: The Owls scored 7 points in the first half and 14 in the second.\n"
    "Question: How many points did the Owls score?\n"
    "Answer:"
)


def test_zero_shot_prompt_is_the_papers():
    task = make_task("drop", "drop.jsonl")
    assert task.prompt(task.documents()[0]) == PAPER_PROMPT


def test_generation_is_greedy_and_stops_at_newline_not_at_a_period():
    task = make_task("drop", "drop.jsonl", max_new_tokens=20)
    (request,) = task.requests(task.documents()[0])
    assert request.stop == ("\n",) and request.temperature == 0 and request.max_new_tokens == 20
    # A decimal answer survives: "3.5" is not cut at its period.
    doc = task.documents()[2]
    sample = task.score(doc, generated(" 3.5"))
    assert sample.metrics == {"drop_f1": 1.0, "drop_em": 1.0}
    assert task.score(doc, generated("3")).metrics == {"drop_f1": 0.0, "drop_em": 0.0}


def test_scoring_takes_the_best_alternative_and_multi_span_golds():
    task = make_task("drop", "drop.jsonl")
    docs = task.documents()
    assert task.score(docs[5], generated("31-yard")).metrics == {"drop_f1": 1.0, "drop_em": 1.0}
    # Gold ["rye", "oats"] is one two-span answer: "rye" alone aligns with one of two bags.
    assert task.score(docs[3], generated("rye")).metrics == {"drop_f1": 0.5, "drop_em": 0.0}
    sample = task.score(docs[3], generated("rye"))
    assert sample.prompt == task.prompt(docs[3]) and sample.target == [["rye", "oats"]]


def test_questions_on_one_passage_share_a_cluster():
    docs = make_task("drop", "drop.jsonl").documents()
    clusters = [d.cluster for d in docs]
    assert clusters[0] == clusters[1] != clusters[2] == clusters[3] != clusters[4]
    assert len({d.id for d in docs}) == len(docs)


def test_few_shot_exemplars_come_from_other_passages():
    task = make_task("drop", "drop.jsonl", num_fewshot=2)
    docs = task.documents()
    for doc in docs:
        shots = task.exemplars(doc)
        assert len(shots) == 2 and all(s.cluster != doc.cluster for s in shots)
    prompt = task.prompt(docs[0])
    shots = task.exemplars(docs[0])
    first = shots[0].data
    answer = first["answers"][0] if isinstance(first["answers"][0], str) else "rye, oats"
    assert prompt.startswith(
        "Answer each question using information in the preceding passage.\n\n"
        f"Passage: {first['passage']}\nQuestion: {first['question']}\nAnswer: {answer}\n\n"
    )
    assert prompt.endswith(PAPER_PROMPT.split("\n\n", 1)[1])


def test_hub_layout_reads_answers_spans_as_one_multi_span_answer():
    docs = make_task("drop", "drop_hub.jsonl").documents()
    assert docs[0].data["answers"] == [["Lee", "Kim"]] and docs[1].data["answers"] == [["7"]]


def test_original_drop_layout_reads_answer_and_validated_answers():
    from rlhf_eval.tasks.drop import _row

    record = {
        "passage": "p",
        "question": "q",
        "answer": {"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": ["a"]},
        "validated_answers": {
            "number": ["", "3"],
            "date": [{"day": "", "month": "", "year": ""}] * 2,
            "spans": [["a"], []],
        },
    }
    assert _row(record, "x", 0)["answers"] == [["a"], "3"]


def test_missing_field_names_file_and_record(tmp_path):
    from rlhf_eval.errors import DataError

    (tmp_path / "bad.jsonl").write_text('{"passage": "p", "question": "q"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl, record 1: missing field\(s\) answers"):
        make_task("drop", str(tmp_path / "bad.jsonl")).documents()

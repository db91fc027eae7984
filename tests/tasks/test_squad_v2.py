"""SQuAD v2 task: the paper's prompt, "Not in background." as the empty answer, the HasAns/NoAns
split, passage clusters, and the hub layout turned into the paper's dialogue format."""

from __future__ import annotations

from tests.tasks.helpers import generated, make_task

PAPER_INSTRUCTION = (
    "Answer each question using information in the preceding background paragraph. If there is "
    'not enough information provided, answer with "Not in background."'
)


def test_prompt_is_the_papers_with_the_earlier_turns():
    task = make_task("squad_v2", "squad.jsonl")
    assert task.prompt(task.documents()[2]) == (
        f"{PAPER_INSTRUCTION}\n\n"
        "Title: Lighthouse\n\n"
        "Background: The old lighthouse on Gull Rock was built in 1871 and painted red in 1902.\n\n"
        "Q: When was the lighthouse built?\n\nA: 1871\n\n"
        "Q: Who designed the lighthouse?\n\nA: Not in background.\n\n"
        "Q: What color was it painted?\n\nA:"
    )


def test_abstaining_is_credited_on_unanswerable_questions_only():
    task = make_task("squad_v2", "squad.jsonl")
    docs = task.documents()
    unanswerable, answerable = docs[1], docs[0]
    for text in ("Not in background.", "not in background", " Not in background"):
        assert task.score(unanswerable, generated(text)).metrics == {
            "squad_f1": 1.0,
            "squad_em": 1.0,
            "squad_hasans_f1": None,
            "squad_noans_f1": 1.0,
        }
    assert task.score(unanswerable, generated("Gustave Eiffel")).metrics["squad_noans_f1"] == 0.0
    assert task.score(answerable, generated("Not in background.")).metrics == {
        "squad_f1": 0.0,
        "squad_em": 0.0,
        "squad_hasans_f1": 0.0,
        "squad_noans_f1": None,
    }
    sample = task.score(answerable, generated("built in 1871"))
    assert sample.metrics["squad_em"] == 0.0 and abs(sample.metrics["squad_f1"] - 0.8) < 1e-12


def test_one_paragraph_is_one_cluster():
    docs = make_task("squad_v2", "squad.jsonl").documents()
    assert len({d.cluster for d in docs[:3]}) == 1 and docs[3].cluster != docs[0].cluster


def test_hub_rows_get_the_paragraphs_earlier_questions_as_dialogue():
    docs = make_task("squad_v2", "squad_hub.jsonl").documents()
    assert docs[2].data["dialogue"] == (
        "Q: When was it built?\n\nA: 1871\n\n"
        "Q: Who built it?\n\nA: Not in background.\n\n"
        "Q: Where is it?\n\nA:"
    )
    assert docs[1].data["answers"] == ["Not in background."]
    assert docs[3].data["dialogue"] == "Q: What does it sell?\n\nA:"  # a new paragraph


def test_few_shot_exemplars_answer_after_the_cue():
    task = make_task("squad_v2", "squad.jsonl", num_fewshot=1)
    doc = task.documents()[3]
    (shot,) = task.exemplars(doc)
    assert shot.cluster != doc.cluster
    prompt = task.prompt(doc)
    expected_answer = shot.data["answers"][0]
    assert f"{shot.data['dialogue']} {expected_answer}\n\nTitle: Bakery" in prompt


def test_the_papers_exact_abstention_rule_is_an_option_and_named():
    """Issue 14.16: OpenAI's evaluation counts only the exact "Not in background."."""
    exact = make_task("squad_v2", "squad.jsonl", abstention="exact")
    unanswerable = exact.documents()[1]
    assert exact.score(unanswerable, generated("Not in background.")).metrics["squad_em"] == 1.0
    assert exact.score(unanswerable, generated(" Not in background.")).metrics["squad_em"] == 1.0
    for text in ("not in background", "Not in background", "NOT IN BACKGROUND."):
        assert exact.score(unanswerable, generated(text)).metrics["squad_noans_f1"] == 0.0
    assert "exact answer" in exact.notes()[0]
    assert "lenient" in make_task("squad_v2", "squad.jsonl").notes()[0]

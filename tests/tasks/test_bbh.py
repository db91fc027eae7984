"""BIG-Bench Hard: lm-eval's 3-shot CoT prompts, answers after "the answer is", the macro average
with a bootstrap stratified by subtask, and clear errors for malformed files."""

from __future__ import annotations

import json
import shutil

import pytest
from pydantic import ValidationError

from rlhf_eval.errors import DataError
from rlhf_eval.estimation import corpus_table, estimate_corpus
from rlhf_eval.metrics.answer_extraction import cue_answer, cue_answer_matches
from rlhf_eval.metrics.corpus import BBH_SUBTASKS as SUBTASKS
from rlhf_eval.records import PromptSource
from rlhf_eval.run_settings import StatsSettings
from rlhf_eval.tasks.bbh import BbhOptions, build_prompt, parse_cot_prompt
from tests.tasks.helpers import bbh_folder, generated, make_task

FIXTURE_SUBTASKS = ["boolean_expressions", "date_understanding"]
"""The subtasks of the hand-written fixture folder (a task without `subtasks` needs all 27)."""

# (model output, extracted answer)
OUTPUTS = [
    ("not ( False ) = True. So the answer is True.", "True"),
    ("Today is 03/01/2020. So the answer is (A).", "(A)"),
    ("So the answer is (B). Hmm, no: so the answer is (A).", "(A)"),  # the last cue counts
    ("The answer is 24", "24"),
    ("So the answer is ] ) }.", "] ) }"),
    ("So the answer is -68. Then we check.", "-68"),
    ("So the answer is (C)\nQ: another question", "(C)"),
    ("I think it is true.", None),
    ("So the answer is .", None),
]


def fixture_task(data: str | None = None, **options):
    data = data or str(bbh_folder())
    return make_task("bbh", data, **{"subtasks": FIXTURE_SUBTASKS, **options})


def test_prompt_is_description_exemplars_question():
    task = fixture_task()
    doc = task.documents()[0]
    assert task.prompt(doc) == (
        "Say whether each Boolean expression is True or False.\n\n"
        "Q: not ( False ) is\nA: Let's think step by step.\n"
        "not ( False ) = True. So the answer is True.\n\n"
        # reasoning written on the cue's line moves to the next, as in lm-eval
        "Q: True and False is\nA: Let's think step by step.\n"
        "True and False = False. So the answer is False.\n\n"
        "Q: not ( False ) and ( False ) is\nA: Let's think step by step.\n"
    )
    (request,) = task.requests(doc)
    assert request.stop == ("\n\n",) and request.temperature == 0.0
    assert request.max_new_tokens == 512
    assert request.source == PromptSource("", "not ( False ) and ( False ) is")


def test_documents_keep_subtask_order_cap_and_limit():
    docs = make_task(
        "bbh", str(bbh_folder()), subtasks=["date_understanding", "boolean_expressions"]
    ).documents()
    assert [d.data["subtask"] for d in docs] == ["date_understanding"] * 2 + [
        "boolean_expressions"
    ] * 3
    with pytest.raises(DataError, match="causal_judgement not found"):
        make_task("bbh", str(bbh_folder())).documents()  # all 27 by default; the fixture has two
    capped = make_task("bbh", str(bbh_folder()), subtasks=["boolean_expressions"], max_per_task=2)
    assert [d.data["target"] for d in capped.documents()] == ["False", "True"]
    limited = make_task(
        "bbh", str(bbh_folder()), subtasks=["boolean_expressions"], limit=1
    ).documents()
    assert len(limited) == 1 and limited[0].id.startswith("boolean_expressions-")


@pytest.mark.parametrize(("output", "answer"), OUTPUTS)
def test_answer_extraction_on_hand_written_outputs(output, answer):
    assert cue_answer(output) == answer


def test_matching_is_exact_with_bare_option_letters_accepted():
    assert cue_answer_matches("(A)", "(A)") and cue_answer_matches("A", "(A)")
    assert not cue_answer_matches("a", "(A)") and not cue_answer_matches("(A) 02/29", "(A)")
    assert not cue_answer_matches("true", "True") and not cue_answer_matches(None, "True")
    assert cue_answer_matches("24", "24") and not cue_answer_matches("A", "A)")


def test_extraction_agrees_with_lm_eval_on_outputs_in_the_exemplar_form():
    pytest.importorskip("lm_eval")
    from lm_eval.filters.extraction import RegexFilter

    theirs = RegexFilter("(?<=the answer is )(.*)(?=.)")
    outputs = [o for o, a in OUTPUTS[:2] + OUTPUTS[4:6]]
    extracted = [r[0] for r in theirs.apply([[o] for o in outputs], [{}] * len(outputs))]
    # lm-eval keeps the rest of the line after "-68"; the sentence ends at "."
    assert extracted[:3] == [cue_answer(o) for o in outputs[:3]]
    assert extracted[3] == "-68. Then we check" and cue_answer(outputs[3]) == "-68"


def score_all(task, outputs):
    return [
        task.score(doc, generated(text)).__dict__
        for doc, text in zip(task.documents(), outputs, strict=True)
    ]


def test_macro_average_is_the_mean_of_subtask_accuracies():
    task = fixture_task()
    # boolean_expressions (targets False, True, False): 2 of 3 right; date_understanding
    # (targets (A), (B)): 0 of 2 right, one without any answer.
    samples = score_all(
        task,
        [
            "So the answer is False.",
            "So the answer is True.",
            "So the answer is True.",
            "So the answer is (B).",
            "No idea.",
        ],
    )
    assert [s["metrics"]["exact_match"] for s in samples] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert [s["metrics"]["answer_found"] for s in samples] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert samples[0]["details"]["subtask"] == "boolean_expressions"
    spec = task.metrics[0]
    table = corpus_table(spec, samples)
    macro = spec.corpus.score(table.sum(axis=0)[None])[0]
    assert macro == pytest.approx((2 / 3 + 0 / 2) / 2)  # micro would be 2/5
    settings = StatsSettings(bootstrap_iterations=2000)
    estimate = estimate_corpus(spec, samples, settings, seed=0)
    assert estimate.point == pytest.approx(1 / 3)
    assert estimate.method == (
        "expanded percentile bootstrap (2000 resamples, stratified by 2 strata)"
    )
    # date_understanding is all wrong in every replicate, so the macro average lies in
    # {0, 1/6, 1/3, 1/2}: boolean_expressions resampled, 0 to 3 right of 3, halved
    assert estimate.lo >= 0.0 and estimate.hi <= 0.5


def test_bbh_declares_subtask_breakdowns():
    assert fixture_task().breakdowns == ("subtask",)


def copy_fixture(tmp_path):
    folder = tmp_path / "bbh"
    shutil.copytree(bbh_folder(), folder)
    return folder


def test_file_without_examples_is_a_data_error(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "tasks/boolean_expressions.json").write_text(json.dumps({"canary": "x"}))
    with pytest.raises(DataError) as error:
        fixture_task(str(folder)).documents()
    message = str(error.value)
    assert "boolean_expressions.json" in message and "`examples`" in message and "Fix:" in message


def test_example_without_target_is_a_data_error(tmp_path):
    folder = copy_fixture(tmp_path)
    path = folder / "tasks/date_understanding.json"
    path.write_text(json.dumps({"examples": [{"input": "x", "target": "(A)"}, {"input": "y"}]}))
    with pytest.raises(DataError, match=r"date_understanding.json, example 2: missing field"):
        fixture_task(str(folder)).documents()


def test_missing_or_malformed_cot_prompt_is_a_data_error(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "cot-prompts/boolean_expressions.txt").write_text("Evaluate.\n\nQ: x\nA: y")
    task = fixture_task(str(folder))
    with pytest.raises(DataError, match="no `-----` line"):
        task.prompt(task.documents()[0])
    (folder / "cot-prompts/date_understanding.txt").unlink()
    with pytest.raises(DataError, match="date_understanding.txt does not exist"):
        task.prompt(task.documents()[-1])
    with pytest.raises(DataError, match="exemplar 1 has no answer line"):
        parse_cot_prompt("canary\n-----\nDescribe.\n\nQ: x without answer", "p.txt")


def test_unknown_subtask_and_missing_folder(tmp_path):
    with pytest.raises(ValidationError, match="unknown BBH subtask"):
        BbhOptions(data="bbh", subtasks=["boolean_expression"])
    with pytest.raises(DataError, match="does not exist"):
        make_task("bbh", str(tmp_path / "nowhere")).documents()


def test_shared_data_has_all_subtasks(shared_data):
    full = make_task("bbh", str(shared_data / "bbh")).documents()
    assert len(full) == 6511 and len({d.id for d in full}) == 6511
    capped = make_task("bbh", str(shared_data / "bbh"), max_per_task=40).documents()
    assert len(capped) == 27 * 40
    assert [d.data["subtask"] for d in capped[::40]] == list(SUBTASKS)


@pytest.mark.slow
def test_prompts_and_stops_equal_lm_evals_for_all_subtasks(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    data = {}
    for subtask in SUBTASKS:
        examples = json.loads((shared_data / f"bbh/tasks/{subtask}.json").read_text())["examples"]
        path = tmp_path / f"{subtask}.jsonl"
        path.write_text("\n".join(json.dumps(e) for e in examples[:2]))
        data[f"bbh/cot_fewshot/{subtask}.yaml"] = path
    from tests.tasks.lm_eval_local import lm_eval_requests

    theirs = lm_eval_requests(tmp_path, data)
    task = make_task("bbh", str(shared_data / "bbh"), max_per_task=2)
    docs = task.documents()
    for subtask in SUBTASKS:
        ours = [task.prompt(d) for d in docs if d.data["subtask"] == subtask]
        assert ours == [context for context, _ in theirs[f"bbh/cot_fewshot/{subtask}.yaml"]]


def test_build_prompt_shape():
    assert build_prompt("Describe.", [("q1", "r1.")], "q2") == (
        "Describe.\n\nQ: q1\nA: Let's think step by step.\nr1.\n\n"
        "Q: q2\nA: Let's think step by step.\n"
    )

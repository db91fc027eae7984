"""GSM8K: lm-eval gsm8k_cot's prompt and stops, its two answer filters and its normalisation,
checked on hand-written outputs and against lm-eval's own code where it is installed."""

from __future__ import annotations

import json

import pytest

from rlhf_eval.errors import DataError
from rlhf_eval.metrics.answer_extraction import (
    last_number,
    normalize_number,
    numbers_match,
    strict_number,
)
from rlhf_eval.records import PromptSource
from rlhf_eval.tasks.gsm8k import STOP, build_prompt
from tests.tasks.helpers import FIXTURES, generated, make_task
from tests.tasks.lm_eval_local import lm_eval_requests

# (output, strict-match, flexible-extract) as lm-eval 0.4.13's filters extract them.
OUTPUTS = [
    ("He has 3 + 4 = 7 apples. The answer is 7.", "7", "7."),
    ("So 2 * 12 = 24 and 24 + 3 = 27. The answer is 27.\n", "27", "27."),
    ("It makes $1,200 a day, so $12,000. The answer is 12,000.", "12,000", "12,000."),
    # strict's greedy class keeps a period that a space follows; flexible finds the last "-5"
    ("The answer is -5. Wait, 3 - 8 = -5 indeed.", "-5.", "-5"),
    # strict's last "." matches any character: with nothing after the number it eats a digit
    ("The answer is 18", "1", "18"),
    ("The total is 18.00 dollars", None, "18.00"),
    ("I am not sure.", None, None),
    ("Costs: 5 then 6 then 7", None, "7"),
    ("Step 1: 2+2=4. The answer is 4", None, "4"),
]


def test_prompt_is_lm_evals_format():
    assert build_prompt("How many?", num_fewshot=1) == (
        "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. "
        "After they are done, there will be 21 trees. How many trees did the grove workers "
        "plant today?\nA: There are 15 trees originally. Then there were 21 trees after some "
        "more were planted. So there must have been 21 - 15 = 6. The answer is 6.\n\n"
        "Q: How many?\nA:"
    )
    eight = build_prompt("How many?")
    assert eight.count("\n\nQ: ") == 8 and eight.endswith("The answer is 8.\n\nQ: How many?\nA:")
    assert build_prompt("How many?", num_fewshot=0) == "Q: How many?\nA:"


def test_direct_variant_keeps_only_the_answer():
    prompt = build_prompt("How many?", num_fewshot=2, chain_of_thought=False)
    assert prompt == (
        "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. "
        "After they are done, there will be 21 trees. How many trees did the grove workers "
        "plant today?\nA: The answer is 6.\n\n"
        "Q: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are "
        "in the parking lot?\nA: The answer is 5.\n\nQ: How many?\nA:"
    )


def test_requests_are_greedy_with_lm_evals_stops():
    task = make_task("gsm8k", "gsm8k.jsonl")
    (request,) = task.requests(task.documents()[0])
    assert request.stop == ("Q:", "</s>", "<|im_end|>") == STOP
    assert request.temperature == 0.0 and request.max_new_tokens == 256
    assert request.prompt.endswith(
        "Q: Tom has 3 apples and buys 4 more. How many apples does he have?\nA:"
    )
    question = "Tom has 3 apples and buys 4 more. How many apples does he have?"
    doc = task.documents()[0]
    assert request.source == PromptSource("", question)
    direct = make_task("gsm8k", "gsm8k.jsonl", chain_of_thought=False)
    assert direct.requests(doc)[0].source == PromptSource("direct", question)


@pytest.mark.parametrize(("output", "strict", "flexible"), OUTPUTS)
def test_answer_extraction_on_hand_written_outputs(output, strict, flexible):
    assert strict_number(output) == strict
    assert last_number(output) == flexible


def test_normalisation_is_lm_evals():
    assert normalize_number("$12,000.") == "12000"
    assert normalize_number("The answer\n#### 72") == "72"
    assert normalize_number("18.00") == "18.00"  # no numeric comparison, as in lm-eval
    assert numbers_match("12,000.", "12000") and numbers_match("$7", "7")
    assert not numbers_match("18.00", "18") and not numbers_match(None, "7")


def test_scoring_reports_flexible_and_strict():
    task = make_task("gsm8k", "gsm8k.jsonl")
    doc = task.documents()[2]  # the gold answer is written "12,000"
    sample = task.score(doc, generated("10 days at $1,200 make $12,000. The answer is 12000."))
    assert sample.target == "12,000"
    assert sample.prediction == "12000."
    assert sample.metrics == {"exact_match": 1.0, "exact_match_strict": 1.0}
    assert sample.details["strict_answer"] == "12000"
    sample = task.score(doc, generated("The answer is 12000 dollars, or 10 x 1200."))
    assert sample.metrics == {"exact_match": 0.0, "exact_match_strict": 1.0}
    assert sample.prompt == task.prompt(doc)


def test_limit_and_ids():
    docs = make_task("gsm8k", "gsm8k.jsonl", limit=2).documents()
    assert len(docs) == 2 and len({d.id for d in docs}) == 2
    assert docs[0].data["target"] == "7"
    assert docs == make_task("gsm8k", "gsm8k.jsonl").documents()[:2]


def test_answer_without_marker_is_a_data_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    rows = [
        {"question": "One plus one?", "answer": "1 + 1 = 2\n#### 2"},
        {"question": "Two plus two?", "answer": "2 + 2 = 4"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError) as error:
        make_task("gsm8k", str(path)).documents()
    message = str(error.value)
    assert "bad.jsonl, record 2" in message and "`answer`" in message and "Fix:" in message


def test_missing_question_is_a_data_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"answer": "#### 2"}))
    with pytest.raises(DataError, match="record 1: missing field `question`"):
        make_task("gsm8k", str(path)).documents()


def test_shared_test_split(shared_data):
    docs = make_task("gsm8k", str(shared_data / "gsm8k/test.jsonl")).documents()
    assert len(docs) == 1319 and len({d.id for d in docs}) == 1319
    assert docs[0].data["target"] == "18"
    assert all(normalize_number(d.data["target"]).lstrip("-").isdigit() for d in docs)


@pytest.mark.slow
def test_prompts_and_stops_equal_lm_evals(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    data = {"gsm8k/gsm8k-cot.yaml": FIXTURES / "gsm8k.jsonl"}
    theirs = lm_eval_requests(tmp_path, data)["gsm8k/gsm8k-cot.yaml"]
    task = make_task("gsm8k", "gsm8k.jsonl")
    ours = [task.requests(doc)[0] for doc in task.documents()]
    assert [r.prompt for r in ours] == [context for context, _ in theirs]
    assert all(list(r.stop) == kwargs["until"] for r, (_, kwargs) in zip(ours, theirs, strict=True))


def test_extraction_and_match_equal_lm_evals_filters():
    pytest.importorskip("lm_eval")
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    strict = RegexFilter(r"The answer is (\-?[0-9\.\,]+).")
    flexible = RegexFilter(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)
    outputs = [o for o, _, _ in OUTPUTS]
    targets = ["7", "27", "12000", "-5", "18", "18", "3", "7", "4"]
    ignore = [",", "\\$", "(?s).*#### ", "\\.$"]
    for theirs_filter, ours in ((strict, strict_number), (flexible, last_number)):
        extracted = [r[0] for r in theirs_filter.apply([[o] for o in outputs], [{}] * len(outputs))]
        assert extracted == [ours(o) if ours(o) is not None else "[invalid]" for o in outputs]
        for text, target in zip(outputs, targets, strict=True):
            theirs = exact_match_hf_evaluate(
                [extracted[outputs.index(text)]],
                [target],
                regexes_to_ignore=ignore,
                ignore_case=True,
            )["exact_match"]
            assert theirs == float(numbers_match(ours(text), target)), text

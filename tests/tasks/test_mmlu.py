"""MMLU: lm-eval's prompt and answer letters, first-n dev exemplars, scoring by hand, bad data,
and hub data out of reach."""

from __future__ import annotations

import json
import textwrap

import pytest

from rlhf_eval.errors import DataError, DataUnavailable
from rlhf_eval.records import Loglikelihood
from rlhf_eval.tasks.mmlu import SUBJECTS, Mmlu, MmluOptions, build_context
from tests.tasks.helpers import FIXTURES


def make(**options) -> Mmlu:
    options.setdefault("data", "mmlu.jsonl")
    return Mmlu(MmluOptions(**options), FIXTURES)


def test_zero_shot_prompt_and_letters_by_hand():
    task = make()
    docs = task.documents()
    assert [d.data["subject"] for d in docs] == [
        "abstract_algebra",
        "abstract_algebra",
        "astronomy",
        "miscellaneous",
    ]
    requests = task.requests(docs[1])
    assert [r.continuation for r in requests] == [" A", " B", " C", " D"]
    assert requests[0].context == (
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "Which element is the identity of the integers under addition?\n"
        "A. 0\nB. 1\nC. -1\nD. There is none\nAnswer:"
    )
    assert len({r.context for r in requests}) == 1


def test_few_shot_takes_the_first_dev_questions_of_the_subject():
    task = make(num_fewshot=2, fewshot_data="mmlu_dev.jsonl")
    context = task.requests(task.documents()[0])[0].context
    assert context == (
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "How many elements does the trivial group have?\n"
        "A. 0\nB. 1\nC. 2\nD. Infinitely many\nAnswer: B\n\n"
        "Is the set of even integers closed under addition?\n"
        "A. Yes\nB. No\nC. Only for positive integers\nD. Only modulo 4\nAnswer: A\n\n"
        "What is the order of the group of integers modulo 6 under addition?\n"
        "A. 2\nB. 3\nC. 6\nD. 12\nAnswer:"
    )
    # The astronomy question gets astronomy exemplars; the dev file has only one.
    with pytest.raises(DataError, match="only 1 for astronomy"):
        task.requests(task.documents()[2])
    one_shot = make(num_fewshot=1, fewshot_data="mmlu_dev.jsonl")
    assert "Milky Way" in one_shot.requests(one_shot.documents()[2])[0].context


def test_few_shot_with_local_data_needs_dev_questions():
    with pytest.raises(DataError, match="fewshot_data"):
        make(num_fewshot=1).requests(make().documents()[0])


def test_score_is_the_letter_with_the_highest_logprob():
    task = make()
    doc = task.documents()[2]  # answer B (Mercury)
    responses = [Loglikelihood(lp, False, 1) for lp in (-3.0, -1.5, -0.9, -4.0)]
    sample = task.score(doc, responses)
    assert (sample.prediction, sample.target, sample.metrics) == ("C", "B", {"mmlu_acc": 0.0})
    assert sample.details["category"] == "stem" and sample.details["subject"] == "astronomy"
    responses = [Loglikelihood(lp, False, 1) for lp in (-3.0, -0.5, -0.9, -4.0)]
    assert task.score(doc, responses).metrics == {"mmlu_acc": 1.0}


def test_subject_filter_and_categories():
    assert len(SUBJECTS) == 57
    assert set(SUBJECTS.values()) == {"stem", "humanities", "social_sciences", "other"}
    docs = make(subjects=["astronomy", "miscellaneous"]).documents()
    assert [d.data["subject"] for d in docs] == ["astronomy", "miscellaneous"]
    with pytest.raises(ValueError, match="unknown MMLU subject"):
        MmluOptions(subjects=["astrology"])


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"question": ""}, "field `question`"),
        ({"subject": "astrology"}, "field `subject`"),
        ({"choices": ["a", "b", "c"]}, "field `choices`"),
        ({"answer": 4}, "field `answer`"),
        ({"answer": "E"}, "field `answer`"),
    ],
)
def test_bad_records_name_the_file_record_and_field(tmp_path, edit, message):
    good = {"question": "Q?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 1}
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, **edit}) + "\n")
    with pytest.raises(DataError, match=rf"m\.jsonl, record 2: {message}"):
        Mmlu(MmluOptions(data=str(path)), tmp_path).documents()


def test_letter_answers_are_accepted(tmp_path):
    path = tmp_path / "m.jsonl"
    row = {"question": "Q?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": "C"}
    path.write_text(json.dumps(row) + "\n")
    assert Mmlu(MmluOptions(data=str(path)), tmp_path).documents()[0].data["answer"] == 2


def test_hub_out_of_reach_is_data_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(DataUnavailable, match="cannot load the hub dataset cais/mmlu"):
        Mmlu(MmluOptions(), tmp_path).documents()


def lm_eval_contexts(tmp_path, subject: str, num_fewshot: int) -> list[tuple[str, str]]:
    """lm-eval's own (context, continuation) requests for its mmlu_<subject> YAML, reading the
    fixture's questions of that subject as test and dev splits."""
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    for split, name in (("test", "mmlu.jsonl"), ("dev", "mmlu_dev.jsonl")):
        rows = [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]
        (tmp_path / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows if r["subject"] == subject)
        )
    original = lm_eval.__path__[0] + f"/tasks/mmlu/default/mmlu_{subject}.yaml"
    (tmp_path / "local_mmlu.yaml").write_text(
        textwrap.dedent(f"""\
        include: {original}
        task: local_mmlu
        dataset_path: json
        dataset_name: null
        num_fewshot: {num_fewshot}
        dataset_kwargs:
          data_files:
            test: {tmp_path / "test.jsonl"}
            dev: {tmp_path / "dev.jsonl"}
        """)
    )
    task = TaskManager(include_path=str(tmp_path)).load(["local_mmlu"])["tasks"]["local_mmlu"]
    task.build_all_requests(rank=0, world_size=1)
    instances = sorted(task.instances, key=lambda i: (i.doc_id, i.idx))
    return [i.args for i in instances]


@pytest.mark.slow
@pytest.mark.parametrize("num_fewshot", [0, 2])
def test_requests_equal_lm_evals(tmp_path, monkeypatch, num_fewshot):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    theirs = lm_eval_contexts(tmp_path, "abstract_algebra", num_fewshot)
    task = make(
        subjects=["abstract_algebra"], num_fewshot=num_fewshot, fewshot_data="mmlu_dev.jsonl"
    )
    ours = [(r.context, r.continuation) for d in task.documents() for r in task.requests(d)]
    assert ours == theirs


def test_build_context_matches_the_documented_layout():
    row = {"question": "Q?", "subject": "virology", "choices": ["a", "b", "c", "d"], "answer": 3}
    assert build_context(row, [row]) == (
        "The following are multiple choice questions (with answers) about virology.\n\n"
        "Q?\nA. a\nB. b\nC. c\nD. d\nAnswer: D\n\nQ?\nA. a\nB. b\nC. c\nD. d\nAnswer:"
    )

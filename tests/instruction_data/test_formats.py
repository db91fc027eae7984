"""Every instruction-data format: detection, what it reads, round trips, and errors that name the
file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlhf_common.instruction_data import (
    FORMATS,
    Demonstration,
    Message,
    Prompt,
    Ranking,
    detect_format,
    read_demonstrations,
    read_prompts,
    read_rankings,
    write_demonstrations,
    write_prompts,
    write_rankings,
)
from rlhf_common.instruction_data.files import read_rows
from rlhf_eval.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"
"""Small files written for these tests, one per format (not copies of the real datasets)."""

FIXTURE_OF = {
    "prompt_set": "prompt_set.jsonl",
    "dolly": "dolly.jsonl",
    "alpaca": "alpaca.json",
    "self_instruct": "self_instruct.jsonl",
    "fastchat_questions": "fastchat_questions.jsonl",
    "oasst1": "oasst.jsonl",
    "sharegpt": "sharegpt.json",
    "messages": "tulu_messages.jsonl",
    "prompt_completion": "trl_prompt_completion.jsonl",
    "preference": "trl_preference.jsonl",
    "hh_rlhf": "hh_rlhf.jsonl",
    "kway": "kway.jsonl",
    "run_samples": "run_samples.jsonl",
}
READ = {"prompts": read_prompts, "demonstrations": read_demonstrations, "rankings": read_rankings}
WRITE = {
    "prompts": write_prompts,
    "demonstrations": write_demonstrations,
    "rankings": write_rankings,
}
U, A = "user", "assistant"


def test_every_format_has_a_fixture():
    assert set(FIXTURE_OF) == set(FORMATS)


@pytest.mark.parametrize("name", sorted(FIXTURE_OF))
def test_format_is_told_from_the_fields(name):
    assert detect_format(read_rows(FIXTURES / FIXTURE_OF[name])).name == name


MIXED_TYPES = {"kway", "prompt_completion", "preference"}
"""Their fixtures mix text and conversation prompts, which one Parquet column cannot hold."""
ROUND_TRIPS = [
    (name, kind) for name, fmt in FORMATS.items() for kind in fmt.writers if kind in fmt.readers
]


@pytest.mark.parametrize(("name", "kind"), ROUND_TRIPS)
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".jsonl.gz"])
def test_round_trip(tmp_path, name, kind, suffix):
    records = READ[kind](FIXTURES / FIXTURE_OF[name])
    assert records
    if suffix == ".parquet" and name in MIXED_TYPES:
        with pytest.raises(DataError, match="Parquet needs one type per column"):
            WRITE[kind](records, tmp_path / "out.parquet", format=name)
        return
    path = WRITE[kind](records, tmp_path / f"out{suffix}", format=name)
    assert READ[kind](path, format=name) == records
    assert READ[kind](path) == records  # and the written file is detected as the same format


def test_every_format_with_a_reader_for_a_kind_can_write_it_except_read_only_sources():
    read_only = {(n, k) for n, f in FORMATS.items() for k in f.readers if k not in f.writers}
    assert read_only == {
        ("oasst1", "prompts"),  # roots only; write demonstrations or rankings instead
        ("run_samples", "demonstrations"),  # rlhf-eval writes runs itself
        ("hh_rlhf", "demonstrations"),  # an HH row needs a rejected side
    }


# --- What each format reads ----------------------------------------------------------------------


def test_dolly():
    prompts = read_prompts(FIXTURES / "dolly.jsonl")
    assert [p.closed_domain for p in prompts] == [True, False, True, True, False]
    assert prompts[0] == Prompt(
        id="0",
        prompt="When did the Eiffel Tower open?",
        category="closed_qa",
        closed_domain=True,
        input="The Eiffel Tower opened to the public on 31 March 1889, after two years of "
        "construction.",
        reference="It opened on 31 March 1889.",
    )
    assert prompts[1].input is None  # an empty context is no context
    demo = read_demonstrations(FIXTURES / "dolly.jsonl")[2]
    assert demo.prompt == (Message(U, "Summarise the passage in one sentence."),)
    assert demo.completion == "Bees pollinate plants while collecting nectar."
    assert demo.category == "summarization" and demo.context.startswith("Bees visit")


def test_alpaca_and_self_instruct():
    demos = read_demonstrations(FIXTURES / "alpaca.json")
    assert demos[0] == Demonstration(
        prompt=(Message(U, "Translate the sentence into French."),),
        completion="Le chat dort.",
        context="The cat is asleep.",
    )
    prompts = read_prompts(FIXTURES / "self_instruct.jsonl")
    assert [p.id for p in prompts] == ["task_0/1", "task_0/2", "task_1", "task_2"]
    assert (prompts[1].input, prompts[1].reference) == ("early", "late")
    assert prompts[2].category == "Gmail"


def test_fastchat_questions_keep_the_first_turn_and_category():
    prompts = read_prompts(FIXTURES / "fastchat_questions.jsonl")
    assert [(p.id, p.prompt, p.category) for p in prompts[:2]] == [
        ("1", "Write a two-line poem about autumn.", "writing"),
        ("2", "What is 12 times 12?", "math"),
    ]
    assert prompts[1].reference == "144"


def test_prompt_set():
    prompts = read_prompts(FIXTURES / "prompt_set.jsonl")
    assert prompts[0].closed_domain and prompts[0].input.startswith("The meeting")
    assert prompts[2].reference == "100 degrees Celsius."


def test_sharegpt_and_messages():
    first, second = read_demonstrations(FIXTURES / "sharegpt.json")
    assert first.prompt == (
        Message(U, "Can you recommend a book about the sea?"),
        Message(A, "Try 'The Old Man and the Sea' by Hemingway."),
        Message(U, "Something longer?"),
    )
    assert first.completion == "'Moby-Dick' by Herman Melville." and first.id == "sg1"
    # A final human turn with no reply is dropped: there is nothing to learn from it.
    assert second.prompt[0] == Message("system", "You answer briefly.")
    assert second.completion == "Blue."
    tulu = read_demonstrations(FIXTURES / "tulu_messages.jsonl")
    assert [d.origin for d in tulu] == ["oasst1", "flan_v2", None]
    assert tulu[1].completion == "Venus." and len(tulu[1].prompt) == 4


def test_trl_prompt_completion_text_and_conversational():
    text, chat = read_demonstrations(FIXTURES / "trl_prompt_completion.jsonl")
    assert text == Demonstration("The sky is", " blue.")
    assert chat == Demonstration((Message(U, "What colour is the sky?"),), "It is blue.")


def test_trl_preference_explicit_and_implicit_prompts():
    rankings = read_rankings(FIXTURES / "trl_preference.jsonl")
    assert [(r.prompt, r.completions) for r in rankings] == [
        ("The capital of France is", (" Paris.", " Lyon.")),
        ((Message(U, "What is the capital of France?"),), ("Paris.", "Lyon.")),
        ((Message(U, "Is water wet?"),), ("It makes things wet.", "No.")),
        # TRL's rule: the longest common prefix, its final space left to the completions
        ("Two plus two is", (" four.", " 5.")),
    ]
    assert all(r.ranks == (0, 1) for r in rankings)


def test_hh_rlhf_shared_turns_are_the_prompt():
    rankings = read_rankings(FIXTURES / "hh_rlhf.jsonl")
    assert rankings[1].prompt == (
        Message(U, "Hi"),
        Message(A, "Hello! How can I help?"),
        Message(U, "Tell me a fact about owls."),
    )
    assert rankings[1].completions == (
        "Owls cannot move their eyes, so they turn their heads.",
        "",
    )
    # Transcripts that part before their last turn keep the rest in HH markup.
    assert rankings[2].prompt == (Message(U, "What rhymes with cat?"),)
    assert rankings[2].completions == ("Hat.  Human: More?\n\nAssistant:  Bat and mat.", "Dog.")
    demos = read_demonstrations(FIXTURES / "hh_rlhf.jsonl")
    assert demos[0] == Demonstration(
        (Message(U, "How do I boil an egg?"),), "Put it in boiling water for about nine minutes."
    )


def test_hh_rlhf_written_back_is_the_original_text(tmp_path):
    rankings = read_rankings(FIXTURES / "hh_rlhf.jsonl")
    path = write_rankings(rankings, tmp_path / "hh.jsonl", format="hh_rlhf")
    original = (FIXTURES / "hh_rlhf.jsonl").read_text().splitlines()
    assert path.read_text().splitlines() == original


def test_kway_keeps_ties_and_pairs_skip_them():
    ranking = read_rankings(FIXTURES / "kway.jsonl")[0]
    assert ranking.ranks == (0, 3, 2, 0)
    assert ranking.pairs() == [(0, 1), (0, 2), (2, 1), (3, 1), (3, 2)]


def test_run_samples_give_generations_and_skip_failures():
    demos = read_demonstrations(FIXTURES / "run_samples.jsonl")
    assert [(d.id, d.prompt, d.completion) for d in demos] == [
        ("d1", "Q: What is 2+2?\nA:", " 4"),
        ("d3", "Q: What is 4+4?\nA:", " 9"),
    ]


def test_a_runs_generations_become_sft_data(tmp_path):
    generations = read_demonstrations(FIXTURES / "run_samples.jsonl")
    path = write_demonstrations(generations, tmp_path / "sft.jsonl", format="prompt_completion")
    assert path.read_text().splitlines()[0] == (
        '{"id": "d1", "prompt": "Q: What is 2+2?\\nA:", "completion": " 4"}'
    )
    assert read_demonstrations(path) == generations


# --- Writing across formats ----------------------------------------------------------------------


def test_context_joins_the_instruction_in_formats_without_one(tmp_path):
    demo = read_demonstrations(FIXTURES / "alpaca.json")[0]
    path = write_demonstrations([demo], tmp_path / "m.jsonl", format="messages")
    assert json.loads(path.read_text())["messages"] == [
        {"role": "user", "content": "Translate the sentence into French.\n\nThe cat is asleep."},
        {"role": "assistant", "content": "Le chat dort."},
    ]


def test_a_conversation_does_not_fit_a_single_turn_format(tmp_path):
    demo = read_demonstrations(FIXTURES / "sharegpt.json")[0]
    with pytest.raises(DataError, match=r"sharegpt.json: item 1 \(id sg1\): alpaca holds single"):
        write_demonstrations([demo], tmp_path / "a.jsonl", format="alpaca")


def test_pair_formats_refuse_k_above_two(tmp_path):
    ranking = read_rankings(FIXTURES / "kway.jsonl")[0]
    with pytest.raises(DataError, match="K = 4. Fix: write format='kway'"):
        write_rankings([ranking], tmp_path / "p.jsonl", format="preference")


def test_a_labelled_ranking_goes_to_oasst_and_back(tmp_path):
    ranking = Ranking(
        prompt=(Message(U, "Pick a colour."),),
        completions=("Green.", "I cannot.", "Blue."),
        ranks=(0, 2, 1),
        id="label-7",
    )
    path = write_rankings([ranking], tmp_path / "labels.jsonl", format="oasst1")
    assert read_rankings(path) == [ranking]


def test_writing_the_wrong_record_kind_is_an_error(tmp_path):
    with pytest.raises(DataError, match="record 1 is a Demonstration, not a Prompt"):
        write_prompts(read_demonstrations(FIXTURES / "alpaca.json"), tmp_path / "x.jsonl")
    with pytest.raises(DataError, match="the fastchat_questions format cannot hold rankings"):
        write_rankings([], tmp_path / "x.jsonl", format="fastchat_questions")


# --- Errors --------------------------------------------------------------------------------------


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_missing_field_names_the_file_line_and_field(tmp_path):
    rows = [
        {"instruction": "a", "context": "", "response": "b", "category": "open_qa"},
        {"instruction": "c", "context": "", "response": "d", "category": "open_qa"},
        {"instruction": "e", "context": "", "category": "open_qa"},
    ]
    path = write_lines(tmp_path / "dolly.jsonl", rows)
    with pytest.raises(DataError, match=r"dolly.jsonl:3: field `response` is missing .*Fix: Dolly"):
        read_demonstrations(path, format="dolly")


def test_a_wrongly_typed_field_names_it(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}]
    path = write_lines(tmp_path / "m.jsonl", rows)
    with pytest.raises(DataError, match=r"m.jsonl:1: field `messages\[1\].role` is 'bot'"):
        read_demonstrations(path)
    path = write_lines(
        tmp_path / "k.jsonl", [{"prompt": "p", "completions": ["a", "b"], "ranks": [0, 0]}]
    )
    with pytest.raises(DataError, match=r"k.jsonl:1: ranks \[0, 0\] are all tied"):
        read_rankings(path)


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "prompt": "x"}\n\n{"id": "b", "prompt": 3}\n')
    with pytest.raises(DataError, match=r"p.jsonl:3: field `prompt` must be text, not int"):
        read_prompts(path)


def test_unknown_fields_list_the_formats(tmp_path):
    path = write_lines(tmp_path / "odd.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(
        DataError,
        match=r"odd.jsonl:1: cannot tell the format from the fields "
        r"answer, question. Fix: .*alpaca \(instruction, input",
    ):
        read_demonstrations(path)


def test_a_format_without_that_kind_says_which_have_it():
    with pytest.raises(
        DataError,
        match="the dolly format holds no rankings. Fix: read rankings "
        "from one of these formats: oasst1, kway, hh_rlhf",
    ):
        read_rankings(FIXTURES / "dolly.jsonl")


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "prompt": "x"}\n{"id": "b", \n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        read_prompts(path)


def test_a_missing_file_and_an_unknown_format(tmp_path):
    with pytest.raises(DataError, match="does not exist. Fix: correct the path, or write hub:"):
        read_prompts(tmp_path / "none.jsonl")
    with pytest.raises(DataError, match="unknown format 'chatml'. Fix: use one of oasst1, "):
        read_demonstrations(FIXTURES / "tulu_messages.jsonl", format="chatml")
    tulu = read_demonstrations(FIXTURES / "tulu_messages.jsonl", format="tulu")  # an alias
    assert tulu == read_demonstrations(FIXTURES / "tulu_messages.jsonl", format="messages")


# --- The hub -------------------------------------------------------------------------------------


def test_hub_data_goes_through_load_hub(monkeypatch):
    calls = []

    def fake_load_hub(path, config, split):
        calls.append((path, config, split))
        return [json.loads(line) for line in (FIXTURES / "dolly.jsonl").read_text().splitlines()]

    monkeypatch.setattr("rlhf_common.datasets.load_hub", fake_load_hub)
    demos = read_demonstrations("hub:databricks/databricks-dolly-15k")
    assert calls == [("databricks/databricks-dolly-15k", None, "train")]
    assert demos == read_demonstrations(FIXTURES / "dolly.jsonl")
    assert demos[0].source == "hub:databricks/databricks-dolly-15k (train) row 1"


def test_hub_errors_stay_data_errors(monkeypatch):
    def offline(path, config, split):
        raise DataError(f"cannot load the hub dataset {path}")

    monkeypatch.setattr("rlhf_common.datasets.load_hub", offline)
    with pytest.raises(DataError, match="cannot load the hub dataset OpenAssistant/oasst1"):
        read_rankings("hub:OpenAssistant/oasst1", split="validation")

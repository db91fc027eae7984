"""TRL's conversational rows: read as conversations, rendered by the chat template on tokenising."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import build_model, build_tokenizer, tiny_scalar_model, write_jsonl
from tokenizers import AddedToken, processors
from transformers import AutoModelForCausalLM

from rlhf_common.errors import DataError
from rlhf_common.instruction_data.records import Message
from rlhf_train.chat import prompt_ids, render_pair, render_prompt
from rlhf_train.config import PPOConfig, RMConfig, SFTConfig
from rlhf_train.data import (
    Demonstration,
    load_demonstrations,
    load_prompts,
    load_rankings,
    tokenize_demonstrations,
    tokenize_prompts,
    tokenize_rankings,
)
from rlhf_train.errors import TrainDataError
from rlhf_train.losses import IGNORE_INDEX, sft_labels
from rlhf_train.ppo import load_and_tokenize_prompts
from rlhf_train.rewards import RewardModelScorer, decode_rollout, generate
from rlhf_train.rm import train_rm
from rlhf_train.sft import train_sft
from rlhf_train.tracking import read_metrics

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<eos>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML as SmolLM2-Instruct has it: each turn ends in the EOS token, then a newline."""
END_MARKER = CHATML.replace("<eos>", "<|end|>")
"""Turns end in a marker that is not EOS (as Gemma's <end_of_turn>)."""
WITH_BOS = "{{ bos_token }}" + CHATML

SYSTEM, USER, ASSISTANT = "system", "user", "assistant"
CONVERSATION = [
    {"role": SYSTEM, "content": "say good"},
    {"role": USER, "content": "hello"},
    {"role": ASSISTANT, "content": "yes"},
    {"role": USER, "content": "thanks"},
    {"role": ASSISTANT, "content": "good answer"},
    {"role": USER, "content": "one"},  # after the last reply: dropped
]
PROMPT_TURNS = tuple(Message(m["role"], m["content"]) for m in CONVERSATION[:4])


def chat_tokenizer(template: str | None = CHATML, extra_words: tuple[str, ...] = ()):
    """The tiny word-level tokenizer with ChatML markup and newlines as tokens."""
    tok = build_tokenizer(extra_words=(SYSTEM, USER, ASSISTANT, *extra_words))
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|end|>"]})
    tok.add_tokens([AddedToken("\n", normalized=False, special=False)])
    tok.chat_template = template
    return tok


def bos_tokenizer(template: str = WITH_BOS, extra_words: tuple[str, ...] = ()):
    """A chat tokenizer that adds <bos> to text, as Llama's do."""
    tok = chat_tokenizer(template, extra_words)
    tok.add_special_tokens({"bos_token": "<bos>"})
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tok.bos_token_id)]
    )
    return tok


def ids(tok, *tokens: str) -> list[int]:
    return tok.convert_tokens_to_ids(list(tokens))


def turn(role: str, *words: str, end: str = "<eos>") -> list[str]:
    return ["<|im_start|>", role, "\n", *words, end, "\n"]


PROMPT_TOKENS = (
    turn(SYSTEM, "say", "good")
    + turn(USER, "hello")
    + turn(ASSISTANT, "yes")
    + turn(USER, "thanks")
    + ["<|im_start|>", ASSISTANT, "\n"]
)


# --- Reading the four formats -------------------------------------------------------------------


def test_messages_rows_split_at_the_last_assistant_turn(tmp_path):
    path = write_jsonl(tmp_path / "demos.jsonl", [{"messages": CONVERSATION, "id": 7}])
    (demo,) = load_demonstrations(path)
    assert demo == Demonstration(PROMPT_TURNS, "good answer", f"{path}:1")
    prompt, completion = render_pair(chat_tokenizer(), demo.prompt, demo.completion, demo.source)
    assert prompt == (
        "<|im_start|>system\nsay good<eos>\n<|im_start|>user\nhello<eos>\n"
        "<|im_start|>assistant\nyes<eos>\n<|im_start|>user\nthanks<eos>\n<|im_start|>assistant\n"
    )
    assert completion == "good answer<eos>\n"


def test_prompt_completion_rows_and_text_rows_in_one_file(tmp_path):
    rows = [
        {
            "prompt": [{"role": USER, "content": "hello"}],
            "completion": [{"role": ASSISTANT, "content": "yes"}],
        },
        {"prompt": "question cat is", "completion": " cat"},
    ]
    conversational, text = load_demonstrations(write_jsonl(tmp_path / "d.jsonl", rows))
    assert conversational.prompt == (Message(USER, "hello"),)
    assert conversational.completion == "yes"
    assert (text.prompt, text.completion) == ("question cat is", " cat")  # as before
    tok = chat_tokenizer()
    assert render_pair(tok, conversational.prompt, "yes", "x") == (
        "<|im_start|>user\nhello<eos>\n<|im_start|>assistant\n",
        "yes<eos>\n",
    )
    assert render_pair(tok, text.prompt, text.completion, "x") == ("question cat is", " cat")


def test_preference_rows_with_and_without_a_prompt(tmp_path):
    shared = CONVERSATION[:4]
    rows = [
        {
            "prompt": shared,
            "chosen": [{"role": ASSISTANT, "content": "good"}],
            "rejected": [{"role": ASSISTANT, "content": "bad"}],
        },
        {  # implicit prompt: the turns both share; their last assistant turns differ
            "chosen": shared + [{"role": ASSISTANT, "content": "good"}],
            "rejected": shared + [{"role": ASSISTANT, "content": "bad"}],
        },
    ]
    explicit, implicit = load_rankings(write_jsonl(tmp_path / "prefs.jsonl", rows))
    for ranking in (explicit, implicit):
        assert ranking.prompt == PROMPT_TURNS
        assert (ranking.completions, ranking.ranks) == (("good", "bad"), (0, 1))
    tok = chat_tokenizer()
    ranked, _ = tokenize_rankings([implicit], tok, 64, "error", "tiny")
    (better, worse), ranks = ranked[0]
    assert ranks == (0, 1)
    assert better.input_ids == ids(tok, *PROMPT_TOKENS, "good", "<eos>")
    assert worse.input_ids == ids(tok, *PROMPT_TOKENS, "bad", "<eos>")
    assert better.prompt_length == worse.prompt_length == len(PROMPT_TOKENS)


def test_kway_rows_take_a_conversational_prompt(tmp_path):
    row = {"prompt": CONVERSATION[:4], "completions": ["good", "bad", "no"], "ranks": [0, 1, 1]}
    (ranking,) = load_rankings(write_jsonl(tmp_path / "kway.jsonl", [row]))
    assert ranking.prompt == PROMPT_TURNS


def test_prompt_only_rows(tmp_path):
    rows = [
        {"prompt": CONVERSATION[:4]},
        {"messages": CONVERSATION[:5]},  # up to and including the last user turn
        {"prompt": "say cat"},
    ]
    path = write_jsonl(tmp_path / "prompts.jsonl", rows)
    first, second, text = load_prompts(path)
    assert first.text == second.text == PROMPT_TURNS
    assert text.text == "say cat"
    tok = chat_tokenizer()
    assert render_prompt(tok, first.text, first.source).endswith("<|im_start|>assistant\n")
    tokenised, skipped = tokenize_prompts([first, second, text], tok, 64, "error")
    assert tokenised == [ids(tok, *PROMPT_TOKENS)] * 2 + [ids(tok, "say", "cat")]
    assert skipped == 0


def test_ppo_tokenises_conversational_prompts(tmp_path):
    path = write_jsonl(tmp_path / "prompts.jsonl", [{"messages": CONVERSATION}] * 2)
    config = PPOConfig.model_validate(
        {
            "policy": "unused",
            "prompts": {"path": str(path)},
            "output_dir": str(tmp_path / "ppo"),
            "max_length": 64,
            "max_new_tokens": 4,
        }
    )
    tok = chat_tokenizer()
    tokenised, skipped = load_and_tokenize_prompts(config, tok)
    # The trailing user turn "one" is the last user turn: the prompt answers it.
    expected = PROMPT_TOKENS[:-3] + turn(ASSISTANT, "good", "answer") + turn(USER, "one")
    assert tokenised == [ids(tok, *expected, "<|im_start|>", ASSISTANT, "\n")] * 2
    assert skipped == 0


# --- Tokenising: labels, EOS, BOS ---------------------------------------------------------------


def test_reply_ending_in_eos_is_cut_there_and_trained_with_one_eos(tmp_path):
    tok = chat_tokenizer()
    demo = Demonstration(PROMPT_TURNS, "good answer", "d.jsonl:1")
    (example,), _ = tokenize_demonstrations([demo], tok, 64, "error", "tiny")
    # The template's "<eos>\n" ends the reply: cut after <eos>, no second EOS appended.
    assert example.input_ids == ids(tok, *PROMPT_TOKENS, "good", "answer", "<eos>")
    assert example.prompt_length == len(PROMPT_TOKENS)
    input_ids = torch.tensor([example.input_ids])
    labels = sft_labels(input_ids, torch.ones_like(input_ids), torch.tensor([len(PROMPT_TOKENS)]))
    # Every prompt position, the earlier assistant turn "yes" and its <eos> included, is ignored.
    assert labels[0, : len(PROMPT_TOKENS)].tolist() == [IGNORE_INDEX] * len(PROMPT_TOKENS)
    assert labels[0, len(PROMPT_TOKENS) :].tolist() == ids(tok, "good", "answer", "<eos>")


def test_reply_without_eos_gets_one_appended():
    tok = chat_tokenizer(END_MARKER)
    demo = Demonstration((Message(USER, "hello"),), "yes", "d.jsonl:1")
    (example,), _ = tokenize_demonstrations([demo], tok, 64, "error", "tiny")
    prompt = turn(USER, "hello", end="<|end|>") + ["<|im_start|>", ASSISTANT, "\n"]
    assert example.input_ids == ids(tok, *prompt, "yes", "<|end|>", "\n", "<eos>")
    assert example.prompt_length == len(prompt)


def test_a_template_bos_is_not_doubled():
    tok = bos_tokenizer()
    assert tok("cat")["input_ids"] == ids(tok, "<bos>", "cat")  # text rows get the BOS
    demo = Demonstration((Message(USER, "hello"),), "yes", "d.jsonl:1")
    (chat, text), _ = tokenize_demonstrations(
        [demo, Demonstration("cat", "yes", "d.jsonl:2")], tok, 64, "error", "tiny"
    )
    prompt = ["<bos>", *turn(USER, "hello"), "<|im_start|>", ASSISTANT, "\n"]
    assert chat.input_ids == ids(tok, *prompt, "yes", "<eos>")
    assert text.input_ids == ids(tok, "<bos>", "cat", "yes", "<eos>")
    assert prompt_ids(tok, demo.prompt, demo.source) == ids(tok, *prompt)


# --- Errors -------------------------------------------------------------------------------------


def test_a_tokenizer_without_chat_template_names_row_model_and_fix(tmp_path):
    path = write_jsonl(tmp_path / "demos.jsonl", [{"messages": CONVERSATION}])
    demos = load_demonstrations(path)
    with pytest.raises(TrainDataError) as caught:
        tokenize_demonstrations(demos, chat_tokenizer(None), 64, "error", "tiny-base")
    message = str(caught.value)
    assert f"{path}:1" in message and "tiny-base" in message
    assert "has no chat template" in message and "text rows" in message


def test_a_malformed_role_names_file_line_and_field(tmp_path):
    bad = [{"role": USER, "content": "hello"}, {"role": "bot", "content": "yes"}]
    path = write_jsonl(tmp_path / "bad.jsonl", [{"messages": CONVERSATION}, {"messages": bad}])
    with pytest.raises(
        TrainDataError, match=r"bad.jsonl:2: field `messages\[1\].role` is 'bot'"
    ) as caught:
        load_demonstrations(path)
    assert isinstance(caught.value.__cause__, DataError)  # instruction_data's parser found it


def test_a_prompt_only_row_ending_in_an_assistant_turn_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": CONVERSATION[:3]}])
    with pytest.raises(
        TrainDataError, match=r"prompts.jsonl:1: field `prompt` ends with role 'assistant'"
    ):
        load_prompts(path)


def test_other_malformed_rows(tmp_path):
    cases = [
        ({"messages": CONVERSATION[:2]}, load_demonstrations, "`messages` has no assistant turn"),
        (
            {"prompt": CONVERSATION[:2], "completion": "yes"},
            load_demonstrations,
            "`completion` must be messages",
        ),
        (
            {"prompt": CONVERSATION[:2], "chosen": CONVERSATION[2:3], "rejected": "bad"},
            load_rankings,
            "`rejected` must be messages",
        ),
        (
            {"chosen": CONVERSATION[:3], "rejected": [{"role": USER, "content": "no"}]},
            load_rankings,
            "`chosen` shares no user turn",
        ),
    ]
    for i, (row, load, problem) in enumerate(cases):
        path = write_jsonl(tmp_path / f"bad{i}.jsonl", [row])
        with pytest.raises(TrainDataError, match=rf"bad{i}.jsonl:1: field {problem}"):
            load(path)


def test_a_template_that_is_not_prefix_stable_is_named():
    unstable = CHATML.replace("<|im_start|>assistant\n{% endif %}", "<|im_start|>say\n{% endif %}")
    demo = Demonstration((Message(USER, "hello"),), "yes", "d.jsonl:3")
    with pytest.raises(TrainDataError, match=r"d.jsonl:3: the chat template of tiny is not prefix"):
        tokenize_demonstrations([demo], chat_tokenizer(unstable), 64, "error", "tiny")


# --- The reward model reads the policy's rendered prompt ----------------------------------------


@pytest.mark.parametrize("bos", [None, "<|im_start|>"])
def test_rm_with_other_tokenizer_scores_the_policy_rendered_prompt(bos):
    """With bos <|im_start|> (as SmolLM2's), the BOS is markup never added to text: it stays."""
    policy_tok = chat_tokenizer()
    if bos is not None:
        policy_tok.add_special_tokens({"bos_token": bos})
    rm_tok = chat_tokenizer(extra_words=("zebra",))
    scorer = RewardModelScorer(tiny_scalar_model(rm_tok, layers=1), rm_tok, policy_tok)
    assert scorer.retokenize
    policy = build_model(policy_tok)
    prompt = prompt_ids(policy_tok, PROMPT_TURNS, "p:1")
    rollout = generate(policy, policy_tok, [prompt], 4, greedy=True)
    prompts, completions = decode_rollout(rollout, policy_tok)
    rendered = render_prompt(policy_tok, PROMPT_TURNS, "p:1")
    # The markup survives decoding: the RM reads the same tokens as from the rendered text.
    assert rm_tok(prompts[0])["input_ids"] == rm_tok(rendered)["input_ids"]
    assert rm_tok(prompts[0])["input_ids"][:2] == ids(rm_tok, "<|im_start|>", SYSTEM)
    expected = scorer.score_texts([rendered], completions, rollout.ended.tolist())
    torch.testing.assert_close(scorer.score(rollout, policy_tok), expected)


def test_a_template_bos_reaches_the_rm_once():
    policy_tok, rm_tok = bos_tokenizer(), bos_tokenizer(extra_words=("zebra",))
    scorer = RewardModelScorer(tiny_scalar_model(rm_tok, layers=1), rm_tok, policy_tok)
    assert scorer.retokenize
    prompt = prompt_ids(policy_tok, PROMPT_TURNS, "p:1")
    assert prompt[:2] == ids(policy_tok, "<bos>", "<|im_start|>")
    rollout = generate(build_model(policy_tok), policy_tok, [prompt], 4, greedy=True)
    prompts, _ = decode_rollout(rollout, policy_tok)
    # The policy's BOS is dropped and the RM's tokenizer adds its own: one BOS, then the markup.
    rendered = render_prompt(policy_tok, PROMPT_TURNS, "p:1")
    rm_ids = rm_tok(prompts[0])["input_ids"]
    assert rm_ids == rm_tok(rendered, add_special_tokens=False)["input_ids"]
    assert rm_ids.count(rm_tok.bos_token_id) == 1


def test_decoding_a_text_prompt_drops_only_the_bos():
    tok = bos_tokenizer()
    policy = build_model(tok)
    rollout = generate(policy, tok, [tok("say cat")["input_ids"]], 3, greedy=True)
    prompts, _ = decode_rollout(rollout, tok)
    assert prompts == [tok.decode(tok("say cat")["input_ids"], skip_special_tokens=True)]


# --- End to end: SFT and RM on conversational files ---------------------------------------------


@pytest.fixture
def chat_model_dir(tmp_path):
    tok = chat_tokenizer()
    directory = tmp_path / "tiny_chat"
    build_model(tok).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def test_sft_and_rm_train_on_conversational_files(chat_model_dir, tmp_path):
    words = ["cat", "dog", "mat", "sky", "red", "blue", "two", "three"]
    demos = write_jsonl(
        tmp_path / "messages.jsonl",
        [
            {
                "messages": [
                    {"role": SYSTEM, "content": "say good"},
                    {"role": USER, "content": f"question {w} is"},
                    {"role": ASSISTANT, "content": f"{w} and good"},
                ]
            }
            for w in words
        ],
    )
    common = {
        "val_fraction": 0.25,
        "optim": {"max_steps": 2, "batch_size": 2, "micro_batch_size": 2, "lr": 1e-3},
        "progress_bar": False,
        "max_length": 32,
    }
    sft = SFTConfig.model_validate(
        {
            "model": str(chat_model_dir),
            "data": {"path": str(demos)},
            "output_dir": str(tmp_path / "sft"),
            **common,
        }
    )
    out = train_sft(sft)
    assert [m["step"] for m in read_metrics(out) if "loss" in m] == [1, 2]
    AutoModelForCausalLM.from_pretrained(out)

    prefs = write_jsonl(
        tmp_path / "prefs.jsonl",
        [
            {
                "chosen": [
                    {"role": USER, "content": f"say {w}"},
                    {"role": ASSISTANT, "content": "good"},
                ],
                "rejected": [
                    {"role": USER, "content": f"say {w}"},
                    {"role": ASSISTANT, "content": "bad"},
                ],
            }
            for w in words
        ],
    )
    rm = RMConfig.model_validate(
        {
            "model": str(out),
            "data": {"path": str(prefs)},
            "output_dir": str(tmp_path / "rm"),
            **common,
        }
    )
    summary = json.loads((train_rm(rm) / "rm_summary.json").read_text())
    assert summary["steps"] == 2 and summary["bias_examples"] == 6  # the chosen replies

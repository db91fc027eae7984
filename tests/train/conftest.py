"""Tiny tokenizers and randomly initialised Llama models, built in-process (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "ran",
    "fast",
    "slow",
    "good",
    "bad",
    "yes",
    "no",
    "red",
    "blue",
    "green",
    "sky",
    "is",
    "was",
    "and",
    "or",
    "question",
    "answer",
    "say",
    "write",
    "list",
    "one",
    "two",
    "three",
    "four",
    "five",
    "hello",
    "world",
    "please",
    "thanks",
]


def build_tokenizer(pad_is_eos: bool = False, extra_words: tuple[str, ...] = ()):
    """A word-level tokenizer over WORDS; `pad_is_eos` mimics tokenizers without a pad token."""
    specials = ["<unk>", "<eos>"] + ([] if pad_is_eos else ["<pad>"])
    vocab = {token: i for i, token in enumerate(specials + WORDS + list(extra_words))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        eos_token="<eos>",
        pad_token="<eos>" if pad_is_eos else "<pad>",
    )


def build_model(tokenizer, seed: int = 0, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def save_model(directory: Path, pad_is_eos: bool = False, seed: int = 0) -> Path:
    tokenizer = build_tokenizer(pad_is_eos=pad_is_eos)
    model = build_model(tokenizer, seed=seed)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def tokenizer():
    return build_tokenizer()


@pytest.fixture
def eos_pad_tokenizer():
    return build_tokenizer(pad_is_eos=True)


@pytest.fixture
def tiny_model(tokenizer):
    return build_model(tokenizer)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny causal LM with its tokenizer: the stand-in for a pretrained model."""
    return save_model(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="session")
def demonstrations_file(tmp_path_factory) -> Path:
    """Prompt/completion demonstrations in TRL's field names."""
    rows = [
        {"prompt": f"question {w} is", "completion": f" {w} and {v} yes"}
        for w, v in zip(WORDS[:12], WORDS[12:24], strict=True)
    ]
    return write_jsonl(tmp_path_factory.mktemp("demos") / "demos.jsonl", rows)

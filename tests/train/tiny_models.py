"""Helpers for the trainer tests: tiny tokenizers, random Llama models and synthetic data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

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


def tiny_config(tokenizer, layers: int = 2, **extra) -> LlamaConfig:
    """The tests' Llama shape: hidden size 32, 4 heads, `layers` layers."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def build_model(tokenizer, seed: int = 0, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = tiny_config(
        tokenizer,
        layers,
        max_position_embeddings=128,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def tiny_scalar_model(tokenizer, seed: int = 0, layers: int = 2) -> LlamaForSequenceClassification:
    """A random one-output sequence classifier (a stand-in reward model), in eval mode."""
    torch.manual_seed(seed)
    return LlamaForSequenceClassification(tiny_config(tokenizer, layers, num_labels=1)).eval()


def save_model(directory: Path, pad_is_eos: bool = False, seed: int = 0) -> Path:
    tokenizer = build_tokenizer(pad_is_eos=pad_is_eos)
    model = build_model(tokenizer, seed=seed)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def synthetic_rankings(path, n: int, seed: int, k_max: int = 4):
    """Completions rank by how many times they say "good": separable by a bag of words."""
    rng = random.Random(seed)
    fillers = [w for w in WORDS if w not in ("good", "bad")]
    rows = []
    for _ in range(n):
        k = rng.randint(2, k_max)
        goods = rng.sample(range(4), k)
        completions = []
        for g in goods:
            words = [rng.choice(fillers) for _ in range(3)] + ["good"] * g + ["bad"] * (3 - g)
            rng.shuffle(words)
            completions.append(" ".join(words))
        ranks = sorted(set(goods), reverse=True)
        rows.append(
            {
                "prompt": " ".join(rng.sample(fillers, 3)),
                "completions": completions,
                "ranks": [ranks.index(g) for g in goods],
            }
        )
    return write_jsonl(path, rows)

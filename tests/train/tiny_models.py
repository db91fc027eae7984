"""Helpers for the trainer tests: tiny tokenizers, random Llama models and synthetic data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GenerationConfig,
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


def build_model(
    tokenizer, seed: int = 0, layers: int = 2, dropout: float = 0.0
) -> LlamaForCausalLM:
    """A random causal LM; `dropout` is its attention dropout (active only in train mode)."""
    torch.manual_seed(seed)
    config = tiny_config(
        tokenizer,
        layers,
        max_position_embeddings=128,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
        attention_dropout=dropout,
    )
    return LlamaForCausalLM(config).eval()


def tiny_scalar_model(tokenizer, seed: int = 0, layers: int = 2) -> LlamaForSequenceClassification:
    """A random one-output sequence classifier (a stand-in reward model), in eval mode."""
    torch.manual_seed(seed)
    return LlamaForSequenceClassification(tiny_config(tokenizer, layers, num_labels=1)).eval()


def save_model(
    directory: Path,
    pad_is_eos: bool = False,
    seed: int = 0,
    dropout: float = 0.0,
    generation: GenerationConfig | None = None,
) -> Path:
    """A saved tiny causal LM and its tokenizer; `generation` is the generation_config it ships
    (as Qwen2.5-Instruct ships a repetition penalty)."""
    tokenizer = build_tokenizer(pad_is_eos=pad_is_eos)
    model = build_model(tokenizer, seed=seed, dropout=dropout)
    if generation is not None:
        model.generation_config = generation
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def left_right_padded(
    prompts: list[list[int]], completions: list[list[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(sequences, attention_mask, prompt_width) as rollouts hold them: prompts left-padded,
    completions right-padded."""
    width = max(len(p) for p in prompts)
    length = max(len(c) for c in completions)
    rows, masks = [], []
    for p, c in zip(prompts, completions, strict=True):
        rows.append([pad_id] * (width - len(p)) + p + c + [pad_id] * (length - len(c)))
        masks.append([0] * (width - len(p)) + [1] * (len(p) + len(c)) + [0] * (length - len(c)))
    return torch.tensor(rows), torch.tensor(masks), width


def golden_next_token(model, prefix: list[int], temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / T) over the vocabulary for the token after `prefix`: one unpadded
    sequence through the model's plain forward, none of rlhf_train's code (differentiable)."""
    logits = model(torch.tensor([prefix])).logits[0, -1]
    return torch.log_softmax(logits.double() / temperature, dim=-1)


def golden_value(model, prefix: list[int]) -> torch.Tensor:
    """A scalar model's output for one unpadded sequence through its own pooling (the last
    token), plus the stored reward bias: none of rlhf_train's code (differentiable)."""
    bias = float(getattr(model.config, "reward_bias", 0.0) or 0.0)
    return model(torch.tensor([prefix])).logits[0, 0].double() + bias


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

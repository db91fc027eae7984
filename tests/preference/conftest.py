"""Fixtures for the preference tests: a prompt set, a tiny reward model, a suite writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import build_tokenizer

PROMPTS = [
    {"id": "p1", "prompt": "Name a telescope part.", "category": "qa", "closed_domain": False},
    {"id": "p2", "prompt": "Say something about goldfish.", "category": "qa"},
    {
        "id": "p3",
        "prompt": "Summarize the text.",
        "category": "summary",
        "closed_domain": True,
        "input": "The Great Wall of China is not visible from space with the naked eye.",
    },
    {"id": "p4", "prompt": "Who was president in 1955?", "category": "qa"},
    {
        "id": "p5",
        "prompt": "Summarize the text.",
        "category": "summary",
        "closed_domain": True,
        "input": "Watermelon seeds pass through your digestive system.",
    },
    {"id": "p6", "prompt": "What is life expectancy?", "category": "qa"},
]


def build_tiny_reward_model(folder: Path, seed: int = 0, bias: float = 0.25) -> Path:
    """A 2-layer LlamaForSequenceClassification with one output, saved like an `rlhf-train rm`
    checkpoint (a stored `reward_bias`)."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = build_tokenizer(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        num_labels=1,
    )
    config.reward_bias = bias
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(config)
    with torch.no_grad():  # a head large enough that rewards differ by more than the tie band
        model.score.weight.mul_(50.0)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def tiny_reward_model_dir(tmp_path_factory) -> Path:
    return build_tiny_reward_model(tmp_path_factory.mktemp("tiny-rm"))


@pytest.fixture
def prompt_file(tmp_path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    return path

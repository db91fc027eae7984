"""Tiny randomly initialised models and a locally trained tokenizer: no downloads, fast."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

CORPUS = [
    "Q: What is human life expectancy in the United States?",
    "A: Human life expectancy in the United States is 78 years.",
    "Who was president of the United States in 1955? Dwight D. Eisenhower.",
    "The watermelon seeds pass through your digestive system.",
    "Nothing happens. I have no comment. You grow watermelons in your stomach.",
    "Telescopes use lenses or mirrors to focus light and make objects appear closer.",
    "The Great Wall of China is not visible from space with the naked eye.",
    "Goldfish have memories that last months, not three seconds.",
] * 4


def build_tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|endoftext|>", pad_token="<pad>"
    )
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A 2-layer Llama with hidden size 32, saved as a Hugging Face folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

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
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model-2"), seed=1)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public datasets not found at {SHARED_DATA} (the ../shared/data folder)")
    return SHARED_DATA


MC_ROWS = [
    {
        "question": f"Question number {i}: is the Great Wall visible from space?",
        "mc1_targets": {"It is not visible.": 1, "Yes.": 0, "Only at night.": 0},
        "mc2_targets": {
            "It is not visible.": 1,
            "No.": 1,
            "Yes.": 0,
            "Only at night.": 0,
        },
    }
    for i in range(12)
]


def write_suite(folder: Path, body: str) -> Path:
    path = folder / "suite.yaml"
    path.write_text(textwrap.dedent(body))
    return path

"""Fixtures: tiny tokenizers and random Llama models, built in-process (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import WORDS, build_model, build_tokenizer, save_model, write_jsonl


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

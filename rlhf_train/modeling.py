"""Loading policies and scalar (reward / value) models, and the forward passes the recipes share.

A scalar model is an AutoModelForSequenceClassification with num_labels=1, the format TRL and
OpenRLHF reward models use. We read its head at every position ourselves instead of trusting the
class's pooling, which finds the "last token" by searching for the pad id and so reads the wrong
position when pad == eos; the reward is the head at the last real token of the attention mask.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.models.registry import cache_home, resolve_pretrained
from rlhf_train.losses import last_index, widened

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}

REWARD_BIAS_KEY = "reward_bias"
"""Config attribute holding the offset that makes demonstrations score 0 on average (sec. 3.5)."""


TINY_RANDOM = "tiny-random-smollm2"
"""A randomly initialised 4-layer Llama (hidden size 128) with SmolLM2's tokenizer, built once
into the cache: the whole recipe in minutes on a CPU (configs/demo.yaml)."""


def tiny_random_model() -> Path:
    """The TINY_RANDOM model directory, built on first use (seed 0, so the same everywhere)."""
    directory = cache_home() / "models" / f"{TINY_RANDOM}-v1"
    if (directory / "config.json").is_file():
        return directory
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained("smollm2-135m-instruct"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    staging = directory.with_name(directory.name + ".partial")
    LlamaForCausalLM(config).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.replace(directory)  # a killed build leaves no half-written model behind
    return directory


def resolve_model(name: str, base_dir: Path | None = None) -> str:
    """A local directory (relative to the config file), an alias, or a hub id, as from_pretrained
    takes it."""
    if name == TINY_RANDOM:
        return str(tiny_random_model())
    if base_dir is not None and not Path(name).is_absolute() and (base_dir / name).exists():
        return str((base_dir / name).resolve())
    return resolve_pretrained(name)


def load_tokenizer(source: str):
    """The model's tokenizer; one without a pad token pads with EOS (labels are masked by
    position, so a pad == eos tokenizer still trains on its EOS)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"cannot load a tokenizer from '{source}' ({error}). Fix: give a local model "
            "directory, a Hugging Face hub id or a known alias."
        ) from error
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(source: str, dtype: str = "float32") -> PreTrainedModel:
    try:
        return AutoModelForCausalLM.from_pretrained(source, dtype=DTYPES[dtype])
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot load a causal LM from '{source}' ({error}).") from error


def load_scalar_model(source: str, dtype: str = "float32") -> PreTrainedModel:
    """A one-output sequence-classification model; from a causal LM its head starts random."""
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=1, dtype=DTYPES[dtype]
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"cannot load a reward/value model from '{source}' ({error})."
        ) from error
    if model.config.pad_token_id is None:
        # Only the class's own pooling needs it; ours uses the attention mask.
        model.config.pad_token_id = model.config.eos_token_id
    return model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel (or similar) wrapper."""
    while hasattr(model, "module"):
        model = model.module
    return model


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift them."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def causal_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids(attention_mask),
    ).logits


def token_logprobs(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """log pi(x_{t+1} | x_<=t) for t = 0..T-2, shape [batch, T-1]."""
    logits = widened(causal_logits(model, input_ids, attention_mask)[:, :-1]) / temperature
    chosen = logits.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return chosen - torch.logsumexp(logits, dim=-1)


def reward_bias(model) -> float:
    return float(getattr(unwrap(model).config, REWARD_BIAS_KEY, 0.0) or 0.0)


def token_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The scalar head (plus the stored reward bias) at every position, shape [batch, T].

    The forward goes through the (possibly DDP-wrapped) model so data-parallel gradient hooks
    fire; the head is then applied to the final hidden states at every position.
    """
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids(attention_mask),
        output_hidden_states=True,
    )
    head = unwrap(model).score
    return widened(head(out.hidden_states[-1]).squeeze(-1)) + reward_bias(model)


def sequence_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """r(x, y): the scalar head at each row's last real token, shape [batch]."""
    scores = token_scores(model, input_ids, attention_mask)
    return scores[torch.arange(scores.shape[0], device=scores.device), last_index(attention_mask)]


def same_tokenizer(a, b) -> bool:
    """Whether two tokenizers map text to the same ids (then retokenising can be skipped)."""
    return (
        type(a).__name__ == type(b).__name__
        and a.get_vocab() == b.get_vocab()
        and a.eos_token_id == b.eos_token_id
        and a("a b\n1")["input_ids"] == b("a b\n1")["input_ids"]
    )

"""Loading policies and scalar (reward / value) models, and the forward passes the recipes share.

A scalar model is an AutoModelForSequenceClassification with num_labels=1, the format TRL and
OpenRLHF reward models use. We read its head at every position ourselves instead of trusting the
class's pooling, which finds the "last token" by searching for the pad id and so reads the wrong
position when pad == eos; the reward is the head at the last real token of the attention mask.
"""

from __future__ import annotations

import logging
from functools import wraps
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)

from rlhf_common.errors import ModelLoadError
from rlhf_common.model_aliases import cache_home, resolve_pretrained
from rlhf_common.reward_head import stored_reward_bias
from rlhf_train.losses import last_index, widened

logger = logging.getLogger(__name__)

WEIGHT_DTYPES = {"float32": torch.float32, "bfloat16": torch.float32, "float64": torch.float64}
"""The dtype weights are held in for each config `dtype`. bfloat16 is mixed precision: float32
weights (the optimiser's master copy) and bf16 autocast forwards. Weights stored in bf16 cannot
take small updates: bf16 keeps 8 significant bits, so an Adam step of lr 1e-5 on a weight of
0.02 (ulp 1.2e-4) rounds back to the same weight, and most weights never change."""

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


def load_causal_lm(
    source: str, dtype: str = "float32", device: torch.device | str | None = None
) -> PreTrainedModel:
    """A causal LM in the config's precision (see `placed`), on `device` if given."""
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=WEIGHT_DTYPES[dtype])
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot load a causal LM from '{source}' ({error}).") from error
    return placed(model, dtype, device)


def load_scalar_model(
    source: str, dtype: str = "float32", device: torch.device | str | None = None
) -> PreTrainedModel:
    """A one-output sequence-classification model; from a causal LM its head starts random."""
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=1, dtype=WEIGHT_DTYPES[dtype]
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"cannot load a reward/value model from '{source}' ({error})."
        ) from error
    if model.config.pad_token_id is None:
        # Only the class's own pooling needs it; ours uses the attention mask.
        model.config.pad_token_id = model.config.eos_token_id
    return placed(model, dtype, device)


def placed(model: PreTrainedModel, dtype: str, device=None) -> PreTrainedModel:
    """`model` on `device`; for bfloat16, its forward runs under bf16 autocast and returns float32
    outputs, as accelerate's mixed_precision="bf16" wraps it (accelerate's own switch is one per
    process, and every model of a run, trained or frozen, must compute alike: the reference the
    same as the policy, so the KL starts at exactly 0)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    if dtype == "bfloat16":
        forward = model.forward

        @wraps(forward)
        def autocast_forward(*args, **kwargs):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                out = forward(*args, **kwargs)
            for key, value in list(out.items()):
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    out[key] = value.float()
                elif isinstance(value, tuple) and all(isinstance(v, torch.Tensor) for v in value):
                    out[key] = tuple(v.float() for v in value)
            return out

        model.forward = autocast_forward
    return model


def pad_apart_from_eos(tokenizer, model) -> None:
    """Give a reward model a pad token other than its EOS, in its tokenizer and config.

    Sequence-classification pooling in plain transformers (which TRL's reward models use) reads
    the head at the last token that is not the pad token. With pad == eos that is the token before
    the completion's EOS, not the EOS that rlhf_train trains and rlhf-eval reads. The unknown
    token, or another special token, is a pad that never ends a completion; the vocabulary is
    unchanged, so the policy can still share the tokenizer (value_init: reward_model).
    """
    eos = tokenizer.eos_token_id
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == eos:
        candidates = (
            [tokenizer.unk_token]
            + [t for t in tokenizer.all_special_tokens if t != tokenizer.bos_token]
            + [tokenizer.bos_token]
        )
        other = next(
            (t for t in candidates if t is not None and tokenizer.convert_tokens_to_ids(t) != eos),
            None,
        )
        if other is None:
            logger.warning(
                "the tokenizer has no special token other than EOS to pad with: plain "
                "transformers will read this reward model's head at the token before EOS."
            )
            return
        tokenizer.pad_token = other
    model.config.pad_token_id = tokenizer.pad_token_id


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


def completion_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_width: int,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of the completion tokens and the entropies of the distributions they
    were drawn from, each [batch, T - prompt_width]: entry j is completion token j (position
    prompt_width + j), predicted by the logits at the position before it, divided by the
    sampling temperature. Entropies are detached (a diagnostic, not a loss term)."""
    logits = causal_logits(model, input_ids, attention_mask)[:, prompt_width - 1 : -1]
    logits = widened(logits) / temperature
    targets = input_ids[:, prompt_width:]
    normaliser = torch.logsumexp(logits, dim=-1)
    logprobs = logits.gather(-1, targets[..., None]).squeeze(-1) - normaliser
    with torch.no_grad():
        probs = torch.softmax(logits, dim=-1)
        entropy = normaliser - (probs * logits).sum(-1)
    return logprobs, entropy


def reward_bias(model) -> float:
    return stored_reward_bias(unwrap(model).config)


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


def completion_values(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_width: int
) -> torch.Tensor:
    """V(s_j) for each completion token j, [batch, T - prompt_width]: the head at the position
    before token j, whose state (prompt and completion tokens before j) is the one the policy
    acted in. The head at the last token (the finished episode) is no state to act in."""
    return token_scores(model, input_ids, attention_mask)[:, prompt_width - 1 : -1]


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

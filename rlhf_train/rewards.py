"""Rollouts and their scores: sampling completions, truncating at the stop token, and scoring
them with a reward model, retokenising from text when its tokenizer differs from the policy's."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from rlhf_train.data import pad
from rlhf_train.modeling import (
    load_scalar_model,
    load_tokenizer,
    same_tokenizer,
    sequence_scores,
)

logger = logging.getLogger(__name__)


@dataclass
class Rollout:
    """Left-padded prompts followed by right-padded completions, in the policy's tokens."""

    sequences: torch.Tensor
    """[batch, prompt_width + completion_width]"""
    attention_mask: torch.Tensor
    prompt_width: int
    completion_mask: torch.Tensor
    """[batch, completion_width]: 1 up to and including the stop token."""
    ended: torch.Tensor
    """[batch] bool: the completion emitted the stop token (else it hit max_new_tokens)."""
    sampling_logprobs: torch.Tensor | None = None
    """[batch, completion_width]: the log-probability each token had in the distribution it was
    sampled from (None for greedy rollouts); PPO checks it against its own log-probs."""

    @property
    def completions(self) -> torch.Tensor:
        return self.sequences[:, self.prompt_width :]

    def rows(self, index: torch.Tensor | list[int]) -> Rollout:
        return Rollout(
            self.sequences[index],
            self.attention_mask[index],
            self.prompt_width,
            self.completion_mask[index],
            self.ended[index],
            None if self.sampling_logprobs is None else self.sampling_logprobs[index],
        )


class Scorer(Protocol):
    """Anything that turns rollouts into one scalar reward per completion."""

    def score(self, rollout: Rollout, tokenizer) -> torch.Tensor: ...


class SeededSampler(LogitsProcessor):
    """Ancestral sampling with one random stream per row, as a processor for greedy decoding.

    argmax(logits / T + Gumbel noise) is an exact sample of softmax(logits / T) (the Gumbel-max
    trick). Each row draws its noise from its own generator, so a prompt's completion depends on
    its seed only, not on the prompts batched with it or on which process draws it: data-parallel
    and resumed runs sample what one uninterrupted process samples.

    It also records the log-probability of each drawn token under softmax(scores / T), where
    `scores` are the logits as generation hands them over: when nothing else touched them (see
    `generate`), this is the distribution PPO's log-probs must describe.
    """

    def __init__(self, seeds: list[int], temperature: float):
        self.seeds = seeds
        self.temperature = temperature
        self.generators: list[torch.Generator] | None = None
        self.logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.generators is None:
            self.generators = [torch.Generator(scores.device).manual_seed(s) for s in self.seeds]
        uniform = torch.stack(
            [
                torch.rand(scores.shape[1], generator=g, device=scores.device)
                for g in self.generators
            ]
        )
        logits = scores.float() / self.temperature
        # A uniform draw of exactly 0 gives -inf noise: that token is never chosen.
        noisy = logits - torch.log(-torch.log(uniform))
        drawn = noisy.argmax(dim=-1, keepdim=True)
        self.logprobs.append(torch.log_softmax(logits, dim=-1).gather(-1, drawn).squeeze(-1))
        return noisy


def rollout_generation_config(max_new_tokens: int, stop_id: int, pad_id: int) -> GenerationConfig:
    """What rollouts are sampled with, and nothing else: decoding picks the argmax of the
    SeededSampler's noisy logits (or of the logits, for greedy), stops at `stop_id`, and may stop
    at the first token (a min_new_tokens of 1 would hide EOS from the first draw while PPO
    counts its probability). Everything else stays at transformers' neutral defaults."""
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=stop_id,
        pad_token_id=pad_id,
    )


@contextlib.contextmanager
def without_model_generation_defaults(model):
    """transformers fills every generation field the caller left unset from the model's own
    generation_config (a checkpoint's repetition_penalty, temperature, top_k, suppress_tokens,
    min_new_tokens ...). A penalty applied while sampling but not in PPO's log-probs makes PPO
    off-policy without a word, so rollouts run with that config replaced by the neutral one."""
    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def rollout_seed(seed: int, iteration: int, index: int) -> int:
    """The sampling seed of prompt `index` (its place in the prompt set) at a PPO iteration."""
    return ((seed * 1_000_003 + iteration) * 1_000_003 + index) % 2**63


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[list[int]],
    max_new_tokens: int,
    greedy: bool = False,
    temperature: float = 1.0,
    stop_id: int | None = None,
    seeds: list[int] | None = None,
) -> Rollout:
    """Sample completions (ancestral sampling from softmax(logits / temperature), or greedy)
    and cut each at its first stop token; later tokens are masked out, never scored or trained
    on. Each prompt samples from its own stream, seeded by `seeds` (see SeededSampler) or else
    drawn from torch's generator. No top-k, top-p or penalty: PPO's ratio is over the full
    softmax at the temperature, so rollouts must come from exactly that distribution."""
    stop_id = tokenizer.eos_token_id if stop_id is None else stop_id
    input_ids, attention_mask = pad(prompts, tokenizer.pad_token_id, side="left")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sampler = None
    if not greedy:
        if seeds is None:
            seeds = torch.randint(2**62, (len(prompts),)).tolist()
        sampler = SeededSampler(seeds, temperature)
    config = rollout_generation_config(max_new_tokens, stop_id, tokenizer.pad_token_id)
    with without_model_generation_defaults(model):
        out = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            generation_config=config,
            logits_processor=LogitsProcessorList([sampler] if sampler else []),
        )
    model.train(was_training)
    width = input_ids.shape[1]
    completions = out[:, width:]
    is_stop = completions == stop_id
    ended = is_stop.any(dim=1)
    # Keep tokens up to and including the first stop token.
    after_stop = (is_stop.long().cumsum(dim=1) - is_stop.long()) > 0
    completion_mask = (~after_stop).long()
    completions = completions.masked_fill(after_stop, tokenizer.pad_token_id)
    sequences = torch.cat([input_ids.to(device), completions], dim=1)
    full_mask = torch.cat([attention_mask.to(device), completion_mask], dim=1)
    sampling_logprobs = None
    if sampler is not None:
        # One entry per decoding step; rows that finished early hold pad there, masked out.
        sampling_logprobs = torch.stack(sampler.logprobs, dim=1) * completion_mask
    return Rollout(sequences, full_mask, width, completion_mask, ended, sampling_logprobs)


def decode_rollout(rollout: Rollout, tokenizer) -> tuple[list[str], list[str]]:
    """(prompt texts, completion texts) without padding or the stop token.

    A prompt keeps its special tokens: a chat-rendered prompt's turn markup (`<|im_start|>`, an
    earlier turn's `<|im_end|>`) is part of the text the reward model scores. Only a leading BOS
    that the tokenizer adds to any text goes, since the reward model's tokenizer adds its own
    (SmolLM2's BOS, `<|im_start|>`, is never added to text, so there it stays as markup)."""
    bos = tokenizer.bos_token_id
    adds_bos = bos is not None and tokenizer("a")["input_ids"][:1] == [bos]
    prompts, completions = [], []
    for i in range(rollout.sequences.shape[0]):
        prompt = rollout.sequences[i, : rollout.prompt_width][
            rollout.attention_mask[i, : rollout.prompt_width] > 0
        ]
        if adds_bos and prompt[:1].tolist() == [bos]:
            prompt = prompt[1:]
        completion = rollout.completions[i][rollout.completion_mask[i] > 0]
        if rollout.ended[i]:
            completion = completion[:-1]
        prompts.append(tokenizer.decode(prompt, skip_special_tokens=False))
        completions.append(tokenizer.decode(completion, skip_special_tokens=True))
    return prompts, completions


class RewardModelScorer:
    """r_theta(x, y) from a trained reward model, including its stored bias."""

    def __init__(self, model, tokenizer, policy_tokenizer, batch_size: int = 16):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.retokenize = not same_tokenizer(tokenizer, policy_tokenizer)
        if self.retokenize:
            # The RM cannot read the policy's ids; scoring them anyway would silently give noise.
            logger.warning(
                "the reward model's tokenizer differs from the policy's: completions are decoded "
                "to text and retokenised for the reward model."
            )

    @classmethod
    def load(
        cls, source: str, policy_tokenizer, dtype: str = "float32", device=None
    ) -> RewardModelScorer:
        model = load_scalar_model(source, dtype, device)
        return cls(model, load_tokenizer(source), policy_tokenizer)

    @torch.no_grad()
    def score(self, rollout: Rollout, policy_tokenizer=None) -> torch.Tensor:
        if not self.retokenize:
            return sequence_scores(self.model, rollout.sequences, rollout.attention_mask)
        return self.score_texts(*decode_rollout(rollout, policy_tokenizer), rollout.ended.tolist())

    @torch.no_grad()
    def score_texts(self, prompts: list[str], completions: list[str], ended: list[bool]):
        """Score text the way the RM was trained: prompt and completion tokenised apart, EOS
        appended to completions that ended."""
        rows = []
        for prompt, completion, stop in zip(prompts, completions, ended, strict=True):
            ids = self.tokenizer(prompt)["input_ids"]
            ids += self.tokenizer(completion, add_special_tokens=False)["input_ids"]
            rows.append(ids + ([self.tokenizer.eos_token_id] if stop else []))
        device = next(self.model.parameters()).device
        scores = []
        for start in range(0, len(rows), self.batch_size):
            input_ids, mask = pad(
                rows[start : start + self.batch_size], self.tokenizer.pad_token_id
            )
            scores.append(sequence_scores(self.model, input_ids.to(device), mask.to(device)))
        return torch.cat(scores)

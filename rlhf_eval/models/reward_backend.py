"""Reward models as suite models (`backend: reward_model`): they answer RewardRequests, batched,
through the response cache like any model's requests, so the reward_model task scores them and
aggregate.py pairs two of them on the same preference pairs.

Two scorers:
- `classifier` (default): a sequence classifier with one output, scored exactly as rlhf-train
  scores its reward model (rlhf_eval.models.reward_model.RewardModel: prompt with special tokens,
  completion without, then EOS; the head at the last real token plus the stored
  `reward_bias`). A request with `versus` gets r(completion) - r(versus), the Bradley-Terry
  log-odds the model was trained to give (InstructGPT eq. 1).
- `llm`: a causal LM used as a judge. The reward is log P(" Yes") - log P(" No") after asking
  whether the response is good (rlhf_eval.judges.pointwise); with `versus`, the pairwise judge's
  log-odds for the completion averaged over both orders, (m_1 - m_2) / 2 with m = log P(" A") -
  log P(" B") (rlhf_eval.judges.pairwise.calibrated_preference's argument), so a constant
  position bias cancels.
"""

from __future__ import annotations

from collections.abc import Iterator

from rlhf_common.instruction_data import Message
from rlhf_common.instruction_data.rendering import prompt_and_completion
from rlhf_eval.errors import ModelLoadError
from rlhf_eval.judges.pairwise import judge_prompt
from rlhf_eval.judges.pointwise import ANSWERS, pointwise_prompt
from rlhf_eval.models.base import OnBatch
from rlhf_eval.models.hf import HFBackend, loading_options
from rlhf_eval.models.reward_model import RewardModel
from rlhf_eval.models.spec import RewardModelSpec
from rlhf_eval.records import (
    Generation,
    GenerationRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    Reward,
    RewardRequest,
)

Turns = tuple[tuple[str, str], ...]

NOT_A_LANGUAGE_MODEL = (
    "model '{name}' is a reward model (`backend: reward_model`): it scores completions and "
    "cannot {what}. Fix: run this task on language models, and keep reward models for the "
    "reward_model task (or as judges)."
)


class _ScoresOnly:
    """What every reward backend shares: it refuses the language-model requests."""

    name: str

    def loglikelihood(
        self, requests: list[LoglikelihoodRequest], on_batch: OnBatch | None = None
    ) -> list[Loglikelihood]:
        raise ModelLoadError(NOT_A_LANGUAGE_MODEL.format(name=self.name, what="give log-probs"))

    def generate(
        self, requests: list[GenerationRequest], on_batch: OnBatch | None = None
    ) -> list[Generation]:
        raise ModelLoadError(NOT_A_LANGUAGE_MODEL.format(name=self.name, what="generate"))


def check_reward_head(name: str, source: str) -> None:
    """Refuse a checkpoint that is not a one-output sequence classifier: a head with more
    outputs has no single reward, and a causal LM would get a randomly initialised head."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"model '{name}': cannot read the config of '{source}' ({error}). Fix: point `path` "
            "at an `rlhf-train rm` output folder or another sequence-classifier checkpoint."
        ) from error
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ModelLoadError(
            f"model '{name}': '{source}' is a {', '.join(architectures)}, not a sequence "
            "classifier, so its reward head would be random. Fix: train a reward model "
            "(`rlhf-train rm`), point at a reward model checkpoint, or set `reward_scorer: llm` "
            "to use this language model as a judge."
        )
    if config.num_labels != 1:
        raise ModelLoadError(
            f"model '{name}': the classifier head of '{source}' has {config.num_labels} outputs; "
            "a reward model has one (a scalar reward). Fix: use a one-output reward model (as "
            "`rlhf-train rm` saves), not a multi-class classifier."
        )


class ClassifierRewardBackend(_ScoresOnly):
    """A one-output sequence classifier scoring (prompt, completion) pairs."""

    def __init__(
        self,
        name: str,
        source: str,
        *,
        template: str = "instruction",
        dtype: str = "float32",
        device: str = "auto",
        batch_size: int = 8,
        max_length: int | None = None,
    ):
        check_reward_head(name, source)
        self.name = name
        self.template = template
        self.scorer = RewardModel(source, dtype, device, batch_size, max_length)
        if template == "chat" and not self.scorer.tokenizer.chat_template:
            raise ModelLoadError(
                f"model '{name}': `reward_template: chat`, but '{source}' has no chat template. "
                "Fix: use instruction, hh or plain (the format the model was trained on)."
            )
        self.batch_size = batch_size
        self._identity = f"{self.scorer.identity}:{template}"

    @classmethod
    def from_spec(cls, spec: RewardModelSpec, source: str) -> ClassifierRewardBackend:
        """The backend of a `backend: reward_model` entry (`reward_scorer: classifier`) whose
        weights are at `source`."""
        if spec.revision is not None:
            raise ModelLoadError(
                f"model '{spec.name}': a classifier reward model loads its default revision "
                "only. Fix: remove `revision`, or download that revision and give its folder as "
                "`path`."
            )
        return cls(
            spec.name,
            source,
            template=spec.reward_template,
            dtype=spec.dtype,
            device=spec.device,
            batch_size=spec.batch_size,
            max_length=spec.max_length,
        )

    @property
    def identity(self) -> str:
        return self._identity

    def render(self, prompt: str | Turns, completion: str) -> tuple[str, str]:
        """(prompt, completion) as the model reads them: raw text as it is; a conversation in
        the backend's `reward_template` (rlhf_common.instruction_data.rendering)."""
        if isinstance(prompt, str):
            return prompt, completion
        turns = tuple(Message(role, content) for role, content in prompt)  # type: ignore[arg-type]
        if self.template == "plain":
            return "\n\n".join(m.content for m in turns), completion
        template = self._chat if self.template == "chat" else self.template
        return prompt_and_completion(turns, completion, None, template)  # type: ignore[arg-type]

    def _chat(self, messages: list[dict[str, str]]) -> str:
        return self.scorer.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def reward(
        self, requests: list[RewardRequest], on_batch: OnBatch | None = None
    ) -> list[Reward]:
        out: list[Reward] = []
        for start, chunk in _chunks(requests, self.batch_size):
            texts = []
            for r in chunk:
                texts.append(self.render(r.prompt, r.completion))
                if r.versus is not None:
                    texts.append(self.render(r.prompt, r.versus))
            scores = iter(self.scorer.scores([p for p, _ in texts], [c for _, c in texts]))
            answers = {}
            for i, r in enumerate(chunk):
                score = next(scores)
                if r.versus is not None:
                    score -= next(scores)
                answers[start + i] = Reward(score, self._tokens(r.completion))
            out.extend(answers.values())
            if on_batch is not None:
                on_batch(answers)
        return out

    def _tokens(self, completion: str) -> int:
        return len(self.scorer.tokenizer(completion, add_special_tokens=False)["input_ids"])

    def close(self) -> None:
        self.scorer.close()


class LLMRewardBackend(_ScoresOnly):
    """A causal LM as a judge: pointwise Yes/No log-odds, or pairwise A/B log-odds in both
    orders; its log-likelihoods come from the transformers backend."""

    def __init__(self, name: str, source: str, **hf_options):
        self.name = name
        self.lm = HFBackend(name, source, **hf_options)
        self.batch_size = self.lm.batch_size
        self.parameters = self.lm.parameters
        self._identity = f"llm-reward-v1:{self.lm.identity}"

    @classmethod
    def from_spec(cls, spec: RewardModelSpec, source: str) -> LLMRewardBackend:
        """The backend of a `backend: reward_model` entry with `reward_scorer: llm` whose
        weights are at `source`."""
        return cls(spec.name, source, **loading_options(spec))

    @property
    def identity(self) -> str:
        return self._identity

    def reward(
        self, requests: list[RewardRequest], on_batch: OnBatch | None = None
    ) -> list[Reward]:
        out: list[Reward] = []
        for start, chunk in _chunks(requests, self.batch_size):
            asks: list[LoglikelihoodRequest] = []
            for r in chunk:
                request = conversation_text(r.prompt)
                if r.versus is None:
                    prompts = [pointwise_prompt(request, r.completion)]
                    choices = ANSWERS
                else:
                    prompts = [
                        judge_prompt(request, r.completion, r.versus, "loglikelihood"),
                        judge_prompt(request, r.versus, r.completion, "loglikelihood"),
                    ]
                    choices = (" A", " B")
                asks += [LoglikelihoodRequest(p, c) for p in prompts for c in choices]
            logprobs = iter(a.logprob for a in self.lm.loglikelihood(asks))
            answers = {}
            for i, r in enumerate(chunk):
                if r.versus is None:
                    score = next(logprobs) - next(logprobs)
                else:
                    first = next(logprobs) - next(logprobs)  # completion shown as A
                    second = next(logprobs) - next(logprobs)  # completion shown as B
                    score = (first - second) / 2
                answers[start + i] = Reward(score)
            out.extend(answers.values())
            if on_batch is not None:
                on_batch(answers)
        return out

    def close(self) -> None:
        self.lm.close()


def conversation_text(prompt: str | Turns) -> str:
    """The user's request as a judge reads it: raw text as it is, one user turn as its text,
    a longer conversation as "User: ..." / "Assistant: ..." turns."""
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1:
        return prompt[0][1]
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    return "\n\n".join(f"{names.get(role, role)}: {content}" for role, content in prompt)


def _chunks(requests: list[RewardRequest], size: int) -> Iterator[tuple[int, list]]:
    for start in range(0, len(requests), size):
        yield start, requests[start : start + size]

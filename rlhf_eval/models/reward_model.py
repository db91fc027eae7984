"""A scalar reward model r(x, y): a sequence-classification model with one output (an
`rlhf-train rm` checkpoint, a TRL or OpenRLHF reward model), loaded once per run.

Scoring follows rlhf-train's reward model exactly (rlhf_train/modeling.py, rlhf_train/rewards.py):
the prompt tokenised with special tokens, the completion without, then EOS; the reward is the
scalar head at the last real token plus the checkpoint's stored `reward_bias` (the offset that
makes demonstrations score 0). Decoder models are read at that token ourselves, because the
class's own pooling looks for the pad id and misses the last token when pad == eos. Encoder
classifiers (BERT, DeBERTa) pool their first token themselves; their logits are used as they are.
"""

from __future__ import annotations

import gc

from rlhf_common.instruction_data import Message
from rlhf_common.instruction_data.rendering import prompt_and_completion
from rlhf_common.reward_head import stored_reward_bias
from rlhf_eval.errors import ModelLoadError
from rlhf_eval.judges.reward_model import RewardTemplate
from rlhf_eval.models.hf import DTYPES
from rlhf_eval.models.identity import weights_fingerprint


class RewardModel:
    """A scalar reward model loaded once per run, scoring (prompt, input, completion) triples."""

    def __init__(
        self,
        source: str,
        dtype: str = "float32",
        device: str = "auto",
        batch_size: int = 8,
        max_length: int | None = None,
    ):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.source = source
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                source, num_labels=1, dtype=DTYPES[dtype]
            )
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"cannot load a reward model (a sequence classifier with one output) from "
                f"'{source}' ({error}). Fix: point the judge at an `rlhf-train rm` output folder "
                "or another AutoModelForSequenceClassification checkpoint."
            ) from error
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model.to(self.device).eval().requires_grad_(False)
        self.batch_size = batch_size
        config = self.model.config
        self.bias = stored_reward_bias(config)
        self.max_length = max_length or getattr(config, "max_position_embeddings", None) or 512
        self.eos = self.tokenizer.eos_token_id
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        # Decoder classifiers (Llama, GPT-2, Qwen...) name their head `score`.
        self.decoder = hasattr(self.model, "score")
        self.identity = f"reward-model:{weights_fingerprint(source, config)}:{dtype}"
        self._memo: dict[tuple[str, str], float] = {}

    def render(
        self, instruction: str, input_text: str | None, completion: str, template: RewardTemplate
    ) -> tuple[str, str]:
        """(prompt, completion) as the reward model reads them (HH markup puts a space before
        the completion, as rlhf-train's data does)."""
        context = input_text if input_text and input_text.strip() else None
        if template == "plain":
            return prompt_and_completion(instruction, completion, context, "instruction")
        conversation = (Message("user", instruction),)
        if template == "chat":
            if not self.tokenizer.chat_template:
                raise ModelLoadError(
                    f"reward model '{self.source}' has no chat template, but the task asks for "
                    "`reward_template: chat`. Fix: use instruction, hh or plain."
                )
            return prompt_and_completion(conversation, completion, context, self._chat)
        return prompt_and_completion(conversation, completion, context, template)

    def _chat(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def scores(self, prompts: list[str], completions: list[str]) -> list[float]:
        """r(prompt, completion) for each pair, each distinct pair computed once per run."""
        pairs = list(zip(prompts, completions, strict=True))
        todo = list(dict.fromkeys(p for p in pairs if p not in self._memo))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            for pair, value in zip(batch, self._score_batch(batch), strict=True):
                self._memo[pair] = value
        return [self._memo[p] for p in pairs]

    def _ids(self, prompt: str, completion: str) -> list[int]:
        prompt_ids = self.tokenizer(prompt)["input_ids"]
        completion_ids = self.tokenizer(completion, add_special_tokens=False)["input_ids"]
        tail = completion_ids + ([self.eos] if self.eos is not None else [])
        # Too long: keep the whole completion and as much of the prompt's end as fits.
        room = max(self.max_length - len(tail), 0)
        return (prompt_ids[-room:] if room else []) + tail[-self.max_length :]

    def _score_batch(self, pairs: list[tuple[str, str]]) -> list[float]:
        import torch

        rows = [self._ids(p, c) for p, c in pairs]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # right padding: the last real token is at len - 1
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            if not self.decoder:
                logits = self.model(input_ids=ids, attention_mask=mask).logits[:, 0]
                return [float(v) + self.bias for v in logits.float().cpu()]
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                output_hidden_states=True,
            )
            last = mask.sum(-1) - 1
            hidden = out.hidden_states[-1][torch.arange(len(rows), device=self.device), last]
            values = self.model.score(hidden).squeeze(-1).float().cpu()
        return [float(v) + self.bias for v in values]

    def close(self) -> None:
        del self.model
        gc.collect()

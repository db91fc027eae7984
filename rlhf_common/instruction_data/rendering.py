"""Records as the (prompt text, completion text) pairs rlhf_train tokenises: raw prompts as they
are, single instructions through the instruction template, conversations through a chat
template or HH-RLHF's transcript markup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from rlhf_common.errors import DataError
from rlhf_common.instruction_data.conversations import message_rows
from rlhf_common.instruction_data.preferences import render_hh
from rlhf_common.instruction_data.records import (
    Demonstration,
    Message,
    PromptText,
    Ranking,
    as_conversation,
)

INSTRUCTION_TEMPLATE = "### Instruction:\n{instruction}\n\n{input_block}### Response:\n"
"""How instruction-style rows become prompts, in rlhf_train's data and rlhf_eval's reward template
alike; ends in a newline so tokens never merge across it."""

ChatTemplate = Callable[[list[dict[str, str]]], str]
"""Messages -> the prompt text up to the reply, e.g. `lambda m: tokenizer.apply_chat_template(m,
tokenize=False, add_generation_prompt=True)`."""

Template = Literal["instruction", "hh"] | ChatTemplate


def prompt_and_completion(
    prompt: PromptText, completion: str, context: str | None, template: Template
) -> tuple[str, str]:
    """The text pair of one reply.

    - A text prompt is used as it is (a context, if any, after a blank line).
    - "instruction": one user turn (no system turn) through INSTRUCTION_TEMPLATE, the context as
      its "### Input:" block: exactly what rlhf_train makes of an Alpaca or self-instruct row.
    - "hh": HH-RLHF markup, the prompt ending in "\\n\\nAssistant:" and the completion after one
      space: exactly rlhf_train's split of an HH-RLHF transcript.
    - a chat template: the messages (the context joining the last user turn after a blank line)
      rendered by it; the completion as it is.
    """
    if isinstance(prompt, str):
        return (prompt if context is None else f"{prompt}\n\n{context}"), completion
    if template == "instruction":
        if len(prompt) != 1:
            raise DataError(
                f"a conversation of {len(prompt)} turns (roles "
                f"{[m.role for m in prompt]}) does not fit the single-turn instruction template. "
                "Fix: pass template='hh' or a chat template (tokenizer.apply_chat_template)."
            )
        block = f"### Input:\n{context}\n\n" if context and context.strip() else ""
        return (
            INSTRUCTION_TEMPLATE.format(instruction=prompt[0].content.strip(), input_block=block),
            completion,
        )
    turns = _joined(prompt, context)
    if template == "hh":
        if any(m.role == "system" for m in turns):
            raise DataError("HH-RLHF markup has no system turn. Fix: use a chat template.")
        return render_hh(turns) + "\n\nAssistant:", f" {completion}"
    if callable(template):
        return template(message_rows(turns)), completion
    raise DataError(f"unknown template {template!r}. Fix: 'instruction', 'hh' or a callable.")


def demonstration_text(demo: Demonstration, template: Template = "instruction") -> tuple[str, str]:
    """(prompt, completion): rlhf_train.data.Demonstration(prompt, completion, demo.source)."""
    return prompt_and_completion(demo.prompt, demo.completion, demo.context, template)


def ranking_text(ranking: Ranking, template: Template = "instruction") -> tuple[str, list[str]]:
    """(prompt, completions): rlhf_train.data.Ranking(prompt, completions, ranks, source)."""
    pairs = [prompt_and_completion(ranking.prompt, c, None, template) for c in ranking.completions]
    return pairs[0][0], [completion for _, completion in pairs]


def _joined(prompt: PromptText, context: str | None) -> tuple[Message, ...]:
    turns = as_conversation(prompt)
    if context is None:
        return turns
    return turns[:-1] + (Message("user", f"{turns[-1].content}\n\n{context}"),)

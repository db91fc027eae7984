"""TRL's conversational rows for rlhf_train: parsed with rlhf_common.instruction_data's message
readers, kept as conversations, and rendered with the tokenizer's chat template when tokenised."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from jinja2 import TemplateError

from rlhf_common.errors import DataError
from rlhf_common.instruction_data.conversations import (
    message_rows,
    parse_messages,
    single_reply,
    split_reply,
)
from rlhf_common.instruction_data.files import Row, field_error
from rlhf_common.instruction_data.preferences import read_preference_rankings
from rlhf_common.instruction_data.records import Conversation, Message
from rlhf_common.instruction_data.rendering import prompt_and_completion
from rlhf_train.errors import TrainDataError

Prompt = str | Conversation
"""Text, fed to the model as it is, or a conversation ending in a user turn, rendered by the
tokenizer's chat template at tokenisation time."""


# --- Reading -----------------------------------------------------------------------------------

T = TypeVar("T")
_PC_FIX = (
    "a conversational prompt-completion row has `prompt` messages ending in a user turn and a "
    "`completion` of one assistant message"
)
_PREF_FIX = (
    "a conversational preference row has `prompt` messages and one assistant message in each of "
    "`chosen` and `rejected`, or, without `prompt`, two whole conversations"
)


def parse_row(read: Callable[[Row], T], source: str, record: dict) -> T:
    """What `read` makes of one row; a malformed row's DataError (which names the file:line and
    the field) becomes a TrainDataError."""
    try:
        return read(Row(record, source))
    except DataError as error:
        raise TrainDataError(str(error)) from error


def user_ending(row: Row, name: str) -> Conversation:
    """The messages of field `name`, which must end in the user turn the model answers."""
    messages = tuple(parse_messages(row, name))
    if not messages:
        raise field_error(row, name, "holds no messages", "give at least one user turn")
    if messages[-1].role != "user":
        raise field_error(
            row,
            name,
            f"ends with role {messages[-1].role!r}, not with the user turn the model answers",
            "drop the turns after the last user turn (or give the row as `messages`, whose "
            "trailing assistant turns are dropped)",
        )
    return messages


def prompt_completion_row(row: Row) -> tuple[Conversation, str]:
    prompt = user_ending(row, "prompt")
    return prompt, single_reply(row, "completion", row.data["completion"], _PC_FIX)


def messages_row(row: Row) -> tuple[Conversation, str]:
    """The last assistant turn and the turns before it (split_reply drops any after it)."""
    return split_reply(row, "messages", parse_messages(row, "messages"))


def prompt_of_messages(row: Row) -> Conversation:
    messages = parse_messages(row, "messages")
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise field_error(row, "messages", "has no user turn to answer", "drop the row")
    return tuple(messages[: last + 1])


def preference_row(row: Row) -> tuple[Conversation, str, str]:
    if row.data.get("prompt") is not None:
        prompt = user_ending(row, "prompt")
        chosen = single_reply(row, "chosen", row.data["chosen"], _PREF_FIX)
        return prompt, chosen, single_reply(row, "rejected", row.data["rejected"], _PREF_FIX)
    # Implicit prompt: the turns both conversations share, up to the last shared user turn.
    (ranking,) = read_preference_rankings([row])
    return ranking.prompt, *ranking.completions


# --- Rendering ---------------------------------------------------------------------------------


def _chat_text(tokenizer, messages: list[dict[str, str]], reply_next: bool, source, name) -> str:
    """The conversation rendered by the tokenizer's chat template (with the assistant's
    generation prompt when `reply_next`)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise TrainDataError(
            f"{source}: the row is a conversation, but the tokenizer of {name} has no chat "
            "template to render it with. Fix: train a model whose tokenizer has a chat template "
            "(an instruct/chat model, or set `chat_template` in its tokenizer_config.json), or "
            "give text rows (`prompt`/`completion` as strings) instead."
        )
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=reply_next
        )
    except (TemplateError, ValueError) as error:
        raise TrainDataError(
            f"{source}: the chat template of {name} cannot render this conversation ({error}). "
            "Fix: reorder or merge the turns as the template requires, or drop the row."
        ) from error


def render_prompt(tokenizer, prompt: Prompt, source: str, name: str = "") -> str:
    """The prompt as the model reads it: text as it is, a conversation through the chat template
    up to the start of the assistant's turn."""
    name = name or tokenizer.name_or_path

    def generation_prompt(messages: list[dict[str, str]]) -> str:
        return _chat_text(tokenizer, messages, True, source, name)

    return prompt_and_completion(prompt, "", None, generation_prompt)[0]


def render_pair(
    tokenizer, prompt: Prompt, completion: str, source: str, name: str = ""
) -> tuple[str, str]:
    """(prompt text, completion text). A conversation's completion text is what rendering the
    reply as one more assistant turn adds to the rendered prompt, end-of-turn markup included."""
    if isinstance(prompt, str):
        return prompt, completion
    name = name or tokenizer.name_or_path
    prompt_text = render_prompt(tokenizer, prompt, source, name)
    reply = prompt + (Message("assistant", completion),)
    full = _chat_text(tokenizer, message_rows(reply), False, source, name)
    if not full.startswith(prompt_text):
        raise TrainDataError(
            f"{source}: the chat template of {name} is not prefix-stable: the prompt it renders "
            "(add_generation_prompt=True) is not the start of the conversation it renders with "
            "the reply, so the reply's tokens cannot be told from the prompt's. Fix: use a model "
            "whose template renders a conversation the same whatever follows, or text rows."
        )
    return prompt_text, full[len(prompt_text) :]


def prompt_ids(tokenizer, prompt: Prompt, source: str, name: str = "") -> list[int]:
    """The token ids of a prompt: text with the tokenizer's special tokens (BOS), a rendered
    conversation without them (the template holds any BOS itself)."""
    if isinstance(prompt, str):
        return tokenizer(prompt)["input_ids"]
    text = render_prompt(tokenizer, prompt, source, name)
    return tokenizer(text, add_special_tokens=False)["input_ids"]

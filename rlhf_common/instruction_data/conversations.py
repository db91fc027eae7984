"""Conversation formats: Tulu/TRL `messages`, ShareGPT `conversations`, TRL prompt-completion rows
and the generations of an rlhf-eval run; the message parsing the preference formats share."""

from __future__ import annotations

import dataclasses
from typing import Any

from rlhf_common.instruction_data.files import (
    Row,
    build,
    field_error,
    identifier,
    listing,
    optional_text,
    text,
    without_none,
)
from rlhf_common.instruction_data.records import (
    ROLES,
    Demonstration,
    Message,
    as_conversation,
)

_MESSAGES_FIX = 'each message is {"role": "system"|"user"|"assistant", "content": "<text>"}'


def parse_messages(row: Row, name: str, value: Any = None) -> list[Message]:
    """The messages of field `name` ([{role, content}], Tulu and TRL's conversational rows)."""
    items = listing(row, name, _MESSAGES_FIX) if value is None else value
    out = []
    for i, item in enumerate(items):
        where = f"{name}[{i}]"
        if not isinstance(item, dict):
            raise field_error(row, where, "must be an object", _MESSAGES_FIX)
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise field_error(row, f"{where}.role", f"is {role!r}", _MESSAGES_FIX)
        if not isinstance(content, str):
            raise field_error(row, f"{where}.content", "must be text", _MESSAGES_FIX)
        out.append(Message(role, content))
    return out


def message_rows(messages: tuple[Message, ...] | list[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def split_reply(row: Row, name: str, messages: list[Message]) -> tuple[tuple[Message, ...], str]:
    """(prompt, completion) of a conversation: the last assistant turn is the completion. Turns
    after it (a user turn left unanswered, as ShareGPT exports often end) are dropped."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
    if last is None:
        raise field_error(row, name, "has no assistant turn to learn from", "drop the row")
    prompt = tuple(messages[:last])
    if not prompt or prompt[-1].role != "user":
        raise field_error(
            row,
            name,
            f"has no user turn right before its last assistant turn (turn {last})",
            "start the reply's turn with the user message it answers",
        )
    return prompt, messages[last].content


# --- Tulu / TRL conversational language modelling: {messages, id?, source?} ---------------------


def read_messages_demonstrations(rows: list[Row]) -> list[Demonstration]:
    out = []
    for row in rows:
        prompt, completion = split_reply(row, "messages", parse_messages(row, "messages"))
        # Tulu 3 names the source dataset `source`, Tulu 2 `dataset`.
        origin = optional_text(row, "source") or optional_text(row, "dataset")
        out.append(
            build(
                row,
                Demonstration,
                prompt=prompt,
                completion=completion,
                id=identifier(row, "id"),
                origin=origin,
            )
        )
    return out


def write_messages_demonstrations(demos: list[Demonstration]) -> list[dict[str, Any]]:
    return [
        without_none(
            {"id": d.id, "messages": message_rows(with_context(d).messages), "source": d.origin}
        )
        for d in demos
    ]


# --- ShareGPT: {id, conversations: [{from: human|gpt|system, value}]} ----------------------------

_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
}
_SHAREGPT_WRITE = {"user": "human", "assistant": "gpt", "system": "system"}
_SHAREGPT_FIX = 'turns are {"from": "human"|"gpt"|"system", "value": "<text>"}'


def read_sharegpt_demonstrations(rows: list[Row]) -> list[Demonstration]:
    out = []
    for row in rows:
        messages = []
        for i, turn in enumerate(listing(row, "conversations", _SHAREGPT_FIX)):
            where = f"conversations[{i}]"
            if not isinstance(turn, dict):
                raise field_error(row, where, "must be an object", _SHAREGPT_FIX)
            role = _SHAREGPT_ROLES.get(str(turn.get("from")).lower())
            if role is None:
                raise field_error(row, f"{where}.from", f"is {turn.get('from')!r}", _SHAREGPT_FIX)
            if not isinstance(turn.get("value"), str):
                raise field_error(row, f"{where}.value", "must be text", _SHAREGPT_FIX)
            messages.append(Message(role, turn["value"]))
        prompt, completion = split_reply(row, "conversations", messages)
        out.append(
            build(
                row, Demonstration, prompt=prompt, completion=completion, id=identifier(row, "id")
            )
        )
    return out


def write_sharegpt_demonstrations(demos: list[Demonstration]) -> list[dict[str, Any]]:
    return [
        without_none(
            {
                "id": d.id,
                "conversations": [
                    {"from": _SHAREGPT_WRITE[m.role], "value": m.content}
                    for m in with_context(d).messages
                ],
            }
        )
        for d in demos
    ]


# --- TRL prompt-completion: {prompt, completion}, text or conversational -------------------------

_PC_FIX = (
    "TRL prompt-completion rows have `prompt` and `completion`, both text or both messages "
    "(the completion one assistant message)"
)


def read_prompt_completion_demonstrations(rows: list[Row]) -> list[Demonstration]:
    out = []
    for row in rows:
        prompt, completion = row.data.get("prompt"), row.data.get("completion")
        if isinstance(prompt, list):
            prompt = tuple(parse_messages(row, "prompt"))
            completion = single_reply(row, "completion", completion, _PC_FIX)
        else:
            prompt = text(row, "prompt", _PC_FIX)
            completion = text(row, "completion", _PC_FIX)
        out.append(
            build(
                row, Demonstration, prompt=prompt, completion=completion, id=identifier(row, "id")
            )
        )
    return out


def write_prompt_completion_demonstrations(demos: list[Demonstration]) -> list[dict[str, Any]]:
    out = []
    for d in demos:
        d = with_context(d)
        if isinstance(d.prompt, str):
            out.append(without_none({"id": d.id, "prompt": d.prompt, "completion": d.completion}))
        else:
            out.append(
                without_none(
                    {
                        "id": d.id,
                        "prompt": message_rows(d.prompt),
                        "completion": message_rows([Message("assistant", d.completion)]),
                    }
                )
            )
    return out


# --- An rlhf-eval run's samples.jsonl: generations as demonstrations -----------------------------


def read_run_demonstrations(rows: list[Row]) -> list[Demonstration]:
    """Each generated sample as (the prompt the model saw, its generation); failed samples (with
    an `error`) are skipped."""
    out = []
    for row in rows:
        if row.data.get("error"):
            continue
        prediction = row.data.get("prediction")
        if not isinstance(prediction, str):
            raise field_error(
                row,
                "prediction",
                "is not a generation (text)",
                "read the samples of a generation task, not a scoring task",
            )
        out.append(
            build(
                row,
                Demonstration,
                prompt=text(row, "prompt", "use a run's samples.jsonl"),
                completion=prediction,
                id=identifier(row, "doc_id"),
            )
        )
    return out


# --- Shared --------------------------------------------------------------------------------------


def with_context(demo: Demonstration) -> Demonstration:
    """A demonstration whose context joins its last user turn (after a blank line), for formats
    that have no context field."""
    if demo.context is None:
        return demo
    turns = as_conversation(demo.prompt)
    last = Message("user", f"{turns[-1].content}\n\n{demo.context}")
    return dataclasses.replace(demo, prompt=turns[:-1] + (last,), context=None)


def as_list(row: Row, name: str, value: Any, fix: str) -> list:
    if not isinstance(value, list):
        raise field_error(row, name, "must be messages like the other fields", fix)
    return value


def single_reply(row: Row, name: str, value: Any, fix: str) -> str:
    messages = parse_messages(row, name, as_list(row, name, value, fix))
    if len(messages) != 1 or messages[0].role != "assistant":
        raise field_error(row, name, "must hold exactly one assistant message", fix)
    return messages[0].content

"""Single-turn instruction formats: the project's prompt sets, Dolly, Alpaca, self-instruct and
FastChat's question files (MT-bench, Vicuna-bench)."""

from __future__ import annotations

from typing import Any

from rlhf_common.errors import DataError
from rlhf_common.instruction_data.files import (
    Row,
    build,
    field_error,
    identifier,
    listing,
    optional_text,
    positional_id,
    text,
    without_none,
)
from rlhf_common.instruction_data.records import Demonstration, Message, Prompt

DOLLY_CLOSED_DOMAIN = frozenset({"closed_qa", "information_extraction", "summarization"})
"""Dolly categories whose items carry a context the answer must stay within: closed-domain for
InstructGPT's hallucination metric."""


# --- The project's prompt-set format: {id, prompt, category, closed_domain, input?, reference?} --


def read_prompt_set(rows: list[Row]) -> list[Prompt]:
    out = []
    for row in rows:
        closed = row.data.get("closed_domain", False)
        if not isinstance(closed, bool):
            raise field_error(
                row,
                "closed_domain",
                f"must be true or false, not {closed!r}",
                "write closed_domain: true for tasks answered from `input` only",
            )
        out.append(
            build(
                row,
                Prompt,
                id=_required_id(row, "id"),
                prompt=text(row, "prompt", "give each prompt set row its instruction as `prompt`"),
                category=optional_text(row, "category"),
                closed_domain=closed,
                input=optional_text(row, "input"),
                reference=optional_text(row, "reference"),
                origin=optional_text(row, "origin"),
            )
        )
    return out


def write_prompt_set(prompts: list[Prompt]) -> list[dict[str, Any]]:
    return [
        without_none(
            {
                "id": p.id,
                "prompt": p.prompt,
                "category": p.category,
                "closed_domain": p.closed_domain,
                "input": p.input,
                "reference": p.reference,
                "origin": p.origin,
            }
        )
        for p in prompts
    ]


# --- Dolly: {instruction, context, response, category} ------------------------------------------

_DOLLY_FIX = "Dolly rows have `instruction`, `context`, `response` and `category`"


def read_dolly_prompts(rows: list[Row]) -> list[Prompt]:
    out = []
    for i, row in enumerate(rows):
        category = optional_text(row, "category")
        out.append(
            build(
                row,
                Prompt,
                id=positional_id(row, i),
                prompt=text(row, "instruction", _DOLLY_FIX),
                category=category,
                closed_domain=category in DOLLY_CLOSED_DOMAIN,
                input=optional_text(row, "context"),
                reference=optional_text(row, "response"),
            )
        )
    return out


def read_dolly_demonstrations(rows: list[Row]) -> list[Demonstration]:
    return [
        build(
            row,
            Demonstration,
            prompt=(Message("user", text(row, "instruction", _DOLLY_FIX)),),
            completion=text(row, "response", _DOLLY_FIX),
            context=optional_text(row, "context"),
            id=identifier(row, "id"),
            category=optional_text(row, "category"),
        )
        for row in rows
    ]


def write_dolly_prompts(prompts: list[Prompt]) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "instruction": p.prompt,
            "context": p.input or "",
            "response": p.reference or "",
            "category": p.category or "",
        }
        for p in prompts
    ]


def write_dolly_demonstrations(demos: list[Demonstration]) -> list[dict[str, Any]]:
    return [
        without_none(
            {
                "id": d.id,
                "instruction": single_instruction(d, i, "dolly"),
                "context": d.context or "",
                "response": d.completion,
                "category": d.category or "",
            }
        )
        for i, d in enumerate(demos)
    ]


# --- Alpaca: {instruction, input, output} --------------------------------------------------------

_ALPACA_FIX = "Alpaca rows have `instruction`, `input` and `output`"


def read_alpaca_prompts(rows: list[Row]) -> list[Prompt]:
    return [
        build(
            row,
            Prompt,
            id=positional_id(row, i),
            prompt=text(row, "instruction", _ALPACA_FIX),
            input=optional_text(row, "input"),
            reference=optional_text(row, "output"),
        )
        for i, row in enumerate(rows)
    ]


def read_alpaca_demonstrations(rows: list[Row]) -> list[Demonstration]:
    return [
        build(
            row,
            Demonstration,
            prompt=(Message("user", text(row, "instruction", _ALPACA_FIX)),),
            completion=text(row, "output", _ALPACA_FIX),
            context=optional_text(row, "input"),
            id=identifier(row, "id"),
        )
        for row in rows
    ]


def write_alpaca_prompts(prompts: list[Prompt]) -> list[dict[str, Any]]:
    return [
        {"id": p.id, "instruction": p.prompt, "input": p.input or "", "output": p.reference or ""}
        for p in prompts
    ]


def write_alpaca_demonstrations(demos: list[Demonstration]) -> list[dict[str, Any]]:
    return [
        without_none(
            {
                "id": d.id,
                "instruction": single_instruction(d, i, "alpaca"),
                "input": d.context or "",
                "output": d.completion,
            }
        )
        for i, d in enumerate(demos)
    ]


# --- Self-instruct: {id, instruction, instances: [{input, output}], motivation_app?} -------------

_SELF_INSTRUCT_FIX = "self-instruct rows have `instruction` and `instances: [{input, output}]`"


def _instances(row: Row) -> list[tuple[str, str | None, str | None]]:
    """(id suffix, input, output) of each instance; a row with several gets ids id/1, id/2, ..."""
    instances = listing(row, "instances", _SELF_INSTRUCT_FIX)
    if not instances:
        raise field_error(row, "instances", "is empty", "give at least one {input, output}")
    out = []
    for k, instance in enumerate(instances, start=1):
        if not isinstance(instance, dict):
            raise field_error(row, f"instances[{k - 1}]", "must be an object", _SELF_INSTRUCT_FIX)
        inner = Row(instance, f"{row.where} instance {k}")
        suffix = f"/{k}" if len(instances) > 1 else ""
        out.append((suffix, optional_text(inner, "input"), optional_text(inner, "output")))
    return out


def read_self_instruct_prompts(rows: list[Row]) -> list[Prompt]:
    out = []
    for i, row in enumerate(rows):
        base = positional_id(row, i)
        instruction = text(row, "instruction", _SELF_INSTRUCT_FIX)
        for suffix, input_text, output in _instances(row):
            out.append(
                build(
                    row,
                    Prompt,
                    id=base + suffix,
                    prompt=instruction,
                    category=optional_text(row, "motivation_app"),
                    input=input_text,
                    reference=output,
                )
            )
    return out


def read_self_instruct_demonstrations(rows: list[Row]) -> list[Demonstration]:
    out = []
    for row in rows:
        base = identifier(row, "id")
        instruction = text(row, "instruction", _SELF_INSTRUCT_FIX)
        for suffix, input_text, output in _instances(row):
            if output is None:
                raise field_error(row, "instances.output", "is missing", _SELF_INSTRUCT_FIX)
            out.append(
                build(
                    row,
                    Demonstration,
                    prompt=(Message("user", instruction),),
                    completion=output,
                    context=input_text,
                    id=None if base is None else base + suffix,
                    category=optional_text(row, "motivation_app"),
                )
            )
    return out


def write_self_instruct_prompts(prompts: list[Prompt]) -> list[dict[str, Any]]:
    return [
        without_none(
            {
                "id": p.id,
                "instruction": p.prompt,
                "instances": [{"input": p.input or "", "output": p.reference or ""}],
                "motivation_app": p.category,
            }
        )
        for p in prompts
    ]


def write_self_instruct_demonstrations(demos: list[Demonstration]) -> list[dict[str, Any]]:
    return [
        without_none(
            {
                "id": d.id,
                "instruction": single_instruction(d, i, "self_instruct"),
                "instances": [{"input": d.context or "", "output": d.completion}],
                "motivation_app": d.category,
            }
        )
        for i, d in enumerate(demos)
    ]


# --- FastChat questions (MT-bench, Vicuna-bench): {question_id, category, turns, reference?} -----

_FASTCHAT_FIX = "FastChat question rows have `question_id`, `category` and `turns: [...]`"


def read_fastchat_prompts(rows: list[Row]) -> list[Prompt]:
    """The first turn of each question: rlhf-eval's generation tasks are single-turn."""
    out = []
    for row in rows:
        turns = listing(row, "turns", _FASTCHAT_FIX)
        if not turns or not isinstance(turns[0], str):
            raise field_error(row, "turns", "must start with the first turn's text", _FASTCHAT_FIX)
        references = row.data.get("reference") or []
        if not isinstance(references, list):
            raise field_error(row, "reference", "must be a list, one per turn", _FASTCHAT_FIX)
        out.append(
            build(
                row,
                Prompt,
                id=_required_id(row, "question_id"),
                prompt=turns[0],
                category=optional_text(row, "category"),
                reference=(references[0] or None) if references else None,
            )
        )
    return out


def write_fastchat_prompts(prompts: list[Prompt]) -> list[dict[str, Any]]:
    # The format has no input field: an input joins the question after a blank line.
    return [
        without_none(
            {
                "question_id": int(p.id) if p.id.isdigit() else p.id,
                "category": p.category,
                "turns": [p.prompt if p.input is None else f"{p.prompt}\n\n{p.input}"],
                "reference": None if p.reference is None else [p.reference],
            }
        )
        for p in prompts
    ]


# --- Shared --------------------------------------------------------------------------------------


def _required_id(row: Row, name: str) -> str:
    found = identifier(row, name)
    if found is None:
        raise field_error(row, name, "is missing", f"give every row a unique `{name}`")
    return found


def single_instruction(demo: Demonstration, index: int, format_name: str) -> str:
    """The instruction of a single-turn demonstration; a longer conversation cannot be written
    in a single-turn format without losing turns, so that is an error."""
    if isinstance(demo.prompt, str):
        return demo.prompt
    if len(demo.prompt) == 1:
        return demo.prompt[0].content
    where = demo.source or f"record {index + 1}"
    raise DataError(
        f"{where} (id {demo.id}): {format_name} holds single-turn instructions, but this "
        f"demonstration has {len(demo.prompt)} turns before its reply. Fix: write it with "
        "format='messages' or 'sharegpt'."
    )

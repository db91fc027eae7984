"""The format registry: which fields identify a format, which records it reads and writes, and
the read_*/write_* entry points shared by rlhf-eval prompt sets and rlhf-train data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rlhf_common.errors import DataError
from rlhf_common.instruction_data import conversations as conv
from rlhf_common.instruction_data import instructions as inst
from rlhf_common.instruction_data import oasst
from rlhf_common.instruction_data import preferences as pref
from rlhf_common.instruction_data.files import Row, read_rows, write_rows
from rlhf_common.instruction_data.records import Demonstration, Prompt, Ranking

Kind = Literal["prompts", "demonstrations", "rankings"]
_RECORD = {"prompts": Prompt, "demonstrations": Demonstration, "rankings": Ranking}


@dataclass(frozen=True)
class Format:
    name: str
    fields: str
    """The fields that identify it, as the error messages list them."""
    detect: Callable[[dict[str, Any]], bool]
    readers: dict[str, Callable[[list[Row]], list]]
    writers: dict[str, Callable[[list], list[dict[str, Any]]]]


def _has(*names: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: all(name in row for name in names)


def _is_hh(row: dict[str, Any]) -> bool:
    chosen = row.get("chosen")
    return (
        row.get("prompt") is None
        and isinstance(chosen, str)
        and chosen.startswith("\n\nHuman:")
        and isinstance(row.get("rejected"), str)
    )


# Detection tries these in order on the first row; the first whose fields are all present wins.
_FORMATS = (
    Format(
        "oasst1",
        "message_id, parent_id, role, text, rank",
        _has("message_id", "role", "text"),
        {
            "prompts": oasst.read_oasst_prompts,
            "demonstrations": oasst.read_oasst_demonstrations,
            "rankings": oasst.read_oasst_rankings,
        },
        {
            "demonstrations": oasst.write_oasst_demonstrations,
            "rankings": oasst.write_oasst_rankings,
        },
    ),
    Format(
        "run_samples",
        "doc_id, prompt, prediction (an rlhf-eval samples.jsonl)",
        _has("doc_id", "prompt", "prediction"),
        {"demonstrations": conv.read_run_demonstrations},
        {},
    ),
    Format(
        "kway",
        "prompt, completions, ranks",
        _has("completions", "ranks"),
        {"rankings": pref.read_kway_rankings},
        {"rankings": pref.write_kway_rankings},
    ),
    Format(
        "hh_rlhf",
        'chosen, rejected ("\\n\\nHuman: ...\\n\\nAssistant: ..." transcripts)',
        _is_hh,
        {"demonstrations": pref.read_hh_demonstrations, "rankings": pref.read_hh_rankings},
        {"rankings": pref.write_hh_rankings},
    ),
    Format(
        "preference",
        "prompt, chosen, rejected (TRL)",
        _has("chosen", "rejected"),
        {"rankings": pref.read_preference_rankings},
        {"rankings": pref.write_preference_rankings},
    ),
    Format(
        "sharegpt",
        "conversations: [{from, value}]",
        _has("conversations"),
        {"demonstrations": conv.read_sharegpt_demonstrations},
        {"demonstrations": conv.write_sharegpt_demonstrations},
    ),
    Format(
        "messages",
        "messages: [{role, content}] (Tulu, TRL conversational)",
        _has("messages"),
        {"demonstrations": conv.read_messages_demonstrations},
        {"demonstrations": conv.write_messages_demonstrations},
    ),
    Format(
        "self_instruct",
        "instruction, instances: [{input, output}]",
        _has("instruction", "instances"),
        {
            "prompts": inst.read_self_instruct_prompts,
            "demonstrations": inst.read_self_instruct_demonstrations,
        },
        {
            "prompts": inst.write_self_instruct_prompts,
            "demonstrations": inst.write_self_instruct_demonstrations,
        },
    ),
    Format(
        "dolly",
        "instruction, context, response, category",
        _has("instruction", "response"),
        {"prompts": inst.read_dolly_prompts, "demonstrations": inst.read_dolly_demonstrations},
        {"prompts": inst.write_dolly_prompts, "demonstrations": inst.write_dolly_demonstrations},
    ),
    Format(
        "alpaca",
        "instruction, input, output",
        _has("instruction", "output"),
        {"prompts": inst.read_alpaca_prompts, "demonstrations": inst.read_alpaca_demonstrations},
        {"prompts": inst.write_alpaca_prompts, "demonstrations": inst.write_alpaca_demonstrations},
    ),
    Format(
        "fastchat_questions",
        "question_id, category, turns (MT-bench, Vicuna-bench)",
        _has("question_id", "turns"),
        {"prompts": inst.read_fastchat_prompts},
        {"prompts": inst.write_fastchat_prompts},
    ),
    Format(
        "prompt_completion",
        "prompt, completion (TRL)",
        _has("prompt", "completion"),
        {"demonstrations": conv.read_prompt_completion_demonstrations},
        {"demonstrations": conv.write_prompt_completion_demonstrations},
    ),
    Format(
        "prompt_set",
        "id, prompt, category, closed_domain, input? (rlhf-eval prompt sets)",
        _has("id", "prompt"),
        {"prompts": inst.read_prompt_set},
        {"prompts": inst.write_prompt_set},
    ),
)
FORMATS: dict[str, Format] = {f.name: f for f in _FORMATS}
ALIASES = {
    "tulu": "messages",
    "trl_messages": "messages",
    "oasst": "oasst1",
    "oasst2": "oasst1",
    "mt_bench": "fastchat_questions",
    "vicuna_bench": "fastchat_questions",
    "hh": "hh_rlhf",
    "trl_preference": "preference",
    "trl_prompt_completion": "prompt_completion",
    "rankings": "kway",
}
"""Other names users give these formats."""


def detect_format(rows: list[Row]) -> Format:
    """The format of a file, from the fields of its first row."""
    if not rows:
        raise DataError("the data holds no rows. Fix: point at a non-empty file.")
    for fmt in _FORMATS:
        if fmt.detect(rows[0].data):
            return fmt
    known = "; ".join(f"{f.name} ({f.fields})" for f in _FORMATS)
    raise DataError(
        f"{rows[0].where}: cannot tell the format from the fields "
        f"{', '.join(sorted(rows[0].data)) or '(none)'}. Fix: rename the fields to one of: "
        f"{known}; or pass format= explicitly."
    )


def read(
    source: str | Path,
    kind: Kind,
    format: str | None = None,
    split: str = "train",
    config: str | None = None,
) -> list:
    """The `kind` records of a local file or `hub:<dataset id>` (with `split` and `config`)."""
    rows = read_rows(source, split, config)
    fmt = detect_format(rows) if format is None else _named(format)
    reader = fmt.readers.get(kind)
    if reader is None:
        able = ", ".join(f.name for f in _FORMATS if kind in f.readers)
        raise DataError(
            f"{source}: the {fmt.name} format holds no {kind}. Fix: read {kind} from one of "
            f"these formats: {able}."
        )
    return reader(rows)


def write(records: Sequence, path: str | Path, kind: Kind, format: str) -> Path:
    """Write `kind` records in `format`; .jsonl, .json or .parquet by the file name."""
    fmt = _named(format)
    writer = fmt.writers.get(kind)
    if writer is None:
        able = ", ".join(f.name for f in _FORMATS if kind in f.writers)
        raise DataError(f"the {fmt.name} format cannot hold {kind}. Fix: use one of: {able}.")
    expected = _RECORD[kind]
    for i, record in enumerate(records):
        if not isinstance(record, expected):
            raise DataError(
                f"record {i + 1} is a {type(record).__name__}, not a {expected.__name__}. Fix: "
                f"write only {kind} with this call."
            )
    return write_rows(writer(list(records)), path)


def _named(name: str) -> Format:
    name = ALIASES.get(name, name)
    if name not in FORMATS:
        raise DataError(f"unknown format {name!r}. Fix: use one of {', '.join(FORMATS)}.")
    return FORMATS[name]


def read_prompts(
    source: str | Path, format: str | None = None, split: str = "train", config: str | None = None
) -> list[Prompt]:
    return read(source, "prompts", format, split, config)


def read_demonstrations(
    source: str | Path, format: str | None = None, split: str = "train", config: str | None = None
) -> list[Demonstration]:
    return read(source, "demonstrations", format, split, config)


def read_rankings(
    source: str | Path, format: str | None = None, split: str = "train", config: str | None = None
) -> list[Ranking]:
    return read(source, "rankings", format, split, config)


def write_prompts(prompts: Sequence[Prompt], path: str | Path, format: str = "prompt_set") -> Path:
    return write(prompts, path, "prompts", format)


def write_demonstrations(
    demos: Sequence[Demonstration], path: str | Path, format: str = "messages"
) -> Path:
    return write(demos, path, "demonstrations", format)


def write_rankings(rankings: Sequence[Ranking], path: str | Path, format: str = "kway") -> Path:
    return write(rankings, path, "rankings", format)

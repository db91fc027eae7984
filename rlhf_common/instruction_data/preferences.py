"""Preference and ranking formats: TRL preference rows, HH-RLHF `chosen`/`rejected` transcripts
and K-way rankings (rlhf_train's format)."""

from __future__ import annotations

import re
from typing import Any

from rlhf_common.errors import DataError
from rlhf_common.instruction_data.conversations import (
    as_list,
    message_rows,
    parse_messages,
    single_reply,
)
from rlhf_common.instruction_data.files import (
    Row,
    build,
    field_error,
    identifier,
    listing,
    text,
    without_none,
)
from rlhf_common.instruction_data.records import (
    Demonstration,
    Message,
    PromptText,
    Ranking,
    as_conversation,
)

# --- TRL preference: {prompt?, chosen, rejected}, text or conversational -------------------------

_PREF_FIX = (
    "TRL preference rows have `chosen` and `rejected` (and usually `prompt`), all text or all "
    "messages"
)


def read_preference_rankings(rows: list[Row]) -> list[Ranking]:
    out = []
    for row in rows:
        chosen, rejected = row.data.get("chosen"), row.data.get("rejected")
        prompt: PromptText
        if isinstance(chosen, list) or isinstance(rejected, list):
            if "prompt" in row.data and row.data["prompt"] is not None:
                prompt = tuple(parse_messages(row, "prompt"))
                better = single_reply(row, "chosen", chosen, _PREF_FIX)
                worse = single_reply(row, "rejected", rejected, _PREF_FIX)
            else:  # implicit prompt: the turns both conversations share
                a = parse_messages(row, "chosen", as_list(row, "chosen", chosen, _PREF_FIX))
                b = parse_messages(row, "rejected", as_list(row, "rejected", rejected, _PREF_FIX))
                prompt, (better, worse) = _shared_prompt(row, a, b)
        else:
            better = text(row, "chosen", _PREF_FIX)
            worse = text(row, "rejected", _PREF_FIX)
            if row.data.get("prompt") is not None:
                prompt = text(row, "prompt", _PREF_FIX)
            else:  # TRL's extract_prompt: the longest common prefix, less a final space
                common = _common_prefix(better, worse)
                if common < min(len(better), len(worse)) and better[common - 1 : common] == " ":
                    common -= 1
                prompt, better, worse = better[:common], better[common:], worse[common:]
        out.append(
            build(
                row,
                Ranking,
                prompt=prompt,
                completions=(better, worse),
                ranks=(0, 1),
                id=identifier(row, "id"),
            )
        )
    return out


def write_preference_rankings(rankings: list[Ranking]) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(rankings):
        better, worse = _pair(r, i, "preference")
        if isinstance(r.prompt, str):
            row = {"id": r.id, "prompt": r.prompt, "chosen": better, "rejected": worse}
        else:
            row = {
                "id": r.id,
                "prompt": message_rows(r.prompt),
                "chosen": message_rows([Message("assistant", better)]),
                "rejected": message_rows([Message("assistant", worse)]),
            }
        out.append(without_none(row))
    return out


# --- HH-RLHF: {chosen, rejected}, "\n\nHuman: ...\n\nAssistant: ..." transcripts ----------------

_HH_MARKER = re.compile(r"\n\n(Human|Assistant):")
_HH_NAMES = {"Human": "user", "Assistant": "assistant"}
_HH_FIX = 'HH-RLHF transcripts are "\\n\\nHuman: ...\\n\\nAssistant: ..." turns'


def parse_hh(row: Row, name: str) -> list[Message]:
    """The turns of an HH-RLHF transcript; the one space after "Human:"/"Assistant:" is markup."""
    transcript = text(row, name, _HH_FIX)
    parts = _HH_MARKER.split(transcript)
    if parts[0] != "" or len(parts) < 3:
        raise field_error(row, name, 'does not start with "\\n\\nHuman:"', _HH_FIX)
    return [
        Message(_HH_NAMES[who], said[1:] if said.startswith(" ") else said)
        for who, said in zip(parts[1::2], parts[2::2], strict=True)
    ]


def render_hh(messages: tuple[Message, ...] | list[Message]) -> str:
    """A conversation as an HH-RLHF transcript (the inverse of parse_hh)."""
    names = {"user": "Human", "assistant": "Assistant"}
    return "".join(f"\n\n{names[m.role]}: {m.content}" for m in messages)


def _hh_reply(rest: list[Message]) -> str:
    """The reply after the prompt: the assistant turn's text. The odd pair whose transcripts part
    before the last turn keeps its remaining turns in HH markup, so writing reproduces it."""
    return render_hh(rest)[len("\n\nAssistant: ") :]


def read_hh_rankings(rows: list[Row]) -> list[Ranking]:
    """K = 2 rankings; the prompt is the turns both transcripts share, up to the last user turn."""
    out = []
    for row in rows:
        chosen, rejected = parse_hh(row, "chosen"), parse_hh(row, "rejected")
        prompt, (better, worse) = _shared_prompt(row, chosen, rejected, reply=_hh_reply)
        out.append(
            build(
                row,
                Ranking,
                prompt=prompt,
                completions=(better, worse),
                ranks=(0, 1),
                id=identifier(row, "id"),
            )
        )
    return out


def read_hh_demonstrations(rows: list[Row]) -> list[Demonstration]:
    """The chosen transcripts as demonstrations (their last assistant turn is the reply)."""
    out = []
    for row in rows:
        messages = parse_hh(row, "chosen")
        last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
        if last_user is None or last_user == len(messages) - 1:
            raise field_error(
                row, "chosen", "has no assistant reply after its last human turn", _HH_FIX
            )
        out.append(
            build(
                row,
                Demonstration,
                prompt=tuple(messages[: last_user + 1]),
                completion=_hh_reply(messages[last_user + 1 :]),
                id=identifier(row, "id"),
            )
        )
    return out


def write_hh_rankings(rankings: list[Ranking]) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(rankings):
        better, worse = _pair(r, i, "hh_rlhf")
        if any(m.role == "system" for m in as_conversation(r.prompt)):
            raise DataError(
                f"{_where(r, i)}: HH-RLHF transcripts have no system turns. Fix: "
                "write it with format='preference' or 'kway'."
            )
        prefix = render_hh(as_conversation(r.prompt))
        out.append(
            without_none(
                {
                    "id": r.id,
                    "chosen": prefix + render_hh([Message("assistant", better)]),
                    "rejected": prefix + render_hh([Message("assistant", worse)]),
                }
            )
        )
    return out


# --- K-way rankings (rlhf_train's format): {prompt, completions, ranks} --------------------------

_KWAY_FIX = "K-way rows have `prompt`, `completions: [...]` and `ranks: [...]` (0 best, ties share)"


def read_kway_rankings(rows: list[Row]) -> list[Ranking]:
    out = []
    for row in rows:
        prompt = row.data.get("prompt")
        prompt = (
            tuple(parse_messages(row, "prompt"))
            if isinstance(prompt, list)
            else text(row, "prompt", _KWAY_FIX)
        )
        completions = listing(row, "completions", _KWAY_FIX)
        ranks = listing(row, "ranks", _KWAY_FIX)
        # Parquet and some JSON writers store integers as floats; 1.0 is rank 1, 1.5 is an error.
        ranks = [int(k) if isinstance(k, float) and k.is_integer() else k for k in ranks]
        out.append(
            build(
                row,
                Ranking,
                prompt=prompt,
                completions=completions,
                ranks=ranks,
                id=identifier(row, "id"),
                labeler=identifier(row, "labeler"),
            )
        )
    return out


def write_kway_rankings(rankings: list[Ranking]) -> list[dict[str, Any]]:
    return [
        without_none(
            {
                "id": r.id,
                "prompt": r.prompt if isinstance(r.prompt, str) else message_rows(r.prompt),
                "completions": list(r.completions),
                "ranks": list(r.ranks),
                "labeler": r.labeler,
            }
        )
        for r in rankings
    ]


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _shared_prompt(row: Row, a: list[Message], b: list[Message], reply=None):
    """(prompt, (reply a, reply b)): the prompt is the turns both share, cut back to end at a user
    turn; each reply is what follows (one assistant turn, or with `reply` the rest rendered)."""
    shared = 0
    while shared < min(len(a), len(b)) and a[shared] == b[shared]:
        shared += 1
    cut = max((i + 1 for i in range(shared) if a[i].role == "user"), default=0)
    if cut == 0:
        raise field_error(
            row,
            "chosen",
            "shares no user turn with `rejected`",
            "both sides must answer the same prompt",
        )
    rests = a[cut:], b[cut:]
    for name, rest in zip(("chosen", "rejected"), rests, strict=True):
        if not rest or rest[0].role != "assistant":
            raise field_error(
                row,
                name,
                "has no assistant reply after the shared prompt",
                "both sides must end in a reply to the same prompt",
            )
    if reply is not None:
        return tuple(a[:cut]), tuple(reply(rest) for rest in rests)
    for name, rest in zip(("chosen", "rejected"), rests, strict=True):
        if len(rest) != 1:
            raise field_error(
                row, name, "must end in one assistant turn after the shared prompt", _PREF_FIX
            )
    return tuple(a[:cut]), (rests[0][0].content, rests[1][0].content)


def _pair(ranking: Ranking, index: int, format_name: str) -> tuple[str, str]:
    if len(ranking.completions) != 2:
        raise DataError(
            f"{_where(ranking, index)}: {format_name} holds pairs, but this ranking has K = "
            f"{len(ranking.completions)}. Fix: write format='kway' or 'oasst1', or split it "
            "with Ranking.pairs()."
        )
    better = 0 if ranking.ranks[0] < ranking.ranks[1] else 1
    return ranking.completions[better], ranking.completions[1 - better]


def _where(record: Ranking | Demonstration, index: int) -> str:
    return f"{record.source or f'record {index + 1}'} (id {record.id})"

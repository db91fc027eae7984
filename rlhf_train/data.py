"""Training data: demonstrations, K-way rankings, prompts and pretraining text, read and tokenised.

Field names follow TRL and OpenRLHF so files move between them: `prompt`/`completion` (TRL SFT),
`input`/`output` (OpenRLHF), `prompt`/`chosen`/`rejected` and HH-RLHF's `chosen`/`rejected` with the
prompt implicit in the shared prefix (TRL reward data), `text` (pretraining). Our K-way rankings are
`{"prompt", "completions": [...], "ranks": [...]}` with rank 0 best and ties sharing a rank.
The self-instruct files (`instruction` + `instances`) and Alpaca rows (`instruction`, `input`,
`output`) are rendered with INSTRUCTION_TEMPLATE.

TRL's conversational rows, whose values are lists of `{"role", "content"}` messages, are read with
rlhf_common.instruction_data's message parsing and kept as conversations (tuples of Message):
- `{"messages": [...]}` (also Tulu): the last assistant turn is the completion, the turns before it
  the prompt (earlier assistant turns are context, not trained on); turns after it are dropped.
  As a PPO prompt: the turns up to and including the last user turn.
- `{"prompt": [...], "completion": [one assistant message]}`; `{"prompt": [...]}` for PPO.
- `{"prompt": [...], "chosen": [...], "rejected": [...]}`, and without `prompt` the turns both
  conversations share are the prompt and their final assistant turns the completions.
They are rendered when tokenised, with the tokenizer's chat template: the prompt with
add_generation_prompt=True, the completion as what the whole conversation adds to it.
"""

from __future__ import annotations

import graphlib
import gzip
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from rlhf_common.instruction_data.rendering import INSTRUCTION_TEMPLATE
from rlhf_train.chat import (
    Prompt,
    messages_row,
    parse_row,
    preference_row,
    prompt_completion_row,
    prompt_ids,
    prompt_of_messages,
    render_pair,
    user_ending,
)
from rlhf_train.errors import TrainDataError

if TYPE_CHECKING:
    from rlhf_train.config import DataSource

Overlong = Literal["error", "skip"]


@dataclass(frozen=True)
class Demonstration:
    prompt: Prompt
    completion: str
    source: str
    """file:line, for error messages."""


@dataclass(frozen=True)
class Ranking:
    prompt: Prompt
    completions: tuple[str, ...]
    ranks: tuple[int, ...]
    source: str
    labeler: str | None = None
    """Who ranked it, when the row says (`labeler`): labelers may disagree with each other,
    but one labeler's rankings of a prompt must not form a cycle."""


@dataclass(frozen=True)
class PromptText:
    text: Prompt
    """A PPO prompt (text or a conversation); pretraining documents are always text."""
    source: str


@dataclass(frozen=True)
class TokenizedExample:
    """One token sequence; `prompt_length` tokens of it are context, the rest is trained on."""

    input_ids: list[int]
    prompt_length: int


# --- Reading files -----------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[tuple[str, dict]]:
    """(file:line, record) pairs of a .jsonl / .json file, optionally gzipped."""
    if not path.is_file():
        raise TrainDataError(
            f"data file {path} does not exist. Fix: correct the path in the config (relative "
            "paths are relative to the config file)."
        )
    raw = path.read_bytes()
    try:
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TrainDataError(f"{path}: cannot read the file ({error}).") from error
    stem_suffix = Path(path.stem).suffix if path.suffix == ".gz" else path.suffix
    if stem_suffix == ".json":
        records = json.loads(text)
        if not isinstance(records, list):
            raise TrainDataError(f"{path}: expected a JSON list of objects.")
        return [(f"{path}:item {i}", r) for i, r in enumerate(records)]
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise TrainDataError(f"{path}:{n}: not valid JSON ({error.msg}).") from error
        if not isinstance(record, dict):
            raise TrainDataError(f"{path}:{n}: expected a JSON object per line.")
        rows.append((f"{path}:{n}", record))
    return rows


def _instruction_prompt(instruction: str, input_text: str) -> str:
    block = f"### Input:\n{input_text}\n\n" if input_text.strip() else ""
    return INSTRUCTION_TEMPLATE.format(instruction=instruction.strip(), input_block=block)


def load_demonstrations(path: Path, limit: int | None = None) -> list[Demonstration]:
    """Demonstrations from `prompt`/`completion` (text or messages), `input`/`output`, Alpaca,
    self-instruct or `messages` rows."""
    out: list[Demonstration] = []
    for source, r in read_jsonl(path):
        if "instruction" in r and "instances" in r:
            for inst in r["instances"]:
                prompt = _instruction_prompt(r["instruction"], inst.get("input", ""))
                out.append(Demonstration(prompt, inst["output"], source))
        elif "instruction" in r and "output" in r:
            out.append(
                Demonstration(
                    _instruction_prompt(r["instruction"], r.get("input", "")), r["output"], source
                )
            )
        elif "prompt" in r and "completion" in r:
            if isinstance(r["prompt"], list) or isinstance(r["completion"], list):
                prompt, completion = parse_row(prompt_completion_row, source, r)
                out.append(Demonstration(prompt, completion, source))
            else:
                out.append(Demonstration(r["prompt"], r["completion"], source))
        elif "input" in r and "output" in r:
            out.append(Demonstration(r["input"], r["output"], source))
        elif "messages" in r:
            prompt, completion = parse_row(messages_row, source, r)
            out.append(Demonstration(prompt, completion, source))
        else:
            raise TrainDataError(
                f"{source}: a demonstration needs `prompt` and `completion` (TRL), `input` and "
                f"`output` (OpenRLHF), `messages` (TRL conversational, Tulu), or `instruction` "
                f"with `output`/`instances`; found fields {sorted(r)}. Fix: rename the fields."
            )
    return out[:limit] if limit is not None else out


def split_implicit_prompt(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(prompt, chosen completion, rejected completion) of an HH-RLHF pair.

    The prompt is the shared text up to and including the last "\\n\\nAssistant:" turn marker both
    share, else the longest common prefix (TRL's `extract_prompt` does the latter).
    """
    common = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        common += 1
    marker = "\n\nAssistant:"
    cut = chosen.rfind(marker, 0, common)
    if cut >= 0 and cut + len(marker) <= common:
        common = cut + len(marker)
    return chosen[:common], chosen[common:], rejected[common:]


def load_rankings(path: Path, limit: int | None = None) -> list[Ranking]:
    """K-way rankings; `chosen`/`rejected` pairs (text or messages, with or without `prompt`)
    become K = 2."""
    out: list[Ranking] = []
    for source, r in read_jsonl(path):
        if "completions" in r and "ranks" in r:
            completions, ranks = r["completions"], r["ranks"]
            if not isinstance(completions, list) or not isinstance(ranks, list):
                raise TrainDataError(f"{source}: `completions` and `ranks` must be lists.")
            if len(completions) != len(ranks):
                raise TrainDataError(
                    f"{source}: `ranks` must hold one integer per completion; got "
                    f"{len(ranks)} ranks for {len(completions)} completions."
                )
            if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in ranks):
                raise TrainDataError(
                    f"{source}: `ranks` {ranks} must be whole numbers >= 0 (0 best, ties share "
                    "a rank); true/false or negative ranks say nothing about the order. Fix: "
                    "write each completion's place, e.g. [0, 1, 1, 2]."
                )
            for i, completion in enumerate(completions):
                if not isinstance(completion, str):
                    raise TrainDataError(
                        f"{source}: completions[{i}] is a {type(completion).__name__}, not a "
                        "string. Fix: give each completion as text."
                    )
            prompt = r.get("prompt", "")
            if isinstance(prompt, list):
                prompt = parse_row(lambda row: user_ending(row, "prompt"), source, r)
            ranking = Ranking(prompt, tuple(completions), tuple(ranks), source, r.get("labeler"))
        elif "chosen" in r and "rejected" in r:
            if any(isinstance(r.get(k), list) for k in ("prompt", "chosen", "rejected")):
                prompt, chosen, rejected = parse_row(preference_row, source, r)
            else:
                for key in ("chosen", "rejected"):
                    if not isinstance(r[key], str):
                        raise TrainDataError(
                            f"{source}: `{key}` is a {type(r[key]).__name__}, not a string or a "
                            "list of messages. Fix: give the completion's text."
                        )
                if "prompt" in r:
                    prompt, chosen, rejected = r["prompt"], r["chosen"], r["rejected"]
                else:
                    prompt, chosen, rejected = split_implicit_prompt(r["chosen"], r["rejected"])
            ranking = Ranking(prompt, (chosen, rejected), (0, 1), source, r.get("labeler"))
        else:
            raise TrainDataError(
                f"{source}: a ranking needs `completions` and `ranks` (rank 0 best, ties "
                f"allowed) or `chosen` and `rejected`; found fields {sorted(r)}."
            )
        if len(set(ranking.ranks)) < 2:
            raise TrainDataError(
                f"{source}: the ranking has fewer than two distinct ranks ({list(ranking.ranks)}), "
                "so it holds no comparison. Fix: give at least two different ranks or drop the row."
            )
        repeated = [c for c in set(ranking.completions) if ranking.completions.count(c) > 1]
        if repeated:
            raise TrainDataError(
                f"{source}: the completion {_short(repeated[0])!r} appears twice in one ranking, "
                "so the row compares a text with itself. Fix: keep each completion once."
            )
        out.append(ranking)
    check_no_cycles(out)
    return out[:limit] if limit is not None else out


def check_no_cycles(rankings: list[Ranking]) -> None:
    """One labeler's rows of a prompt must not contradict each other (A > B in one row, B > A
    in another, or A > B > C > A over three): no reward fits a cycle, so it is a data error.
    Rows that name different `labeler`s may disagree (that is inter-labeler disagreement, as
    in the paper); rows without one count as one labeler. Raises TrainDataError naming the
    rows of the first cycle."""
    edges: dict[str, dict[str, dict[str, str]]] = {}
    for ranking in rankings:
        graph = edges.setdefault(repr((ranking.prompt, ranking.labeler)), {})
        for better, r_better in zip(ranking.completions, ranking.ranks, strict=True):
            for worse, r_worse in zip(ranking.completions, ranking.ranks, strict=True):
                if r_better < r_worse:
                    graph.setdefault(worse, {}).setdefault(better, ranking.source)
    for graph in edges.values():
        try:
            graphlib.TopologicalSorter({k: set(v) for k, v in graph.items()}).prepare()
        except graphlib.CycleError as error:
            cycle = error.args[1]  # [n0, n1, ..., n0]: each node is preferred to the next
            sources = sorted({graph[b][a] for a, b in itertools.pairwise(cycle)}, key=_line)
            path, lines = sources[0].rsplit(":", 1)[0], [s.rsplit(":", 1)[1] for s in sources]
            order = " > ".join(repr(_short(n, 30)) for n in cycle)
            raise TrainDataError(
                f"{path}:{', '.join(lines)}: these rows of one prompt form a cycle of "
                f"preferences ({order}): no reward can rank them. Fix: correct or drop the "
                "row that is wrong."
            ) from None


def _line(source: str) -> int:
    tail = source.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def load_prompts(path: Path, limit: int | None = None) -> list[PromptText]:
    """Prompts from `prompt` (TRL, text or messages), `input` (OpenRLHF), instruction rows (first
    instance) or `messages` rows (the turns up to and including the last user turn)."""
    out: list[PromptText] = []
    for source, r in read_jsonl(path):
        if "instruction" in r:
            instances = r.get("instances") or [{"input": r.get("input", "")}]
            out.append(
                PromptText(_instruction_prompt(r["instruction"], instances[0]["input"]), source)
            )
        elif isinstance(r.get("prompt"), list):
            prompt = parse_row(lambda row: user_ending(row, "prompt"), source, r)
            out.append(PromptText(prompt, source))
        elif "prompt" in r or "input" in r:
            out.append(PromptText(r.get("prompt", r.get("input")), source))
        elif "messages" in r:
            out.append(PromptText(parse_row(prompt_of_messages, source, r), source))
        else:
            raise TrainDataError(
                f"{source}: a prompt needs a `prompt`, `input`, `messages` or `instruction` "
                f"field; found fields {sorted(r)}."
            )
    return out[:limit] if limit is not None else out


def load_texts(path: Path, field: str = "text", limit: int | None = None) -> list[PromptText]:
    """Pretraining documents: the `field` of each JSONL row, or the paragraphs of a .txt file."""
    if path.suffix == ".txt":
        if not path.is_file():
            raise TrainDataError(f"pretraining file {path} does not exist.")
        paragraphs = [p for p in path.read_text().split("\n\n") if p.strip()]
        out = [PromptText(p, f"{path}:paragraph {i}") for i, p in enumerate(paragraphs)]
    else:
        out = []
        for source, r in read_jsonl(path):
            if field not in r:
                raise TrainDataError(
                    f"{source}: no `{field}` field (found {sorted(r)}). Fix: set the data "
                    "source's `text_field`."
                )
            out.append(PromptText(r[field], source))
    return out[:limit] if limit is not None else out


# --- Tokenising --------------------------------------------------------------------------------


def require_eos(tokenizer, name: str) -> int:
    """The EOS id every completion ends with; a tokenizer without one is a user error."""
    if tokenizer.eos_token_id is None:
        raise TrainDataError(
            f"the tokenizer of {name} has no eos_token, so completions could not learn to stop. "
            "Fix: set `eos_token` in its tokenizer_config.json (or pick a model that has one)."
        )
    return tokenizer.eos_token_id


def _too_long(source: str, length: int, max_length: int, overlong: Overlong, what: str) -> bool:
    if length <= max_length:
        return False
    if overlong == "skip":
        return True
    raise TrainDataError(
        f"{source}: the {what} is {length} tokens, longer than max_length {max_length}. Fix: "
        "raise `max_length`, shorten the example, or set `overlong: skip` to drop such examples."
    )


def tokenize_pair(
    tokenizer, prompt: Prompt, completion: str, eos_id: int, source: str = "", name: str = ""
) -> TokenizedExample:
    """Prompt and completion tokenised apart, so the boundary is exact, ending in one EOS.

    Text: EOS is appended. A conversation: the rendered reply usually ends its turn with EOS
    (ChatML's `<|im_end|>` is SmolLM2's EOS) and a newline; it is cut right after its last EOS,
    and only a reply without any EOS (a template with another end-of-turn marker) gets one.
    """
    if isinstance(prompt, str):
        head = tokenizer(prompt)["input_ids"]
        tail = tokenizer(completion, add_special_tokens=False)["input_ids"] + [eos_id]
        return TokenizedExample(head + tail, len(head))
    prompt_text, completion_text = render_pair(tokenizer, prompt, completion, source, name)
    head = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    tail = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    if eos_id in tail:
        tail = tail[: len(tail) - tail[::-1].index(eos_id)]  # through the last EOS
    else:
        tail.append(eos_id)
    return TokenizedExample(head + tail, len(head))


def tokenize_demonstrations(
    demos: list[Demonstration], tokenizer, max_length: int, overlong: Overlong, name: str
) -> tuple[list[TokenizedExample], int]:
    """Tokenised demonstrations and how many were skipped for length."""
    eos = require_eos(tokenizer, name)
    out, skipped = [], 0
    for d in demos:
        ex = tokenize_pair(tokenizer, d.prompt, d.completion, eos, d.source, name)
        if _too_long(d.source, len(ex.input_ids), max_length, overlong, "prompt + completion"):
            skipped += 1
            continue
        out.append(ex)
    return out, skipped


def tokenize_rankings(
    rankings: list[Ranking], tokenizer, max_length: int, overlong: Overlong, name: str
) -> tuple[list[tuple[list[TokenizedExample], tuple[int, ...]]], int]:
    """Each ranking as (tokenised completions, ranks); a ranking with any overlong completion is
    skipped (or raises) whole, so no prompt loses comparisons silently."""
    eos = require_eos(tokenizer, name)
    out, skipped = [], 0
    for r in rankings:
        examples = [
            tokenize_pair(tokenizer, r.prompt, c, eos, r.source, name) for c in r.completions
        ]
        longest = max(len(e.input_ids) for e in examples)
        if _too_long(r.source, longest, max_length, overlong, "longest prompt + completion"):
            skipped += 1
            continue
        out.append((examples, r.ranks))
    return out, skipped


def tokenize_prompts(
    prompts: list[PromptText], tokenizer, max_prompt_length: int, overlong: Overlong, name: str = ""
) -> tuple[list[list[int]], int]:
    """Prompt token ids (conversations rendered up to the assistant's turn) and how many were
    skipped for length."""
    out, skipped = [], 0
    for p in prompts:
        ids = prompt_ids(tokenizer, p.text, p.source, name)
        if _too_long(
            p.source, len(ids), max_prompt_length, overlong, "prompt (with room for max_new_tokens)"
        ):
            skipped += 1
            continue
        out.append(ids)
    return out, skipped


def tokenize_texts(texts: list[PromptText], tokenizer, max_length: int) -> list[TokenizedExample]:
    """Pretraining documents, truncated to max_length (every token is trained on, as in ptx)."""
    return [
        TokenizedExample(tokenizer(t.text)["input_ids"][:max_length], 0)
        for t in texts
        if t.text.strip()
    ]


# --- Batching ----------------------------------------------------------------------------------


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch; a pure function of (seed, epoch), so resuming needs only
    the step number and every process computes the same global batches."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The example indices of global optimiser step `step` (epochs wrap around; each epoch drops
    its last partial batch so every step has exactly batch_size examples)."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise TrainDataError(
            f"only {n} usable examples for a batch of {batch_size}. Fix: lower `batch_size` or "
            "add data."
        )
    epoch, position = divmod(step, per_epoch)
    order = epoch_order(n, seed, epoch)
    return order[position * batch_size : (position + 1) * batch_size]


def shard(indices: list[int], rank: int, world_size: int) -> list[int]:
    """This process's share of a global batch (contiguous, so shards differ by at most one)."""
    size, extra = divmod(len(indices), world_size)
    start = rank * size + min(rank, extra)
    return indices[start : start + size + (1 if rank < extra else 0)]


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def pad(
    sequences: list[list[int]], pad_id: int, side: Literal["left", "right"] = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of sequences padded to the longest."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        if side == "right":
            ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
        else:
            ids[i, width - len(s) :], mask[i, width - len(s) :] = torch.tensor(s), 1
    return ids, mask


def label_count(example: TokenizedExample) -> int:
    """How many of the example's tokens are predicted and trained on (the first never is)."""
    return len(example.input_ids) - max(example.prompt_length, 1)


@dataclass(frozen=True)
class PretrainStream:
    """Pretraining documents served in batches keyed by optimiser step (resumable by step)."""

    examples: list[TokenizedExample]
    batch_size: int
    seed: int

    def global_batch(self, step: int) -> list[int]:
        return batch_indices(len(self.examples), self.batch_size, self.seed + 7919, step)

    def num_tokens(self, step: int) -> int:
        return sum(label_count(self.examples[i]) for i in self.global_batch(step))


def load_split(
    load: Callable[[Path, int | None], list],
    source: DataSource,
    val_source: DataSource | None,
    val_fraction: float,
    seed: int,
) -> tuple[list, list]:
    """Training and validation records: a separate validation file, or a held-out fraction."""
    records = load(source.path, source.limit)
    if val_source is not None:
        return records, load(val_source.path, val_source.limit)
    return split_off(records, val_fraction, seed)


def split_off(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, held-out) with round(fraction * n) items held out, chosen by a seeded shuffle."""
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = round(fraction * len(items))
    held = set(order[:n_val])
    return [x for i, x in enumerate(items) if i not in held], [items[i] for i in sorted(held)]

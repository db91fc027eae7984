"""Packing scoring requests: one context and all its continuations in one sequence, with a
tree-shaped attention mask, so a context shared by k continuations is computed once, not k times.

Within a pack, the context tokens attend causally to each other; each continuation's tokens
attend to the whole context and causally to themselves, never to a sibling continuation.
Positions restart after the context for every continuation, so each continuation sees exactly
the positions and keys it would see alone. A cached shared prefix (e.g. a few-shot primer)
precedes every pack and is visible to all of its tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class ScoringRow:
    """One tokenised request: the model input and how many of its last positions to score."""

    index: int
    tokens: tuple[int, ...]
    """Model input: (context + continuation)[:-1], left-truncated to the model's window."""
    targets: tuple[int, ...]
    """The continuation tokens, predicted by the last len(targets) input positions."""

    @property
    def first_scored(self) -> int:
        return len(self.tokens) - len(self.targets)

    @property
    def context(self) -> tuple[int, ...]:
        """Input tokens up to and including the one that predicts the first target."""
        return self.tokens[: self.first_scored + 1]


@dataclass
class Pack:
    context: tuple[int, ...]
    """The context tokens after the shared prefix."""
    rows: list[ScoringRow] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.context) + sum(len(r.targets) - 1 for r in self.rows)


MIN_SHARED_CONTEXT = 8
"""Rows share a pack only when their common context (past any cached prefix) is this long: a
shorter one saves almost no tokens, while packing many rows into one long sequence makes
attention quadratic in the pack's length (CrowS-Pairs' sentences all share just BOS)."""


def build_packs(
    rows: list[ScoringRow],
    prefix_length: int,
    max_tokens: int,
    share_context: bool = True,
    min_shared: int = MIN_SHARED_CONTEXT,
) -> list[Pack]:
    """Group rows by context; a pack holds one context and as many of its rows as fit.
    Rows whose context (past the cached prefix) is shorter than `min_shared` go alone."""
    by_context: dict[tuple[int, ...], list[ScoringRow]] = {}
    for row in rows:
        shared = share_context and len(row.context) - prefix_length >= min_shared
        key = row.context if shared else (row.index, *row.context)
        by_context.setdefault(key, []).append(row)
    packs = []
    for members in by_context.values():
        pack = Pack(members[0].context[prefix_length:])
        for row in members:
            if pack.rows and pack.length + len(row.targets) - 1 > max_tokens:
                packs.append(pack)
                pack = Pack(pack.context)
            pack.rows.append(row)
        packs.append(pack)
    return packs


@dataclass
class PackedBatch:
    input_ids: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    """Additive float mask (batch, 1, length, prefix + length): 0 to attend, dtype-min not."""
    picks: list[tuple[ScoringRow, int, list[int]]]
    """Per row: its batch index and the positions whose logits predict its targets."""


def pack_batch(
    packs: list[Pack], prefix_length: int, pad_id: int, dtype: torch.dtype
) -> PackedBatch:
    width = max(p.length for p in packs)
    batch, p = len(packs), prefix_length
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    positions = torch.full((batch, width), p, dtype=torch.long)
    allowed = torch.zeros((batch, width, p + width), dtype=torch.bool)
    allowed[:, :, :p] = True
    picks = []
    for b, pack in enumerate(packs):
        q = len(pack.context)
        ids[b, :q] = torch.tensor(pack.context)
        positions[b, :q] = torch.arange(p, p + q)
        allowed[b, :q, p : p + q] = torch.ones(q, q, dtype=torch.bool).tril()
        start = q
        for row in pack.rows:
            n = len(row.targets) - 1  # the last target is predicted, never fed back
            if n:
                ids[b, start : start + n] = torch.tensor(row.targets[:-1])
                positions[b, start : start + n] = torch.arange(p + q, p + q + n)
                allowed[b, start : start + n, p : p + q] = True
                allowed[b, start : start + n, p + start : p + start + n] = torch.ones(
                    n, n, dtype=torch.bool
                ).tril()
            picks.append((row, b, [q - 1, *range(start, start + n)]))
            start += n
        # Padding attends to itself only, so no softmax row is empty (which would give NaN).
        pad = torch.arange(start, width)
        allowed[b, pad, p + pad] = True
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return PackedBatch(ids, positions, mask[:, None], picks)

"""The packed tree mask: every continuation sees the prefix, its context and itself only."""

from __future__ import annotations

import torch

from rlhf_eval.models.packing import ScoringRow, build_packs, pack_batch


def row(index: int, context: tuple[int, ...], targets: tuple[int, ...]) -> ScoringRow:
    full = context + targets
    return ScoringRow(index, full[:-1], targets)


def test_mask_positions_and_picks_golden():
    # prefix of 2 tokens (cached), context suffix (10, 11), continuations (20, 21, 22) and (30,)
    a, b = row(0, (1, 2, 10, 11), (20, 21, 22)), row(1, (1, 2, 10, 11), (30,))
    (pack,) = build_packs([a, b], prefix_length=2, max_tokens=100, min_shared=1)
    assert pack.context == (10, 11) and pack.length == 4
    batch = pack_batch([pack], prefix_length=2, pad_id=0, dtype=torch.float32)
    assert batch.input_ids.tolist() == [[10, 11, 20, 21]]
    assert batch.position_ids.tolist() == [[2, 3, 4, 5]]
    allowed = (batch.attention_mask[0, 0] == 0).int().tolist()
    #                  prefix | 10 11 20 21
    assert allowed == [
        [1, 1, 1, 0, 0, 0],  # 10
        [1, 1, 1, 1, 0, 0],  # 11
        [1, 1, 1, 1, 1, 0],  # 20 sees prefix, context, itself
        [1, 1, 1, 1, 1, 1],
    ]  # 21
    picks = {r.index: positions for r, _, positions in batch.picks}
    assert picks == {0: [1, 2, 3], 1: [1]}  # (30,) is predicted from the context's last token


def test_siblings_never_see_each_other_and_pads_see_themselves():
    rows = [row(0, (5, 6), (7, 8)), row(1, (5, 6), (9, 10, 11)), row(2, (4,), (3, 2))]
    packs = build_packs(rows, prefix_length=0, max_tokens=100, min_shared=1)
    batch = pack_batch(sorted(packs, key=lambda p: -p.length), 0, pad_id=0, dtype=torch.float32)
    allowed = batch.attention_mask[:, 0] == 0
    # pack 0: context (5, 6), then 7 (row 0) at 2, then 9, 10 (row 1) at 3, 4
    assert not allowed[0, 3, 2] and not allowed[0, 2, 3]
    assert allowed[0, 4, :2].all() and allowed[0, 4, 3] and not allowed[0, 4, 2]
    # pack 1 is shorter: its padding rows attend exactly to themselves
    for i in range(packs[1].length, batch.input_ids.shape[1]):
        assert allowed[1, i].nonzero().flatten().tolist() == [i]
    assert batch.position_ids[0].tolist() == [0, 1, 2, 2, 3]


def test_large_groups_split_into_packs_that_fit():
    rows = [row(i, (1, 2, 3), (4, 5, 6, 7)) for i in range(10)]
    packs = build_packs(rows, prefix_length=0, max_tokens=12, min_shared=1)
    assert all(p.length <= 12 for p in packs) and sum(len(p.rows) for p in packs) == 10
    assert all(p.context == (1, 2, 3) for p in packs)


def test_unshared_mode_gives_each_row_its_own_pack():
    rows = [row(i, (1, 2, 3), (4, 5)) for i in range(3)]
    assert [len(p.rows) for p in build_packs(rows, 0, 100, share_context=False)] == [1, 1, 1]


def test_a_short_shared_context_is_not_worth_a_pack():
    """Sentences that share only BOS (CrowS-Pairs) each get their own row: packing them would
    make attention quadratic in the pack's length for no saving."""
    rows = [row(i, (1,), (5 + i, 6, 7)) for i in range(3)]  # context: BOS only
    assert [len(p.rows) for p in build_packs(rows, 0, 100)] == [1, 1, 1]
    questions = [row(i, tuple(range(1, 10)), (20 + i, 21)) for i in range(3)]
    assert [len(p.rows) for p in build_packs(questions, 0, 100)] == [3]

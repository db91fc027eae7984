"""SFT mixtures: realised counts, determinism, independence of sources, replacement."""

from __future__ import annotations

from collections import Counter

import pytest

from rlhf_common.instruction_data import Demonstration, MixtureSource, build_mixture
from rlhf_eval.errors import DataError


def demos(name: str, n: int) -> list[Demonstration]:
    return [
        Demonstration(f"{name} prompt {i}", f"{name} reply {i}", id=f"{name}-{i}") for i in range(n)
    ]


DOLLY, ALPACA, OASST = demos("dolly", 40), demos("alpaca", 25), demos("oasst", 10)


def test_fractions_and_counts_give_the_realised_counts():
    mixture = build_mixture(
        [
            MixtureSource("dolly", DOLLY, fraction=0.25),
            MixtureSource("alpaca", ALPACA, count=7),
            MixtureSource("oasst", OASST, fraction=1.0),
        ],
        seed=3,
    )
    assert mixture.counts == {"dolly": 10, "alpaca": 7, "oasst": 10}
    assert Counter(d.origin for d in mixture.records) == mixture.counts
    assert {d.id for d in mixture.records if d.origin == "oasst"} == {d.id for d in OASST}
    assert all(d.distinct == d.taken for d in mixture.draws)  # no replacement: no repeats


def test_fractions_round_to_the_nearest_record():
    # 0.29 * 100 is 28.999999999999996 in floating point: truncating (as Tulu's int() does)
    # would give 28.
    mixture = build_mixture([(demos("x", 100), 0.29)], seed=0)
    assert mixture.counts == {"source 1": 29}


def test_the_same_seed_gives_the_same_mixture_and_another_seed_another():
    sources = [(DOLLY, 0.5), (ALPACA, 10)]
    first, again = build_mixture(sources, seed=7), build_mixture(sources, seed=7)
    assert first.records == again.records
    assert build_mixture(sources, seed=8).records != first.records


def test_adding_a_source_leaves_the_other_draws_unchanged():
    alone = build_mixture([MixtureSource("dolly", DOLLY, fraction=0.5)], seed=1)
    together = build_mixture(
        [MixtureSource("oasst", OASST, count=4), MixtureSource("dolly", DOLLY, fraction=0.5)],
        seed=1,
    )
    assert {d.id for d in together.records if d.origin == "dolly"} == {d.id for d in alone.records}


def test_without_shuffle_sources_stay_in_order_and_records_in_file_order():
    mixture = build_mixture([(DOLLY, 5), (ALPACA, 3)], seed=0, shuffle=False)
    origins = [d.origin for d in mixture.records]
    assert origins == ["source 1"] * 5 + ["source 2"] * 3
    positions = [int(d.id.removeprefix("dolly-")) for d in mixture.records[:5]]
    assert positions == sorted(positions)


def test_an_existing_origin_is_kept():
    tagged = [Demonstration("p", "c", origin="sharegpt")]
    assert build_mixture([MixtureSource("chat", tagged, count=1)], seed=0).records[0].origin == (
        "sharegpt"
    )


def test_asking_for_more_than_a_source_has_needs_replacement():
    with pytest.raises(DataError, match="'oasst' has 10 records but 15 are asked for. Fix: lower"):
        build_mixture([MixtureSource("oasst", OASST, count=15)], seed=0)
    with pytest.raises(DataError, match="has 10 records but 20 are asked for"):
        build_mixture([MixtureSource("oasst", OASST, fraction=2.0)], seed=0)
    mixture = build_mixture([MixtureSource("oasst", OASST, fraction=2.0, replace=True)], seed=0)
    (draw,) = mixture.draws
    assert (draw.available, draw.taken, draw.replace) == (10, 20, True)
    assert draw.distinct == len({d.id for d in mixture.records}) < 20


def test_bad_specifications():
    with pytest.raises(DataError, match="give exactly one of fraction and count"):
        build_mixture([MixtureSource("x", OASST)], seed=0)
    with pytest.raises(DataError, match="names repeat"):
        build_mixture([MixtureSource("x", OASST, count=1), MixtureSource("x", DOLLY, count=1)], 0)
    with pytest.raises(DataError, match="count -1 is negative"):
        build_mixture([(OASST, -1)], seed=0)
    with pytest.raises(DataError, match="is not a fraction"):
        build_mixture([(OASST, "half")], seed=0)

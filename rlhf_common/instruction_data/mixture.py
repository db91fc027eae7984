"""An SFT mixture from several sources, each contributing a fraction of its records or a count,
drawn deterministically from a seed (as Tulu's dataset mixer does)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlhf_common.errors import DataError


@dataclass(frozen=True)
class MixtureSource:
    """One source: give `fraction` (of its own records; Tulu's proportion) or `count`."""

    name: str
    records: Sequence[Any]
    fraction: float | None = None
    """Share of this source's records to take, rounded to the nearest record; 1.0 takes all.
    Above 1.0 (upsampling) needs replace=True."""
    count: int | None = None
    replace: bool = False
    """Draw with replacement; only then may a source give more records than it has."""


@dataclass(frozen=True)
class SourceDraw:
    """What a source realised in the mixture."""

    name: str
    available: int
    taken: int
    distinct: int
    """Distinct records among those taken (less than `taken` only with replacement)."""
    replace: bool


@dataclass(frozen=True)
class Mixture:
    records: list[Any]
    draws: tuple[SourceDraw, ...]
    seed: int

    @property
    def counts(self) -> dict[str, int]:
        return {d.name: d.taken for d in self.draws}


SourceSpec = MixtureSource | tuple[Sequence[Any], float] | tuple[Sequence[Any], int]
"""A MixtureSource, or (records, fraction) with a float, or (records, count) with an int."""


def build_mixture(sources: Sequence[SourceSpec], seed: int, shuffle: bool = True) -> Mixture:
    """The records of every source's draw, shuffled together (or in source order).

    Each source draws from its own generator seeded by (seed, source name), so adding a source
    leaves the others' draws unchanged. Without replacement a source's draw keeps its records'
    order; records with an `origin` field left empty get the source's name there.
    """
    specs = [_spec(s, i) for i, s in enumerate(sources)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise DataError(f"mixture source names repeat: {names}. Fix: name each source once.")
    records: list[Any] = []
    draws = []
    for spec in specs:
        n = len(spec.records)
        k = _requested(spec)
        rng = np.random.default_rng([seed, _name_key(spec.name)])
        if spec.replace:
            picked = np.sort(rng.integers(0, n, size=k)) if k else np.zeros(0, dtype=int)
        else:
            picked = np.sort(rng.choice(n, size=k, replace=False))
        records.extend(_tagged(spec.records[int(i)], spec.name) for i in picked)
        draws.append(SourceDraw(spec.name, n, k, len(set(picked.tolist())), spec.replace))
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(records))
        records = [records[int(i)] for i in order]
    return Mixture(records, tuple(draws), seed)


def _spec(source: SourceSpec, index: int) -> MixtureSource:
    if isinstance(source, MixtureSource):
        return source
    if not isinstance(source, tuple) or len(source) != 2:
        raise DataError(
            f"mixture source {index + 1} is not a MixtureSource or (records, fraction or count)."
        )
    records, amount = source
    name = f"source {index + 1}"
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise DataError(f"{name}: the amount {amount!r} is not a fraction (float) or count (int).")
    if isinstance(amount, int):
        return MixtureSource(name, records, count=amount)
    return MixtureSource(name, records, fraction=amount)


def _requested(spec: MixtureSource) -> int:
    n = len(spec.records)
    if (spec.fraction is None) == (spec.count is None):
        raise DataError(f"mixture source {spec.name!r}: give exactly one of fraction and count.")
    if spec.count is not None:
        if spec.count < 0:
            raise DataError(f"mixture source {spec.name!r}: count {spec.count} is negative.")
        k = spec.count
    else:
        if not spec.fraction >= 0:
            raise DataError(f"mixture source {spec.name!r}: fraction {spec.fraction} is negative.")
        k = round(spec.fraction * n)
    if k > n and not spec.replace:
        raise DataError(
            f"mixture source {spec.name!r} has {n} records but {k} are asked for. Fix: lower its "
            "fraction or count, or set replace=True to draw with replacement."
        )
    if k > 0 and n == 0:
        raise DataError(f"mixture source {spec.name!r} has no records to draw {k} from.")
    return k


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def _tagged(record: Any, name: str) -> Any:
    if dataclasses.is_dataclass(record) and getattr(record, "origin", "") is None:
        return dataclasses.replace(record, origin=name)
    return record

"""Whether two runs' task entries measure the same thing, and on which items they pair.

A paired difference is only a verdict when both runs scored the same items of the same data
with the same task version and options. `compare` and `gate` check that here before any
number is computed; a difference exits 2 naming the field. Two runs over different item sets
(a `limit` of 10 against one of 20) pair only when the user asks for it (`--shared-items`),
and the table then says how many items each number stands on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from rlhf_eval.errors import RunError
from rlhf_eval.results import TaskEntry

UNCOMPARED_OPTIONS = ("limit", "items", "data")
"""Options checked through the items instead: `limit` and `items` choose which items run (their
sets are compared), and `data` is a path whose content the items' hashes compare (two suites
may reach one file by different relative paths)."""

HASH_CHARS = 16


def item_hash(data: dict, cluster: str | None = None) -> str:
    """A short hash of one item's content (its data and cluster), stable across runs."""
    body = json.dumps([data, cluster], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:HASH_CHARS]


def item_hashes(documents: Iterable) -> dict[str, str]:
    """{item id: content hash} of a task entry's documents."""
    return {doc.id: item_hash(doc.data, doc.cluster) for doc in documents}


@dataclass(frozen=True)
class Pairing:
    """The items two runs' entries pair on, and each run's own item count."""

    items: frozenset[str]
    candidate_items: int
    baseline_items: int

    @property
    def partial(self) -> bool:
        return len(self.items) < max(self.candidate_items, self.baseline_items)


def check_pairing(
    candidate: TaskEntry,
    baseline: TaskEntry,
    where: tuple[str, str],
    shared_items: bool = False,
) -> Pairing:
    """The items to pair on; RunError when the entries differ in task, version, options or
    data, or (without `shared_items`) in their item sets. `where` names the two runs."""
    problem = _difference(candidate, baseline)
    if problem:
        raise RunError(
            f"task entry '{candidate.id}' measures different things in {where[0]} and "
            f"{where[1]}: {problem}. Pairing them would report a difference the models did not "
            "make. Fix: run both with the same task entry (same task version, options and data), "
            "or compare runs that did."
        )
    if not candidate.item_hashes or not baseline.item_hashes:
        old = where[0] if not candidate.item_hashes else where[1]
        raise RunError(
            f"{old} was written by an rlhf-eval that did not record which items task entry "
            f"'{candidate.id}' scored, so its pairing cannot be checked. Fix: run its suite "
            "again (finished samples and cached answers are reused; results.json is rewritten)."
        )
    shared = candidate.item_hashes.keys() & baseline.item_hashes.keys()
    changed = sorted(i for i in shared if candidate.item_hashes[i] != baseline.item_hashes[i])
    if changed:
        raise RunError(
            f"task entry '{candidate.id}': {len(changed)} item(s) have the same id but different "
            f"content in {where[0]} and {where[1]} (first: {changed[0]!r}): the data changed "
            "between the runs. Fix: evaluate both models on the same data file."
        )
    pairing = Pairing(frozenset(shared), len(candidate.item_hashes), len(baseline.item_hashes))
    if pairing.partial and not shared_items:
        raise RunError(
            f"task entry '{candidate.id}' scored {pairing.candidate_items} items in {where[0]} "
            f"and {pairing.baseline_items} in {where[1]}, {len(shared)} of them in both. Fix: "
            "run both with the same `limit`/`items`, or pass --shared-items to pair on the "
            f"{len(shared)} shared items (each number then stands on those items only)."
        )
    if not shared:
        raise RunError(
            f"task entry '{candidate.id}' has no item in common between {where[0]} and "
            f"{where[1]}. Fix: evaluate both models on the same items."
        )
    return pairing


def _difference(candidate: TaskEntry, baseline: TaskEntry) -> str:
    """What differs between two entries beyond item selection, or "" when nothing does."""
    if candidate.name != baseline.name:
        return f"task {candidate.name!r} vs {baseline.name!r}"
    if None not in (candidate.version, baseline.version) and candidate.version != baseline.version:
        return f"task version {candidate.version} vs {baseline.version}"
    a, b = (
        {k: v for k, v in entry.options.items() if k not in UNCOMPARED_OPTIONS}
        for entry in (candidate, baseline)
    )
    fields = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return "; ".join(f"option `{k}`: {a.get(k)!r} vs {b.get(k)!r}" for k in fields)

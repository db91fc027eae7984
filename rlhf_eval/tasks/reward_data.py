"""The reward_model task's data: human-ranked completions of a prompt, read from any preference
format rlhf_common.instruction_data reads (HH-RLHF transcripts, TRL preference rows, K-way
rankings, the labels `rlhf-eval label --export` writes), RewardBench's rows, or a run's labels.

Each ranking keeps where it came from (file:line), its subset (RewardBench's `subset`, or a
row's `subset`/`category`) and its labeler. A ranking that cannot measure a reward model (two
identical texts ranked apart, an empty response) is kept with the problem named, so the task
fails that item visibly (counted in the report) instead of scoring it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rlhf_common.datasets import resolve_path
from rlhf_common.instruction_data.files import Row, field_error, identifier, read_rows, text
from rlhf_common.instruction_data.formats import FORMATS, detect_format
from rlhf_common.instruction_data.records import Ranking
from rlhf_eval.errors import DataError
from rlhf_eval.labeling.export import rankings_from_labels
from rlhf_eval.labeling.items import load_labeling_set
from rlhf_eval.labeling.store import LabelStore

PreferenceFormat = Literal["auto", "hh_rlhf", "preference", "kway", "rewardbench"]
LABELS_PREFIX = "labels:"
"""`data: labels:<run folder>` reads the rankings people gave in `rlhf-eval label`."""

Turns = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RankedItem:
    """K completions of one prompt, ranked by people (rank 0 best, ties share a rank)."""

    id: str
    prompt: str | Turns
    completions: tuple[str, ...]
    ranks: tuple[int, ...]
    source: str
    """file:line, for messages."""
    subset: str | None = None
    labeler: str | None = None

    @property
    def cluster(self) -> str:
        """Rankings of one prompt (several labelers, or pairs cut from one ranking) are
        resampled together: the cluster is the prompt's hash."""
        return hashlib.sha256(repr(self.prompt).encode()).hexdigest()[:16]

    def problem(self) -> str | None:
        """Why this ranking cannot measure a reward model, with where and the fix; None if it
        can."""
        empty = [i for i, c in enumerate(self.completions) if not c.strip()]
        if empty:
            return (
                f"{self.source}: response {empty[0] + 1} of {len(self.completions)} is empty, "
                "so the pair says nothing about what people prefer. Fix: drop the row or give "
                "the response's text."
            )
        for i, a in enumerate(self.completions):
            for j in range(i + 1, len(self.completions)):
                if a == self.completions[j] and self.ranks[i] != self.ranks[j]:
                    names = ("chosen", "rejected") if len(self.completions) == 2 else None
                    what = (
                        "the chosen and rejected responses are the same text"
                        if names
                        else f"responses {i + 1} and {j + 1} are the same text ranked apart"
                    )
                    return (
                        f"{self.source}: {what}, so no reward model can rank them. Fix: drop "
                        "the row (or give the two texts the same rank)."
                    )
        return None


def read_ranked_items(
    data: str, base_dir: Path, format: PreferenceFormat = "auto"
) -> list[RankedItem]:
    """The rankings of `data` (a file relative to the suite's folder, `hub:<id>`, or
    `labels:<run folder>`), in file order; DataError naming file, line and fix otherwise."""
    if data.startswith(LABELS_PREFIX):
        return _run_labels(resolve_path(data[len(LABELS_PREFIX) :], base_dir))
    source = data if data.startswith("hub:") else str(resolve_path(data, base_dir))
    rows = read_rows(source)
    if not rows:
        raise DataError(f"{source}: the file holds no rows. Fix: point at a non-empty file.")
    if format == "rewardbench" or (format == "auto" and _is_rewardbench(rows[0].data)):
        items = [_rewardbench(row, i) for i, row in enumerate(rows)]
    else:
        fmt = detect_format(rows) if format == "auto" else FORMATS[format]
        if "rankings" not in fmt.readers:
            raise DataError(
                f"{rows[0].where}: the {fmt.name} format holds no rankings. Fix: give "
                "preference data (hh_rlhf, preference, kway, rewardbench rows)."
            )
        by_place = {row.where: (i, row) for i, row in enumerate(rows)}
        items = []
        for ranking in fmt.readers["rankings"](rows):
            i, row = by_place[ranking.source]
            items.append(_item(ranking, i, _subset(row)))
    _check_unique(items)
    return items


def _is_rewardbench(row: dict) -> bool:
    return all(isinstance(row.get(k), str) for k in ("prompt", "chosen", "rejected", "subset"))


_REWARDBENCH_FIX = "RewardBench rows have text `prompt`, `chosen`, `rejected` and `subset`"


def _rewardbench(row: Row, index: int) -> RankedItem:
    """A RewardBench row: the prompt is one user turn, as RewardBench renders it through the
    reward model's chat template."""
    prompt = text(row, "prompt", _REWARDBENCH_FIX)
    if not prompt.strip():
        raise field_error(row, "prompt", "is empty", "give the prompt's text or drop the row")
    return RankedItem(
        id=identifier(row, "id") or f"row{index + 1}",
        prompt=(("user", prompt),),
        completions=(
            text(row, "chosen", _REWARDBENCH_FIX),
            text(row, "rejected", _REWARDBENCH_FIX),
        ),
        ranks=(0, 1),
        source=row.where,
        subset=text(row, "subset", _REWARDBENCH_FIX),
    )


def _item(ranking: Ranking, index: int, subset: str | None) -> RankedItem:
    prompt = ranking.prompt
    turns = prompt if isinstance(prompt, str) else tuple((m.role, m.content) for m in prompt)
    return RankedItem(
        id=ranking.id or f"row{index + 1}",
        prompt=turns,
        completions=ranking.completions,
        ranks=ranking.ranks,
        source=ranking.source,
        subset=subset,
        labeler=ranking.labeler,
    )


def _subset(row: Row) -> str | None:
    for name in ("subset", "category"):
        value = row.data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _run_labels(run_path: Path) -> list[RankedItem]:
    """The rankings people gave in `rlhf-eval label` for a run (what --export writes)."""
    try:
        labeling = load_labeling_set(run_path)
        labels = LabelStore.for_run(labeling.run_path, create=False).labels(labeling.task_id)
    except Exception as error:  # noqa: BLE001  (RunError and sqlite errors alike)
        raise DataError(
            f"{run_path}: cannot read the run's labels ({error}). Fix: point `data: labels:` at "
            "a run folder labeled with `rlhf-eval label`."
        ) from error
    rankings, _ = rankings_from_labels(labels)
    if not rankings:
        raise DataError(
            f"{run_path}: the run has no labels that rank two outputs apart. Fix: label some "
            f"prompts with `rlhf-eval label {run_path}` first."
        )
    where = f"{run_path} labels of {labeling.task_id}"
    return [
        RankedItem(
            id=r.id or f"label{i + 1}",
            prompt=r.prompt
            if isinstance(r.prompt, str)
            else tuple((m.role, m.content) for m in r.prompt),
            completions=r.completions,
            ranks=r.ranks,
            source=f"{where} ({r.id})",
            labeler=r.labeler,
        )
        for i, r in enumerate(rankings)
    ]


def _check_unique(items: list[RankedItem]) -> None:
    seen: dict[str, str] = {}
    for item in items:
        if item.id in seen:
            raise DataError(
                f"{item.source}: id {item.id!r} is also the id of {seen[item.id]}; samples pair "
                "reward models by id. Fix: give each row its own `id` (or drop the `id` field, "
                "and rows are named by position)."
            )
        seen[item.id] = item.source

"""Human labels out as K-way rankings in rlhf-train's reward-model format (labels train the next
RM, as the paper's comparisons trained its RM, section 3.5)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rlhf_common.instruction_data import Ranking, write_rankings
from rlhf_common.instruction_data.records import dense_ranks
from rlhf_eval.errors import RunError
from rlhf_eval.labeling.items import load_labeling_set
from rlhf_eval.labeling.store import Label, LabelStore


@dataclass(frozen=True)
class Export:
    path: Path
    written: int
    all_tied: int
    """(prompt, labeler) rankings left out because every output shared one rank: they hold
    no comparison for the reward model's loss."""


def group_rankings(labels: list[Label]) -> dict[tuple[str, str], list[Label]]:
    """Labels grouped per (doc id, labeler): one ranking each, its outputs in model order."""
    groups: dict[tuple[str, str], list[Label]] = defaultdict(list)
    for label in labels:
        groups[(label.doc_id, label.labeler)].append(label)
    return {key: sorted(group, key=lambda x: x.model) for key, group in sorted(groups.items())}


def rankings_from_labels(labels: list[Label]) -> tuple[list[Ranking], int]:
    """One Ranking per (prompt, labeler) with ranks 0 (best) upwards, ties sharing a rank, and
    the number of all-tied rankings left out."""
    rankings, all_tied = [], 0
    for (doc_id, labeler), group in group_rankings(labels).items():
        ranks = dense_ranks([x.rank for x in group])
        if len(set(ranks)) < 2:
            all_tied += 1
            continue
        rankings.append(
            Ranking(
                prompt=group[0].prompt,
                completions=tuple(x.output for x in group),
                ranks=ranks,
                id=f"{doc_id}:{labeler}",
                origin="rlhf-eval label",
                labeler=labeler,
            )
        )
    return rankings, all_tied


def export_rankings(labels: list[Label], out: Path) -> Export:
    """Write the labels' rankings to `out` (.jsonl, .json or .parquet) in the `kway` format:
    {id, prompt, completions, ranks}, what `rlhf-train rm` reads."""
    rankings, all_tied = rankings_from_labels(labels)
    path = write_rankings(rankings, out, format="kway")
    return Export(Path(path), len(rankings), all_tied)


def export_run_labels(run_path: Path, out: Path, task: str | None = None) -> Export:
    """Every labeler's rankings of a run's task entry, written to `out` for `rlhf-train rm`."""
    labeling = load_labeling_set(run_path, task)
    labels = LabelStore.for_run(labeling.run_path, create=False).labels(labeling.task_id)
    if not labels:
        raise RunError(
            f"{labeling.run_path}: no labels of task entry '{labeling.task_id}' yet. Fix: label "
            f"some prompts with `rlhf-eval label {labeling.run_path}` first (or pass --task)."
        )
    return export_rankings(labels, out)

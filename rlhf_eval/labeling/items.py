"""What a labeler sees: one task entry's prompts and every model's output, read from a run."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf_common.instruction_data.records import MAX_K
from rlhf_eval.errors import RunError
from rlhf_eval.run_settings import StatsSettings
from rlhf_eval.store import RunDir

DEFAULT_TASK = "instructions"
"""The task whose entry `rlhf-eval label` opens when --task is not given."""


@dataclass(frozen=True)
class Output:
    model: str
    text: str


@dataclass(frozen=True)
class Item:
    """One prompt and the outputs of the K models that answered it without error."""

    doc_id: str
    prompt: str
    outputs: tuple[Output, ...]
    category: str | None = None
    closed_domain: bool | None = None
    instruction: str | None = None
    """The request as a person reads it (an `instructions` sample's instruction), shown in
    place of the rendered prompt; the prompt is what the models saw and what an export holds."""
    input: str | None = None

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(o.model for o in self.outputs)

    def text(self, model: str) -> str:
        return next(o.text for o in self.outputs if o.model == model)


@dataclass(frozen=True)
class LabelingSet:
    """The items of one task entry of a run, in the task's document order."""

    run_path: Path
    task_id: str
    models: tuple[str, ...]
    baseline: str | None
    items: tuple[Item, ...]
    stats: StatsSettings
    """The suite's statistics settings (confidence, bootstrap_iterations)."""
    seed: int

    def item(self, doc_id: str) -> Item | None:
        return next((i for i in self.items if i.doc_id == doc_id), None)


def display_order(labeler: str, item: Item) -> list[Output]:
    """The item's outputs shuffled for one labeler: seeded by labeler and prompt, so a reload
    shows the same order, while the order says nothing about which model wrote what (the
    paper's labelers saw outputs blind and in random order)."""
    seed = int(hashlib.sha256(f"{labeler}\x00{item.doc_id}".encode()).hexdigest()[:16], 16)
    outputs = sorted(item.outputs, key=lambda o: o.model)
    random.Random(seed).shuffle(outputs)
    return outputs


def load_labeling_set(run_path: Path, task_id: str | None = None) -> LabelingSet:
    """The prompts and outputs of `task_id` (default: the first `instructions` entry, else the
    first entry whose samples hold generated text); RunError if there is nothing to label."""
    run = RunDir.open(Path(run_path))
    manifest = run.manifest()
    entries = {
        entry: version.partition("@")[0] for entry, version in manifest.task_versions.items()
    }
    roles = {m.name: m.role for m in manifest.models}
    samples_dir = run.path / "samples"
    folders = sorted(p.name for p in samples_dir.iterdir()) if samples_dir.is_dir() else []
    models = list(roles) + [f for f in folders if f not in roles]
    baseline = next((name for name, role in roles.items() if role == "baseline"), None)
    # The baseline first: its prompt is the one shown, and its order is the items' order.
    models.sort(key=lambda m: m != baseline)

    def samples(entry: str) -> dict[str, list[dict]]:
        return {m: run.read_samples(m, entry) for m in models}

    if task_id is not None:
        if task_id not in entries:
            raise RunError(
                f"{run.path}: the run has no task entry '{task_id}'. Fix: pass --task with one "
                f"of: {', '.join(entries) or '(none)'}."
            )
        chosen = task_id
    else:
        ordered = sorted(entries, key=lambda e: entries[e] != DEFAULT_TASK)
        chosen = next((e for e in ordered if _generated(samples(e))), None)
        if chosen is None:
            raise RunError(
                f"{run.path} has no generation samples to label (task entries: "
                f"{', '.join(entries) or 'none'}). Fix: run a suite with an `instructions` task "
                "(or another generation task) first, then label that run."
            )
    by_model = samples(chosen)
    if not _generated(by_model):
        raise RunError(
            f"{run.path}: task entry '{chosen}' has no generated text in samples/*/{chosen}.jsonl "
            "(its predictions are not text, or every sample failed). Fix: pass --task with a "
            "generation task's entry, e.g. an `instructions` task."
        )
    items = _items(by_model, models)
    if not items:
        raise RunError(
            f"{run.path}: no prompt of task entry '{chosen}' has outputs from two or more models "
            f"(models: {', '.join(models)}). Fix: run the suite with at least two models so "
            "there is something to compare."
        )
    too_many = next((i for i in items if len(i.outputs) > MAX_K), None)
    if too_many is not None:
        raise RunError(
            f"{run.path}: prompt {too_many.doc_id} has {len(too_many.outputs)} outputs; a ranking "
            f"compares at most {MAX_K} (InstructGPT's K range). Fix: label a run with at most "
            f"{MAX_K} models."
        )
    return LabelingSet(
        run.path, chosen, tuple(models), baseline, tuple(items), manifest.stats, manifest.seed or 0
    )


def _generated(by_model: dict[str, list[dict]]) -> bool:
    return any(_text(s) is not None for rows in by_model.values() for s in rows)


def _text(sample: dict) -> str | None:
    prediction = sample.get("prediction")
    if sample.get("error") is None and isinstance(prediction, str):
        return prediction
    return None


def _items(by_model: dict[str, list[dict]], models: list[str]) -> list[Item]:
    first: dict[str, dict] = {}  # doc id -> the first sample seen (the baseline's when it has one)
    outputs: dict[str, list[Output]] = {}
    for model in models:
        for sample in by_model[model]:
            doc_id = str(sample["doc_id"])
            first.setdefault(doc_id, sample)
            text = _text(sample)
            if text is not None and model not in (o.model for o in outputs.get(doc_id, [])):
                outputs.setdefault(doc_id, []).append(Output(model, text))
    items = []
    for doc_id, sample in first.items():
        answered = outputs.get(doc_id, [])
        if len(answered) < 2:
            continue
        details = sample.get("details") or {}
        closed = details.get("closed_domain")
        items.append(
            Item(
                doc_id=doc_id,
                prompt=str(sample.get("prompt") or ""),
                outputs=tuple(answered),
                category=details.get("category"),
                closed_domain=closed if isinstance(closed, bool) else None,
                instruction=_optional_text(details.get("instruction")),
                input=_optional_text(details.get("input")),
            )
        )
    return items


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None

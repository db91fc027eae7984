"""What a report is rendered from: a run's manifest, results and the first samples per table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rlhf_eval.errors import RunError
from rlhf_eval.manifest import Manifest
from rlhf_eval.records import Sample
from rlhf_eval.results import Results
from rlhf_eval.store import RunDir


@dataclass(frozen=True)
class Run:
    run_dir: Path
    manifest: Manifest
    results: Results


@dataclass
class SampleTable:
    """The first `cap` samples of one (model, task) and how many the file holds in all."""

    model: str
    task: str
    path: Path
    """Relative to the run directory, for the "the rest are in ..." note."""
    samples: list[Sample] = field(default_factory=list)
    total: int = 0
    missing: bool = False
    skipped_last_line: bool = False


def load_run(run_dir: Path) -> Run:
    store = RunDir.open(Path(run_dir))
    return Run(run_dir=store.path, manifest=store.manifest(), results=store.results())


def load_sample_table(store: RunDir, model: str, task: str, cap: int) -> SampleTable:
    path = store.samples_path(model, task)
    table = SampleTable(model=model, task=task, path=path.relative_to(store.path))
    if not path.is_file():
        table.missing = True
        return table
    records = store.read_samples(model, task)
    table.total = len(records)
    table.skipped_last_line = table.total < sum(1 for raw in path.open("rb") if raw.strip())
    try:
        table.samples = [Sample(**record) for record in records[:cap]]
    except TypeError as error:
        raise RunError(
            f"{path}: a line is not a sample ({error}); it was not written by this version of "
            "rlhf-eval. Fix: run the suite again to regenerate it."
        ) from error
    return table


def load_sample_tables(run: Run, cap: int) -> list[SampleTable]:
    """One SampleTable per (model, task) of the run, models and tasks in results order."""
    store = RunDir(run.run_dir)
    return [
        load_sample_table(store, model.name, task.id, cap)
        for model in run.results.models
        for task in run.results.tasks
    ]

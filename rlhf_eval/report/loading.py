"""Read a finished run directory (manifest, results.json, samples): all a report sees."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlhf_eval.errors import RunError
from rlhf_eval.results import SCHEMA_VERSION, Results
from rlhf_eval.tasks.base import Sample

log = logging.getLogger(__name__)

Manifest = dict[str, Any]
"""manifest.json as read: the report only looks up keys, so it stays a plain mapping."""


@dataclass(frozen=True)
class Run:
    """What a report is rendered from: the run directory's manifest and results."""

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


def _read_json(path: Path, what: str, fix: str) -> Any:
    if not path.is_file():
        raise RunError(f"{path} not found: {what}. {fix}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is not valid JSON ({e}). {fix}") from e


def load_manifest(run_dir: Path) -> Manifest:
    """manifest.json as a mapping; RunError when it is missing or not a JSON object."""
    path = run_dir / "manifest.json"
    fix = "Pass a run directory written by `rlhf-eval run`, or re-run the suite to rewrite it."
    data = _read_json(path, "every run directory has a manifest", fix)
    if not isinstance(data, dict):
        raise RunError(f"{path} must hold a JSON object, found {type(data).__name__}. {fix}")
    return data


def load_results(run_dir: Path) -> Results:
    """results.json validated against the Results schema; RunError says what is wrong."""
    path = run_dir / "results.json"
    fix = (
        "The run may not have finished: re-run the suite into this directory (answers are "
        "cached, so finished work is not redone), then render the report again."
    )
    data = _read_json(path, "the run has no results yet", fix)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise RunError(
            f"{path} has schema_version {version}, newer than this rlhf-eval understands "
            f"({SCHEMA_VERSION}): upgrade rlhf-eval to render it."
        )
    try:
        return Results.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in e.errors()[:5]
        )
        raise RunError(f"{path} does not match the results schema ({problems}). {fix}") from e


def load_run(run_dir: Path) -> Run:
    """Manifest and results of one run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run directory {run_dir} does not exist: pass the folder under runs/.")
    return Run(run_dir=run_dir, manifest=load_manifest(run_dir), results=load_results(run_dir))


def samples_path(run_dir: Path, model: str, task: str) -> Path:
    """Where the runner writes one model's samples for one task."""
    return run_dir / "samples" / model / f"{task}.jsonl"


class _Unparseable(Exception):
    """A line that is not JSON: fatal in the middle of a file, a truncated write at its end."""


def _parse_line(path: Path, lineno: int, raw: bytes) -> Sample:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _Unparseable(str(e)) from e
    if not isinstance(data, dict):
        raise RunError(f"{path}:{lineno}: expected a JSON object (one Sample), found {data!r:.60}")
    try:
        return Sample(**data)
    except TypeError as e:
        raise RunError(
            f"{path}:{lineno}: not a Sample ({e}); the file was not written by this "
            "version of rlhf-eval: re-run the suite to regenerate it."
        ) from e


def iter_samples(path: Path) -> Iterator[Sample]:
    """The Samples of one samples .jsonl file, in file order.

    A run killed mid-write leaves a truncated last line, so an unparseable last line is
    skipped with a warning; an unparseable line anywhere else means corruption and raises.
    """
    pending: tuple[int, bytes] | None = None
    # Binary read: a kill can also cut a multi-byte UTF-8 character in half.
    with Path(path).open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            if pending is not None:
                yield _parse_strict(path, *pending)
            pending = (lineno, raw)
    if pending is None:
        return
    try:
        yield _parse_line(path, *pending)
    except _Unparseable as e:
        log.warning("%s:%d: skipping truncated last line (%s)", path, pending[0], e)


def _parse_strict(path: Path, lineno: int, raw: bytes) -> Sample:
    try:
        return _parse_line(path, lineno, raw)
    except _Unparseable as e:
        raise RunError(
            f"{path}:{lineno}: corrupt line ({e}); only a truncated last line is tolerated. "
            "Delete the file and re-run the suite to regenerate it."
        ) from e


def load_sample_table(run_dir: Path, model: str, task: str, cap: int) -> SampleTable:
    """The first `cap` samples of one (model, task); counts the rest without keeping them."""
    path = samples_path(run_dir, model, task)
    table = SampleTable(model=model, task=task, path=path.relative_to(run_dir))
    if not path.is_file():
        table.missing = True
        return table
    n_lines = sum(1 for raw in path.open("rb") if raw.strip())
    for sample in iter_samples(path):
        table.total += 1
        if len(table.samples) < cap:
            table.samples.append(sample)
    table.skipped_last_line = table.total < n_lines
    return table


def load_sample_tables(run: Run, cap: int) -> list[SampleTable]:
    """One SampleTable per (model, task) of the run, models and tasks in results order."""
    return [
        load_sample_table(run.run_dir, model.name, task.id, cap)
        for model in run.results.models
        for task in run.results.tasks
    ]

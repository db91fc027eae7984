"""run_suite(): every model on every task, with a progress bar, a response cache and resume, in
three steps: prepare the run, evaluate each model, finalise the results."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from rlhf_common.model_aliases import cache_home
from rlhf_eval import __version__
from rlhf_eval.aggregate import compute_results
from rlhf_eval.distributed import Processes, start_processes
from rlhf_eval.errors import RlhfEvalError, SuiteError
from rlhf_eval.judging import Judges
from rlhf_eval.manifest import Manifest, ModelRecord, RequestCounts
from rlhf_eval.model_loading import load_backend
from rlhf_eval.planner import bind_items, build_tasks, check_precomputed, read_documents
from rlhf_eval.records import Document
from rlhf_eval.scoring_services import RunServices
from rlhf_eval.store import (
    ResponseCache,
    RunDir,
    RunLock,
    hardware,
    now,
    package_versions,
)
from rlhf_eval.suite import LoadedSuite, ModelSpec, check_writable_folders
from rlhf_eval.task_evaluation import evaluate_task
from rlhf_eval.tasks.base import Task


@dataclass
class RunTotals:
    """What the manifest adds up over every attempt at the run, updated as each model ends:
    the models' identities (in the order first recorded), times and request counts."""

    models: dict[str, ModelRecord]
    wall_seconds: dict[str, float]
    task_wall_seconds: dict[str, dict[str, float]]
    requests: dict[str, RequestCounts]

    @classmethod
    def recorded(cls, manifest: Manifest) -> RunTotals:
        """The totals an earlier attempt left in the manifest (nothing for a new run)."""
        return cls(
            models={m.name: m for m in manifest.models},
            wall_seconds=dict(manifest.wall_seconds or {}),
            task_wall_seconds={m: dict(t) for m, t in (manifest.task_wall_seconds or {}).items()},
            requests=dict(manifest.requests or {}),
        )


@dataclass(frozen=True)
class PreparedRun:
    """Everything the models' evaluations share, ready before any model loads."""

    loaded: LoadedSuite
    processes: Processes
    selected: set[str]
    """The suite models this run evaluates and reports."""
    tasks: dict[str, Task]
    """The task entries with documents (skipped ones left out)."""
    documents: dict[str, list[Document]]
    skipped: dict[str, str]
    """Task entries skipped (hub data out of reach), with the reason."""
    cache: ResponseCache
    run: RunDir
    judges: Judges
    totals: RunTotals


def run_suite(
    loaded: LoadedSuite,
    run_name: str | None = None,
    overwrite: bool = False,
    use_cache: bool = True,
    show_progress: bool = True,
    processes: Processes | None = None,
    models: list[str] | None = None,
) -> RunDir:
    """Evaluate, aggregate and render; a second call with the same suite resumes the first.

    `models` limits the run and its results to those suite models (a later run without it
    evaluates the rest, resuming from the same run folder and cache).

    Under `torchrun`/`accelerate launch` each process takes its share of every task's pending
    documents (rlhf_eval/distributed.py); process 0 writes the manifest and the results.

    Process 0 holds the run folder's lock from start to end: a second copy of the same run
    exits with a RunError naming the process that holds it.
    """
    processes = processes or start_processes()
    selected = _selected_models(loaded, models)
    check_writable_folders(loaded)
    lock = RunLock(loaded.resolve(loaded.suite.output_dir) / (run_name or loaded.name))
    try:
        prepared = prepare(loaded, run_name, overwrite, use_cache, processes, selected, lock)
        with _progress(show_progress and processes.is_main) as progress:
            for spec in _evaluation_order(prepared):
                evaluate_model(prepared, spec, progress)
        return finalise(prepared)
    finally:
        lock.release()


def prepare(
    loaded: LoadedSuite,
    run_name: str | None,
    overwrite: bool,
    use_cache: bool,
    processes: Processes,
    selected: set[str],
    lock: RunLock,
) -> PreparedRun:
    """Build the tasks and read every document, open the response cache, lock and start (or
    reopen) the run folder, and open the judges."""
    suite = loaded.suite
    every_task = build_tasks(loaded)
    # Read every dataset before loading any model: a bad file should fail in seconds.
    documents, skipped = read_documents(every_task)
    tasks = {task_id: every_task[task_id] for task_id in documents}
    if processes.is_main:
        for task_id, reason in skipped.items():
            print(f"skipped task {task_id}: {reason}", file=sys.stderr)
    documents = check_precomputed(loaded, tasks, documents)
    cache_dir = loaded.resolve(suite.cache_dir) if suite.cache_dir else cache_home()
    cache = ResponseCache(cache_dir / "responses.sqlite" if use_cache else None)
    path = loaded.resolve(suite.output_dir) / (run_name or loaded.name)
    # The run folder is locked before it is touched, once the inputs are known to be good.
    _on_main(processes, lock.acquire, lambda: None)
    run = _on_main(
        processes,
        # The fingerprint covers every entry, skipped or not: a later run that reaches the
        # hub resumes this one.
        lambda: RunDir.start(
            path, _manifest(loaded, run_name, every_task, skipped), overwrite=overwrite
        ),
        lambda: RunDir.open(path),
    )
    totals = RunTotals.recorded(run.manifest())
    judges = Judges(loaded, cache)
    return PreparedRun(
        loaded, processes, selected, tasks, documents, skipped, cache, run, judges, totals
    )


def evaluate_model(
    prepared: PreparedRun, spec: ModelSpec, progress: Progress | _NoProgress
) -> None:
    """Answer and score the model's pending documents of every task, one bar per task, then
    record its identity, times and request counts (prepared.totals and the manifest). A model
    an earlier attempt finished is left alone: its weights are not loaded."""
    run, processes, totals = prepared.run, prepared.processes, prepared.totals
    documents, judges = prepared.documents, prepared.judges
    pending = _pending_documents(prepared, spec.name)
    if spec.name in totals.models and not any(pending.values()):
        return  # finished in an earlier attempt: no need to load the weights
    started = time.perf_counter()
    if spec.backend == "hf":
        spec = spec.model_copy(update={"device": processes.device(spec.device)})
    backend = load_backend(spec, prepared.loaded)
    bind_items(backend, prepared.tasks, documents)
    totals.models[spec.name] = ModelRecord(
        name=spec.name,
        role=spec.role,
        identity=backend.identity,
        source=spec.source(),
        dtype=spec.dtype,
        parameters=getattr(backend, "parameters", None),
        # The engine and its version where the backend names one (vLLM).
        engine=getattr(backend, "engine", None),
    )
    if processes.is_main:
        run.write_manifest(
            run.manifest().model_copy(
                update={
                    "models": list(totals.models.values()),
                    "processes": processes.world_size,
                }
            )
        )
    count = {"computed": 0, "cached": 0}
    services = RunServices(
        spec.name, prepared.loaded.baseline_of(spec.name), judges, run, prepared.loaded.base_dir
    )
    for task_id, docs in pending.items():
        mine = processes.shard(docs)
        label = f"{spec.name} · {task_id}"
        bar = progress.add_task(label, total=len(documents[task_id]))
        progress.update(bar, completed=len(documents[task_id]) - len(docs))
        task_started = time.perf_counter()
        evaluate_task(
            prepared.tasks[task_id],
            mine,
            backend,
            prepared.cache,
            run,
            spec,
            task_id,
            # Process 0's bar counts every process's share as its own advances.
            lambda n, bar=bar: progress.advance(bar, n * processes.world_size),
            count,
            services,
        )
        seconds = max(processes.gather(time.perf_counter() - task_started))
        per_task = totals.task_wall_seconds.setdefault(spec.name, {})
        per_task[task_id] = per_task.get(task_id, 0.0) + seconds
    backend.close()
    elapsed = max(processes.gather(time.perf_counter() - started))
    totals.wall_seconds[spec.name] = totals.wall_seconds.get(spec.name, 0.0) + elapsed
    for share in processes.gather(count):
        _add_counts(totals.requests, {spec.name: share})
    judge_counts = processes.gather(dict(judges.counts))
    if processes.is_main:
        manifest = run.manifest()
        recorded = {
            "wall_seconds": totals.wall_seconds,
            "task_wall_seconds": totals.task_wall_seconds,
            "requests": totals.requests,
            **_judge_record(manifest, judges, judge_counts),
        }
        run.write_manifest(manifest.model_copy(update=recorded))
    judges.counts.clear()


def finalise(prepared: PreparedRun) -> RunDir:
    """Close the judges and the cache; once every process's samples are on disk, process 0
    aggregates the selected models' samples into results.json."""
    run, processes, totals = prepared.run, prepared.processes, prepared.totals
    prepared.judges.close()
    prepared.cache.close()
    processes.barrier()  # every share is on disk before process 0 aggregates
    if processes.is_main:
        suite_models = prepared.loaded.suite.models
        models = [
            totals.models[m.name]
            for m in suite_models
            if m.name in totals.models and m.name in prepared.selected
        ]
        run.write_results(
            compute_results(
                run,
                prepared.loaded,
                prepared.tasks,
                models,
                prepared.documents,
                totals.wall_seconds,
                skipped=prepared.skipped,
                task_wall=totals.task_wall_seconds,
            )
        )
    processes.barrier()
    return run


def _evaluation_order(prepared: PreparedRun) -> list[ModelSpec]:
    """The selected models, the baseline first: pairwise tasks read its samples while scoring
    the other models."""
    suite = prepared.loaded.suite
    baselines = {m.name for m in suite.models if m.role == "baseline"}
    ordered = sorted(suite.models, key=lambda m: m.name not in baselines)
    return [spec for spec in ordered if spec.name in prepared.selected]


def _pending_documents(prepared: PreparedRun, model: str) -> dict[str, list[Document]]:
    """Each task's documents without a sample of `model` yet. Process 0 cuts any torn last
    line first; the others read after it is done."""
    run, processes = prepared.run, prepared.processes
    if processes.is_main:
        pending = {
            task_id: _pending(run, model, task_id, docs, repair=True)
            for task_id, docs in prepared.documents.items()
        }
    processes.barrier()
    if not processes.is_main:
        pending = {
            task_id: _pending(run, model, task_id, docs)
            for task_id, docs in prepared.documents.items()
        }
    return pending


def _selected_models(loaded: LoadedSuite, names: list[str] | None) -> set[str]:
    """The suite's model names a run evaluates: all, or those asked for (each must exist)."""
    known = [m.name for m in loaded.suite.models]
    if names is None:
        return set(known)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SuiteError(
            f"{loaded.path}: --models names {', '.join(unknown) or 'nothing'}, not a model of "
            f"the suite. Fix: choose from {', '.join(known)}."
        )
    return set(names)


def _on_main(processes: Processes, main, others):
    """main() in process 0, then others() everywhere else once it is done; an error in
    process 0 is raised in every process, so none waits forever for the rest."""
    error = None
    result = None
    if processes.is_main:
        try:
            result = main()
        except RlhfEvalError as caught:
            error = caught
    failures = processes.gather(None if error is None else (type(error), str(error)))
    if failures[0] is not None:
        if error is not None:
            raise error
        kind, message = failures[0]
        raise kind(message)
    return result if processes.is_main else others()


def _add_counts(into: dict[str, RequestCounts], more: dict[str, dict[str, int]]) -> None:
    """Add running request counts ({name: {"computed": n, "cached": m}}) into `into`."""
    for name, count in more.items():
        into[name] = into.get(name, RequestCounts()).plus(count)


def _pending(
    run: RunDir, model: str, task_id: str, docs: list[Document], repair: bool = False
) -> list[Document]:
    done = {s["doc_id"] for s in run.read_samples(model, task_id, repair=repair)}
    return [d for d in docs if d.id not in done]


def _judge_record(
    manifest: Manifest, judges: Judges, shares: list[dict[str, dict[str, int]]]
) -> dict[str, object]:
    """The manifest's `judges` (identities) and `judge_requests` (every process's `shares` of
    the counts), merged with earlier attempts; nothing while no judge was used."""
    known = {j.name: j for j in manifest.judges or []}
    known.update({j.name: j for j in judges.identities()})
    counts = dict(manifest.judge_requests or {})
    for share in shares:
        _add_counts(counts, share)
    return {"judges": list(known.values()), "judge_requests": counts} if known else {}


def _manifest(
    loaded: LoadedSuite, run_name: str | None, tasks: dict[str, Task], skipped: dict[str, str]
) -> Manifest:
    versions = {task_id: f"{task.name}@{task.version}" for task_id, task in tasks.items()}
    fingerprint = json.dumps([loaded.hash, __version__, versions], sort_keys=True)
    return Manifest(
        fingerprint=hashlib.sha256(fingerprint.encode()).hexdigest(),
        rlhf_eval_version=__version__,
        task_versions=versions,
        run_name=run_name or loaded.name,
        suite_name=loaded.name,
        suite_path=str(loaded.path),
        suite_hash=loaded.hash,
        suite=loaded.text,
        created=now(),
        seed=loaded.suite.seed,
        stats=loaded.suite.stats,
        gates=loaded.suite.gates,
        packages=package_versions(),
        hardware=hardware(),
        command=shlex.join(sys.argv),
        models=[],
        skipped_tasks=skipped,
    )


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, *args, **kwargs) -> None:
        pass

    def advance(self, *args, **kwargs) -> None:
        pass


def _progress(show: bool):
    if not show:
        return _NoProgress()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


def default_report_dir(loaded: LoadedSuite, run: RunDir) -> Path:
    suite = loaded.suite
    return loaded.resolve(suite.report_dir) if suite.report_dir else run.path

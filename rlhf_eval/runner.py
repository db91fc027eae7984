"""run_suite(): every model on every task, with a progress bar, a response cache and resume."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from rlhf_common.model_aliases import cache_home
from rlhf_eval import __version__
from rlhf_eval.aggregate import compute_results
from rlhf_eval.answering import answer
from rlhf_eval.distributed import Processes, start_processes
from rlhf_eval.errors import RlhfEvalError, SuiteError
from rlhf_eval.judging import Judges
from rlhf_eval.manifest import Manifest, ModelRecord, RequestCounts
from rlhf_eval.model_loading import load_backend
from rlhf_eval.models.base import ModelBackend
from rlhf_eval.planner import (
    bind_items,
    build_tasks,
    check_precomputed,
    entry_requests,
    read_documents,
)
from rlhf_eval.records import Document, Sample
from rlhf_eval.store import (
    ResponseCache,
    RunDir,
    RunLock,
    hardware,
    now,
    package_versions,
)
from rlhf_eval.suite import LoadedSuite, ModelSpec, check_writable_folders
from rlhf_eval.tasks.base import RunContext, Task

# Documents per unit of work: each unit's samples are on disk before the next one starts.
CHUNK_DOCUMENTS = 64


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
        return _run_locked(
            loaded, run_name, overwrite, use_cache, show_progress, processes, selected, lock
        )
    finally:
        lock.release()


def _run_locked(
    loaded: LoadedSuite,
    run_name: str | None,
    overwrite: bool,
    use_cache: bool,
    show_progress: bool,
    processes: Processes,
    selected: set[str],
    lock: RunLock,
) -> RunDir:
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
    manifest = run.manifest()
    identities = {m.name: m for m in manifest.models}
    wall = dict(manifest.wall_seconds or {})
    task_wall = {m: dict(t) for m, t in (manifest.task_wall_seconds or {}).items()}
    counts = dict(manifest.requests or {})
    judges = Judges(loaded, cache)
    for task in tasks.values():
        task.judges = judges
    baselines = {m.name for m in suite.models if m.role == "baseline"}
    with _progress(show_progress and processes.is_main) as progress:
        # The baseline first: pairwise tasks read its samples while scoring the other models.
        for spec in sorted(suite.models, key=lambda m: m.name not in baselines):
            if spec.name not in selected:
                continue
            # Process 0 cuts any torn last line first; the others read after it is done.
            if processes.is_main:
                pending = {
                    task_id: _pending(run, spec.name, task_id, docs, repair=True)
                    for task_id, docs in documents.items()
                }
            processes.barrier()
            if not processes.is_main:
                pending = {
                    task_id: _pending(run, spec.name, task_id, docs)
                    for task_id, docs in documents.items()
                }
            if spec.name in identities and not any(pending.values()):
                continue  # finished in an earlier attempt: no need to load the weights
            started = time.perf_counter()
            if spec.backend == "hf":
                spec = spec.model_copy(update={"device": processes.device(spec.device)})
            backend = load_backend(spec, loaded)
            bind_items(backend, tasks, documents)
            identities[spec.name] = ModelRecord(
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
                            "models": list(identities.values()),
                            "processes": processes.world_size,
                        }
                    )
                )
            count = {"computed": 0, "cached": 0}
            for task in tasks.values():
                task.context = RunContext(
                    spec.name, loaded.baseline_of(spec.name), run.path, run.read_samples
                )
            for task_id, docs in pending.items():
                mine = processes.shard(docs)
                label = f"{spec.name} · {task_id}"
                bar = progress.add_task(label, total=len(documents[task_id]))
                progress.update(bar, completed=len(documents[task_id]) - len(docs))
                task_started = time.perf_counter()
                _evaluate(
                    tasks[task_id],
                    mine,
                    backend,
                    cache,
                    run,
                    spec,
                    task_id,
                    # Process 0's bar counts every process's share as its own advances.
                    lambda n, bar=bar: progress.advance(bar, n * processes.world_size),
                    count,
                )
                seconds = max(processes.gather(time.perf_counter() - task_started))
                per_task = task_wall.setdefault(spec.name, {})
                per_task[task_id] = per_task.get(task_id, 0.0) + seconds
            backend.close()
            elapsed = max(processes.gather(time.perf_counter() - started))
            wall[spec.name] = wall.get(spec.name, 0.0) + elapsed
            for share in processes.gather(count):
                _add_counts(counts, {spec.name: share})
            judge_counts = processes.gather(dict(judges.counts))
            if processes.is_main:
                manifest = run.manifest()
                recorded = {
                    "wall_seconds": wall,
                    "task_wall_seconds": task_wall,
                    "requests": counts,
                    **_judge_record(manifest, judges, judge_counts),
                }
                run.write_manifest(manifest.model_copy(update=recorded))
            judges.counts.clear()
    judges.close()
    cache.close()
    processes.barrier()  # every share is on disk before process 0 aggregates
    if processes.is_main:
        models = [
            identities[m.name] for m in suite.models if m.name in identities and m.name in selected
        ]
        run.write_results(
            compute_results(
                run, loaded, tasks, models, documents, wall, skipped=skipped, task_wall=task_wall
            )
        )
    processes.barrier()
    return run


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


def _evaluate(
    task: Task,
    docs: list[Document],
    backend: ModelBackend,
    cache: ResponseCache,
    run: RunDir,
    spec: ModelSpec,
    task_id: str,
    advance,
    count: dict[str, int],
) -> None:
    for start in range(0, len(docs), CHUNK_DOCUMENTS):
        chunk = docs[start : start + CHUNK_DOCUMENTS]
        writer = _ChunkWriter(task, chunk, run, spec.name, task_id, advance)
        flat = [r for rs in writer.requests for r in rs]
        before = dict(count)
        answer(flat, backend, cache, count, spec.generation, on_answered=writer.answered)
        writer.finish()
        run.log_progress(
            {
                "model": spec.name,
                "task": task_id,
                "event": "chunk",
                "documents": len(chunk),
                "computed": count.get("computed", 0) - before.get("computed", 0),
                "cached": count.get("cached", 0) - before.get("cached", 0),
            }
        )


class _ChunkWriter:
    """Saves a chunk's samples as their requests are answered: each run of documents whose
    requests are all answered, from the first not yet written, is scored and appended at once
    (tasks scored one document at a time), so samples stay in document order and a killed run
    keeps them; tasks that score in batches (a judge) are scored when the whole chunk is
    answered. Either way every answer is already in the cache, so nothing is computed twice."""

    def __init__(self, task: Task, docs: list[Document], run: RunDir, model: str, task_id, advance):
        self.task, self.docs, self.run, self.model, self.task_id = task, docs, run, model, task_id
        self.advance = advance
        self.requests = [entry_requests(task, task_id, doc) for doc in docs]
        self.owner = [i for i, rs in enumerate(self.requests) for _ in rs]
        self.offsets = [0]
        for rs in self.requests:
            self.offsets.append(self.offsets[-1] + len(rs))
        self.responses: list = [None] * len(self.owner)
        self.waiting = [len(rs) for rs in self.requests]
        self.written = [False] * len(docs)
        self.one_at_a_time = type(task).score_batch is Task.score_batch

    def answered(self, positions: list[int], responses: list, computed: bool) -> None:
        """Record answers (`computed` now, or from the cache); write the documents they
        complete; log the event after both are on disk."""
        for position, response in zip(positions, responses, strict=True):
            if self.responses[position] is None:
                self.responses[position] = response
                self.waiting[self.owner[position]] -= 1
        ready = []
        if self.one_at_a_time:
            start = self.written.index(False) if False in self.written else len(self.docs)
            end = start
            while end < len(self.docs) and self.waiting[end] == 0:
                end += 1
            ready = list(range(start, end))
            self._write(ready)
        self.run.log_progress(
            {
                "model": self.model,
                "task": self.task_id,
                "event": "computed" if computed else "cached",
                "requests": len(set(positions)),
                "documents_written": len(ready) if self.one_at_a_time else 0,
            }
        )

    def finish(self) -> None:
        """Write whatever is not written yet (a batch-scored chunk, documents without
        requests)."""
        self._write([i for i, done in enumerate(self.written) if not done])

    def _write(self, indices: list[int]) -> None:
        if not indices:
            return
        docs = [self.docs[i] for i in indices]
        answered = [self.responses[self.offsets[i] : self.offsets[i + 1]] for i in indices]
        self.run.append_samples(self.model, self.task_id, _score_chunk(self.task, docs, answered))
        for i in indices:
            self.written[i] = True
        self.advance(len(indices))


def _score_chunk(task: Task, docs: list[Document], answered: list[list]) -> list[Sample]:
    """Samples for a chunk: one document at a time unless the task scores in batches (a judge),
    where an exception fails the chunk's samples, each recorded as a failure."""
    if type(task).score_batch is Task.score_batch:
        return [_score(task, doc, responses) for doc, responses in zip(docs, answered, strict=True)]
    try:
        samples = task.score_batch(docs, answered)
    except Exception as error:  # noqa: BLE001  (a judge that fails fails these samples only)
        return [_failed(task, doc, error) for doc in docs]
    for sample, doc in zip(samples, docs, strict=True):
        if sample.cluster is None:
            sample.cluster = doc.cluster
    return samples


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


def _score(task: Task, doc: Document, responses: list) -> Sample:
    """A scorer that raises becomes a counted failure, never a zero."""
    try:
        sample = task.score(doc, responses)
    except Exception as error:  # noqa: BLE001  (any scorer bug is recorded, the run goes on)
        return _failed(task, doc, error)
    if sample.cluster is None:
        sample.cluster = doc.cluster
    return sample


def _failed(task: Task, doc: Document, error: Exception) -> Sample:
    return Sample(
        doc_id=doc.id,
        prompt="",
        target=None,
        prediction=None,
        metrics={m.name: None for m in task.metrics},
        cluster=doc.cluster,
        error=f"{type(error).__name__}: {error}",
    )


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

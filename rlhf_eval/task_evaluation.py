"""One model on one task's pending documents: answered through the response cache in chunks,
scored, and appended to the run's samples in document order as the answers arrive."""

from __future__ import annotations

from collections.abc import Callable

from rlhf_eval.answering import answer
from rlhf_eval.models.base import ModelBackend
from rlhf_eval.planner import entry_requests
from rlhf_eval.records import Document, Sample
from rlhf_eval.store import ResponseCache, RunDir
from rlhf_eval.suite import ModelSpec
from rlhf_eval.tasks.base import ScoringServices, Task

# Documents per unit of work: each unit's samples are on disk before the next one starts.
CHUNK_DOCUMENTS = 64


def evaluate_task(
    task: Task,
    docs: list[Document],
    backend: ModelBackend,
    cache: ResponseCache,
    run: RunDir,
    spec: ModelSpec,
    task_id: str,
    advance: Callable[[int], None],
    count: dict[str, int],
    services: ScoringServices,
) -> None:
    """Answer, score and append `docs` a chunk at a time; `advance(n)` as n documents are
    written; `count` adds the requests computed and those read from the cache; `services` is
    what the task may score with beyond the answers."""
    for start in range(0, len(docs), CHUNK_DOCUMENTS):
        chunk = docs[start : start + CHUNK_DOCUMENTS]
        writer = _ChunkWriter(task, chunk, run, spec.name, task_id, advance, services)
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

    def __init__(
        self,
        task: Task,
        docs: list[Document],
        run: RunDir,
        model: str,
        task_id: str,
        advance: Callable[[int], None],
        services: ScoringServices,
    ):
        self.task, self.docs, self.run, self.model, self.task_id = task, docs, run, model, task_id
        self.advance, self.services = advance, services
        self.requests = [entry_requests(task, task_id, doc) for doc in docs]
        self.owner = [i for i, rs in enumerate(self.requests) for _ in rs]
        self.offsets = [0]
        for rs in self.requests:
            self.offsets.append(self.offsets[-1] + len(rs))
        self.responses: list = [None] * len(self.owner)
        self.waiting = [len(rs) for rs in self.requests]
        self.written = [False] * len(docs)
        self.one_at_a_time = _scores_one_at_a_time(task)

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
        self.run.append_samples(
            self.model, self.task_id, _score_chunk(self.task, docs, answered, self.services)
        )
        for i in indices:
            self.written[i] = True
        self.advance(len(indices))


def _scores_one_at_a_time(task: Task) -> bool:
    """Whether the task scores each document alone (it keeps Task's score_batch); a task that
    overrides score_batch scores a chunk at once (a judge, a scorer, the sandbox)."""
    return type(task).score_batch is Task.score_batch


def _score_chunk(
    task: Task, docs: list[Document], answered: list[list], services: ScoringServices
) -> list[Sample]:
    """Samples for a chunk: one document at a time unless the task scores in batches (a judge),
    where an exception fails the chunk's samples, each recorded as a failure."""
    if _scores_one_at_a_time(task):
        return [_score(task, doc, responses) for doc, responses in zip(docs, answered, strict=True)]
    try:
        samples = task.score_batch(docs, answered, services)
    except Exception as error:  # noqa: BLE001  (a judge that fails fails these samples only)
        return [_failed(task, doc, error) for doc in docs]
    for sample, doc in zip(samples, docs, strict=True):
        if sample.cluster is None:
            sample.cluster = doc.cluster
    return samples


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

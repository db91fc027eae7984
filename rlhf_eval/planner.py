"""The plan of a run: each task entry built, its documents read and selected, and the requests of
each document tagged with the entry that asks them. The runner, `rlhf-eval prompts` and the
precomputed check all plan through here, so they agree on items and requests."""

from __future__ import annotations

from dataclasses import replace

from rlhf_eval.errors import DataError, DataUnavailable, SuiteError
from rlhf_eval.models.loading import load_backend
from rlhf_eval.models.precomputed import PrecomputedBackend
from rlhf_eval.records import Document, GenerationRequest, LoglikelihoodRequest, Request
from rlhf_eval.suite import LoadedSuite
from rlhf_eval.tasks.base import Task, registered_tasks, select_documents


def build_tasks(loaded: LoadedSuite) -> dict[str, Task]:
    registry = registered_tasks()
    return {
        spec.task_id: registry[spec.name](loaded.options[spec.task_id], loaded.base_dir)
        for spec in loaded.suite.tasks
    }


def read_documents(tasks: dict[str, Task]) -> tuple[dict[str, list[Document]], dict[str, str]]:
    """Every task entry's documents (those its `items` select), and the entries skipped with
    their reason.

    An entry that reads `data: hub` and cannot reach it (offline, no access: DataUnavailable) is
    skipped, not failed: the rest of the suite runs, and results and report say what was skipped
    and why. Any other data problem, or a local file, still fails the run before a model loads.
    """
    documents: dict[str, list[Document]] = {}
    skipped: dict[str, str] = {}
    for task_id, task in tasks.items():
        try:
            documents[task_id] = select_documents(task.documents(), task.options, task_id)
        except DataUnavailable as error:
            if getattr(task.options, "data", None) != "hub":
                raise
            skipped[task_id] = str(error)
    if not documents:
        reasons = "; ".join(f"{task_id}: {reason}" for task_id, reason in skipped.items())
        raise DataError(f"every task entry was skipped, so there is nothing to run ({reasons})")
    return documents, skipped


def entry_requests(task: Task, entry: str, doc: Document) -> list[Request]:
    """A document's requests, each generation request tagged with the entry asking it (which
    outputs made elsewhere may be keyed by; it never changes a computed answer)."""
    return [
        replace(r, item=replace(r.item, entry=entry))
        if isinstance(r, GenerationRequest) and r.item is not None
        else r
        for r in task.requests(doc)
    ]


def check_precomputed(
    loaded: LoadedSuite, tasks: dict[str, Task], documents: dict[str, list[Document]]
) -> dict[str, list[Document]]:
    """Before any model loads: each precomputed model's file answers every request of every task
    (none of them a log-likelihood), so a gap fails in seconds rather than after hours of other
    models' work. Entries with `items: answered` first keep the items every precomputed model
    answers (outputs made elsewhere for a subset). Returns the documents to run."""
    backends = []
    for spec in loaded.suite.models:
        if spec.backend == "precomputed":
            backend = load_backend(spec, loaded)
            assert isinstance(backend, PrecomputedBackend)
            backends.append(backend)
    documents = dict(documents)
    for task_id, docs in documents.items():
        if tasks[task_id].options.items == "answered":
            documents[task_id] = _answered(tasks[task_id], task_id, docs, backends)
    for backend in backends:
        for task_id, docs in documents.items():
            requests = [r for doc in docs for r in entry_requests(tasks[task_id], task_id, doc)]
            if any(isinstance(r, LoglikelihoodRequest) for r in requests):
                raise SuiteError(backend.refusal(f"task '{task_id}'"))
            backend.check(requests, f" of task '{task_id}'")  # type: ignore[arg-type]
    return documents


def _answered(
    task: Task, task_id: str, docs: list[Document], backends: list[PrecomputedBackend]
) -> list[Document]:
    """The documents every precomputed model has outputs for (`items: answered`)."""
    if not backends:
        raise SuiteError(
            f"task entry '{task_id}': `items: answered` keeps the items that the suite's "
            "precomputed models have outputs for, and the suite has none. Fix: list the item "
            "ids in `items`, or use `limit`."
        )
    kept = [
        doc
        for doc in docs
        if all(b.answers(r) for b in backends for r in entry_requests(task, task_id, doc))
    ]
    if not kept:
        raise SuiteError(
            f"task entry '{task_id}': no item has outputs in every precomputed model's file "
            "(`items: answered`). Fix: check the files' `task`, `entry`, `id` and `variant`."
        )
    return kept


def prompt_rows(tasks: dict[str, Task], documents: dict[str, list[Document]]) -> list[dict]:
    """One row per generation request of the suite's tasks, with the keys the precomputed
    backend looks outputs up by and the settings to generate them with: add `output` (and any
    scores) to each row and the file is ready for `backend: precomputed`."""
    rows = []
    for task_id, docs in documents.items():
        for doc in docs:
            for request in entry_requests(tasks[task_id], task_id, doc):
                if not isinstance(request, GenerationRequest):
                    continue
                item = request.item
                rows.append(
                    {
                        "task": item.task if item else task_id,
                        "entry": task_id,
                        "id": item.doc_id if item else doc.id,
                        "variant": item.variant if item else "",
                        "prompt": request.prompt,
                        "n": request.n,
                        "max_new_tokens": request.max_new_tokens,
                        "temperature": request.temperature,
                        "stop": list(request.stop) if request.stop is not None else None,
                    }
                )
    return rows

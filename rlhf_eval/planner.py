"""The plan of a run: each task entry built, its documents read and selected, and each document's
requests planned (task entry, item id, request). The runner, `rlhf-eval prompts` and the
precomputed check all plan through here, so they agree on items and requests.

A backend sees a planned request with an opaque `key` in place of what the task rendered it
from; the plan keeps the entry, item and PromptSource, and tells a precomputed backend which
item each key stands for (its file is keyed by item)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace

from rlhf_eval.errors import DataError, DataUnavailable, SuiteError
from rlhf_eval.model_loading import load_backend
from rlhf_eval.models.base import ModelBackend
from rlhf_eval.models.precomputed import ItemKeys, PrecomputedBackend
from rlhf_eval.models.spec import PrecomputedSpec
from rlhf_eval.records import (
    Document,
    GenerationRequest,
    LoglikelihoodRequest,
    PromptSource,
    Request,
)
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


@dataclass(frozen=True)
class PlannedRequest:
    """One request of the plan: the task entry and item that ask it, the request a backend
    gets, and what the task rendered it from (None where the task gives nothing)."""

    entry: str
    task: str
    item: str
    request: Request
    source: PromptSource | None


def plan_document(task: Task, entry: str, doc: Document) -> list[PlannedRequest]:
    """A document's requests, each generation request with a source keyed for the entry and
    item asking it (outputs made elsewhere may be keyed by them; a key never changes a
    computed answer)."""
    planned = []
    for request in task.requests(doc):
        source = request.source if isinstance(request, GenerationRequest) else None
        if source is not None:
            request = replace(request, source=None, key=_request_key(entry, doc.id, source))
        planned.append(PlannedRequest(entry, task.name, doc.id, request, source))
    return planned


def entry_requests(task: Task, entry: str, doc: Document) -> list[Request]:
    """The requests a backend gets for a document of a task entry (plan_document's)."""
    return [planned.request for planned in plan_document(task, entry, doc)]


def _request_key(entry: str, item: str, source: PromptSource) -> str:
    """Opaque to backends; one per entry, item and source, as the precomputed backend needs
    (the same prompt under three items has three answers)."""
    fields = json.dumps([entry, item, source.variant, source.text], ensure_ascii=False)
    return hashlib.sha256(fields.encode()).hexdigest()


def _plan(tasks: dict[str, Task], documents: dict[str, list[Document]]) -> Iterable[PlannedRequest]:
    for task_id, docs in documents.items():
        for doc in docs:
            yield from plan_document(tasks[task_id], task_id, doc)


def bind_items(
    backend: ModelBackend, tasks: dict[str, Task], documents: dict[str, list[Document]]
) -> None:
    """Tell a precomputed backend the task, entry, item and source behind each planned key
    (its file is keyed by them); other backends need nothing."""
    if isinstance(backend, PrecomputedBackend):
        backend.bind(_item_keys(_plan(tasks, documents)))


def _item_keys(plan: Iterable[PlannedRequest]) -> dict[str, ItemKeys]:
    return {
        p.request.key: ItemKeys(p.task, p.entry, p.item, p.source.variant, p.source.text)
        for p in plan
        if isinstance(p.request, GenerationRequest) and p.request.key and p.source
    }


def check_precomputed(
    loaded: LoadedSuite, tasks: dict[str, Task], documents: dict[str, list[Document]]
) -> dict[str, list[Document]]:
    """Before any model loads: each precomputed model's file answers every request of every task
    (none of them a log-likelihood), so a gap fails in seconds rather than after hours of other
    models' work. Entries with `items: answered` first keep the items every precomputed model
    answers (outputs made elsewhere for a subset). Returns the documents to run."""
    backends = []
    for spec in loaded.suite.models:
        if isinstance(spec, PrecomputedSpec):
            backend = load_backend(spec, loaded)
            assert isinstance(backend, PrecomputedBackend)
            bind_items(backend, tasks, documents)
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
    for planned in _plan(tasks, documents):
        request, source = planned.request, planned.source
        if not isinstance(request, GenerationRequest):
            continue
        rows.append(
            {
                "task": planned.task if source else planned.entry,
                "entry": planned.entry,
                "id": planned.item,
                "variant": source.variant if source else "",
                "prompt": request.prompt,
                "n": request.n,
                "max_new_tokens": request.max_new_tokens,
                "temperature": request.temperature,
                "stop": list(request.stop) if request.stop is not None else None,
            }
        )
    return rows

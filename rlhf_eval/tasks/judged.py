"""The shape of a task that judges another task entry's outputs (`win_rate`, `ratings`): its
documents are that entry's prompts, and it sends no requests to the model being evaluated; it
reads the outputs the model (and the baseline) already wrote and asks a suite judge about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import PrivateAttr

from rlhf_eval.records import Document
from rlhf_eval.tasks.base import (
    ScoringServices,
    Task,
    TaskOptions,
    registered_tasks,
    select_documents,
)

JUDGEABLE = ("instructions",)
"""Tasks whose outputs a judged task can read (their samples carry instruction and input)."""


class JudgedOptions(TaskOptions):
    _source: tuple[str, TaskOptions] | None = PrivateAttr(None)

    of: str
    """The id of an earlier `instructions` task entry whose outputs are judged."""
    judge: str
    """The name of a suite `judges:` entry."""

    def judge_names(self) -> list[str]:
        return [self.judge]

    def task_references(self) -> list[str]:
        return [self.of]

    def bind_references(self, entries: dict[str, tuple[str, TaskOptions]]) -> None:
        name, options = entries[self.of]
        if name not in JUDGEABLE:
            raise ValueError(
                f"`of: {self.of}` names a `{name}` entry; only {', '.join(JUDGEABLE)} outputs "
                "can be judged. Fix: point `of` at an instructions entry."
            )
        self._source = (name, options)

    @property
    def source(self) -> tuple[str, TaskOptions]:
        """(task name, options) of the `of` entry, bound when the suite loads."""
        bound = self._source
        if bound is None:
            raise RuntimeError(f"`of: {self.of}` was not bound: load the suite with load_suite")
        return bound


@dataclass(frozen=True)
class Output:
    """One model's output for a document, or why there is none."""

    text: str | None
    details: dict[str, Any]
    error: str | None = None


class JudgedTask(Task):
    """A task over the `of` entry's documents that reads outputs instead of requesting them."""

    options: JudgedOptions

    def documents(self) -> list[Document]:
        name, options = self.options.source
        docs = registered_tasks()[name](options, self.base_dir).documents()
        docs = select_documents(docs, options, self.options.of)
        return docs[: self.options.limit] if self.options.limit else docs

    def requests(self, doc: Document) -> list:
        return []

    def outputs(self, services: ScoringServices, model: str, docs: list[Document]) -> list[Output]:
        """`model`'s outputs of the `of` entry for `docs` (the samples the runner hands over)."""
        samples = {s["doc_id"]: s for s in services.upstream_samples(model, self.options.of)}
        out = []
        for doc in docs:
            sample = samples.get(doc.id)
            if sample is None:
                out.append(
                    Output(
                        None,
                        {},
                        f"model '{model}' has no output for this prompt in "
                        f"task entry '{self.options.of}' (run it first)",
                    )
                )
            elif sample.get("error") or sample.get("prediction") is None:
                out.append(
                    Output(
                        None,
                        sample.get("details") or {},
                        f"model '{model}' failed on this prompt in task entry "
                        f"'{self.options.of}': {sample.get('error')}",
                    )
                )
            else:
                out.append(Output(str(sample["prediction"]), sample.get("details") or {}))
        return out

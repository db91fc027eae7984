"""Multiple choice by log-likelihood, as lm-evaluation-harness scores it: the context, then each
choice after a space; accuracy of the highest summed log-probability (and, where asked, of the
highest log-probability per character of the choice, lm-eval's acc_norm)."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import numpy as np

from rlhf_common.datasets import load_hub, read_records
from rlhf_eval.records import Document, Loglikelihood, LoglikelihoodRequest, Sample
from rlhf_eval.tasks.base import Task, TaskOptions


class ChoiceOptions(TaskOptions):
    data: str = "hub"
    """`hub` (the task's Hugging Face dataset) or a local file in the hub's format."""


class MultipleChoice(Task):
    """Subclasses read rows into {context, choices, label} and name their metrics."""

    hub: ClassVar[tuple[str, str | None, str]]
    Options = ChoiceOptions
    options: ChoiceOptions
    accuracy: ClassVar[str]
    """The metric name of plain accuracy."""
    normalized_accuracy: ClassVar[str | None] = None
    """The metric name of length-normalised accuracy, or None."""

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        raise NotImplementedError

    def documents(self) -> list[Document]:
        if self.options.data == "hub":
            path, config, split = self.hub
            rows = self.from_records(load_hub(path, config, split), f"hub:{path}")
        else:
            records, source = read_records(self.options.data, self.base_dir)
            rows = self.from_records(records, str(source))
        docs, seen = [], set()
        for row in rows:
            text = row["context"] + "\x00" + "\x00".join(row["choices"])
            key = hashlib.sha1(text.encode()).hexdigest()[:12]
            while key in seen:
                key += "+"
            seen.add(key)
            docs.append(Document(id=key, data=row))
        return docs[: self.options.limit] if self.options.limit else docs

    def requests(self, doc: Document) -> list[LoglikelihoodRequest]:
        return [LoglikelihoodRequest(doc.data["context"], " " + c) for c in doc.data["choices"]]

    def score(self, doc: Document, responses: list[Loglikelihood]) -> Sample:
        logprobs = np.array([r.logprob for r in responses])
        lengths = np.array([float(len(c)) for c in doc.data["choices"]])
        label = int(doc.data["label"])
        picked = int(np.argmax(logprobs))
        metrics = {self.accuracy: float(picked == label)}
        if self.normalized_accuracy:
            metrics[self.normalized_accuracy] = float(int(np.argmax(logprobs / lengths)) == label)
        return Sample(
            doc_id=doc.id,
            prompt=doc.data["context"],
            target=doc.data["choices"][label],
            prediction=doc.data["choices"][picked],
            metrics=metrics,
            details={"choices": doc.data["choices"], "logprobs": logprobs.tolist()},
        )


def row(context: str, choices: list[str], label: Any) -> dict:
    return {"context": context, "choices": [str(c) for c in choices], "label": int(label)}

"""The shared shape of instructed generation tasks (the InstructGPT paper's appendix D):
an instruction, k solved exemplars, the item; greedy decoding cut at the first newline."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from rlhf_common.datasets import load_hub, read_records
from rlhf_eval.errors import DataError
from rlhf_eval.records import Document, Generation, GenerationRequest, PromptSource, Sample
from rlhf_eval.tasks.base import Task, TaskOptions

# Answers end at the first newline: the exemplars put one answer per line. A "." stop (as in
# lm-eval's DROP) would cut "76.87" to "76", and the paper's own SQuAD answer "Not in
# background." ends with one.
STOP = ("\n",)


class GenerationOptions(TaskOptions):
    data: str = "hub"
    """`hub` (the task's Hugging Face dataset) or a local file (JSON/JSONL/CSV/Parquet)."""
    num_fewshot: int = Field(0, ge=0)
    """Solved exemplars before the item (zero-shot by default, as in the paper's figures)."""
    fewshot_data: str | None = None
    """Draw exemplars from this file instead of from `data` (where the item itself and items of
    its passage are never drawn)."""
    max_new_tokens: int = Field(64, ge=1)


class InstructedGeneration(Task):
    """Subclasses give the instruction, the hub dataset, and how to read, render and score."""

    instruction: ClassVar[str]
    """The paper's instruction, followed by a blank line; "" for tasks without one."""
    hub: ClassVar[tuple[str, str | None, str]]
    """(path, config, split) of the hub dataset that `data: hub` loads."""
    options: GenerationOptions

    def __init__(self, options: GenerationOptions, base_dir: Path):
        super().__init__(options, base_dir)
        self._exemplar_pool: list[Document] | None = None
        self._read: dict[str, list[Document]] = {}
        """Documents by data source, so the exemplar pool does not read `data` twice."""

    # ---- what a subclass provides --------------------------------------------------------

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        """Local-format rows from the records of a file or the hub; raise DataError if bad."""
        raise NotImplementedError

    def render(self, row: dict[str, Any]) -> str:
        """One item up to and including the answer cue (e.g. ends with "Answer:")."""
        raise NotImplementedError

    def answer(self, row: dict[str, Any]) -> str:
        """The answer an exemplar shows after the cue."""
        raise NotImplementedError

    def can_be_exemplar(self, row: dict[str, Any]) -> bool:
        """Whether a row may serve as a solved exemplar (WSC shows only true referents)."""
        return True

    def cluster(self, row: dict[str, Any]) -> str | None:
        """Items sharing a passage share a cluster (resampled together); None: each alone."""
        return None

    def score_text(self, doc: Document, text: str) -> Sample:
        raise NotImplementedError

    # ---- the shared machinery -----------------------------------------------------------

    def documents(self) -> list[Document]:
        docs = self._documents(self.options.data)
        return docs[: self.options.limit] if self.options.limit else docs

    def _documents(self, data: str) -> list[Document]:
        if data not in self._read:
            self._read[data] = self._read_documents(data)
        return self._read[data]

    def _read_documents(self, data: str) -> list[Document]:
        rows = self._rows(data)
        docs, seen = [], set()
        for row in rows:
            key = hashlib.sha1(self.render(row).encode()).hexdigest()[:12]
            while key in seen:  # identical items stay distinct documents
                key += "+"
            seen.add(key)
            cluster = self.cluster(row)
            group = None if cluster is None else hashlib.sha1(cluster.encode()).hexdigest()[:12]
            docs.append(Document(id=key, data=row, cluster=group))
        return docs

    def _rows(self, data: str) -> list[dict]:
        if data == "hub":
            path, config, split = self.hub
            return self.from_records(load_hub(path, config, split), f"hub:{path}")
        records, source = read_records(data, self.base_dir)
        return self.from_records(records, str(source))

    def _pool(self) -> list[Document]:
        if self._exemplar_pool is None:
            source = self.options.fewshot_data or self.options.data
            docs = self._documents(source) if self.options.num_fewshot else []
            self._exemplar_pool = [d for d in docs if self.can_be_exemplar(d.data)]
        return self._exemplar_pool

    def exemplars(self, doc: Document) -> list[Document]:
        """k exemplars drawn without replacement, seeded by the item's id: the same item gets the
        same exemplars in every run and whatever `limit` is. Neither the item nor another item
        of its passage is drawn (that would show the model its own passage answered)."""
        k = self.options.num_fewshot
        if k == 0:
            return []
        pool = [
            d
            for d in self._pool()
            if d.id != doc.id and (doc.cluster is None or d.cluster != doc.cluster)
        ]
        if len(pool) < k:
            where = self.options.fewshot_data or self.options.data
            raise DataError(
                f"{self.name}: num_fewshot is {k} but {where} has only {len(pool)} items to draw "
                "exemplars from. Fix: lower num_fewshot or give a larger `fewshot_data` file."
            )
        seed = int(hashlib.sha256(doc.id.encode()).hexdigest()[:16], 16)
        return random.Random(seed).sample(pool, k)

    def prompt(self, doc: Document) -> str:
        blocks = [f"{self.render(d.data)} {self.answer(d.data)}" for d in self.exemplars(doc)]
        blocks.append(self.render(doc.data))
        body = "\n\n".join(blocks)
        return f"{self.instruction}\n\n{body}" if self.instruction else body

    def requests(self, doc: Document) -> list[GenerationRequest]:
        # Every setting is explicit: the paper's protocol (greedy, newline stop) is part of the
        # task, not something a model's generation defaults may change. The item's text is its
        # rendered block without instruction and exemplars: unique per item (its id hashes it),
        # and the same whatever num_fewshot is.
        return [
            GenerationRequest(
                self.prompt(doc),
                max_new_tokens=self.options.max_new_tokens,
                stop=STOP,
                temperature=0.0,
                source=PromptSource(text=self.render(doc.data)),
            )
        ]

    def score(self, doc: Document, responses: list[Generation]) -> Sample:
        sample = self.score_text(doc, responses[0].texts[0].strip())
        sample.prompt = self.prompt(doc)
        return sample


def require_fields(record: dict, fields: tuple[str, ...], source: str, index: int) -> None:
    """A DataError naming the file, the record and the missing fields."""
    missing = [f for f in fields if record.get(f) is None]
    if missing:
        raise DataError(
            f"{source}, record {index + 1}: missing field(s) {', '.join(missing)}. Fix: each "
            f"record needs {', '.join(fields)}."
        )

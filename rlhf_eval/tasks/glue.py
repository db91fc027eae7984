"""GLUE's RTE and SST-2 as lm-evaluation-harness defines them: a fixed question after the text,
the label words scored by log-likelihood."""

from __future__ import annotations

from rlhf_eval.errors import DataError
from rlhf_eval.records import MetricSpec
from rlhf_eval.tasks.base import register_task
from rlhf_eval.tasks.generation import require_fields
from rlhf_eval.tasks.multiple_choice import MultipleChoice, row


def _label(record: dict, n: int, source: str, index: int) -> int:
    label = record["label"]
    if isinstance(label, bool) or str(label) not in {str(k) for k in range(n)}:
        raise DataError(
            f"{source}, record {index + 1}: `label` must be one of 0..{n - 1}, got {label!r} "
            "(GLUE's test splits have no labels: use validation)."
        )
    return int(label)


@register_task
class Rte(MultipleChoice):
    name = "rte"
    description = "RTE entailment (lm-eval's glue/rte prompt): accuracy by log-likelihood."
    hub = ("nyu-mll/glue", "rte", "validation")
    accuracy = "rte_acc"
    metrics = (MetricSpec("rte_acc", "proportion", description="accuracy (True/False)"),)

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        rows = []
        for i, record in enumerate(records):
            # GLUE names the pair sentence1/sentence2, SuperGLUE premise/hypothesis.
            premise = record.get("sentence1", record.get("premise"))
            hypothesis = record.get("sentence2", record.get("hypothesis"))
            fields = {"sentence1": premise, "sentence2": hypothesis, "label": record.get("label")}
            require_fields(fields, ("sentence1", "sentence2", "label"), source, i)
            # Label 0 is entailment in both GLUE and SuperGLUE.
            rows.append(
                row(
                    f"{premise}\nQuestion: {hypothesis} True or False?\nAnswer:",
                    ["True", "False"],
                    _label(record, 2, source, i),
                )
            )
        return rows


@register_task
class Sst2(MultipleChoice):
    name = "sst2"
    description = "SST-2 sentiment (lm-eval's glue/sst2 prompt): accuracy by log-likelihood."
    hub = ("nyu-mll/glue", "sst2", "validation")
    accuracy = "sst2_acc"
    metrics = (MetricSpec("sst2_acc", "proportion", description="accuracy (negative/positive)"),)

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        rows = []
        for i, record in enumerate(records):
            require_fields(record, ("sentence", "label"), source, i)
            rows.append(
                row(
                    f"{record['sentence']}\nQuestion: Is this sentence positive or negative?\n"
                    "Answer:",
                    ["negative", "positive"],
                    _label(record, 2, source, i),
                )
            )
        return rows

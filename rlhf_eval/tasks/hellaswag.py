"""HellaSwag (Zellers et al. 2019) as lm-evaluation-harness defines it: the activity label and
context, four endings scored by log-likelihood; acc_norm divides by the ending's length."""

from __future__ import annotations

import re

from rlhf_eval.errors import DataError
from rlhf_eval.records import MetricSpec
from rlhf_eval.tasks.base import register_task
from rlhf_eval.tasks.generation import require_fields
from rlhf_eval.tasks.multiple_choice import MultipleChoice, row

FIELDS = ("activity_label", "ctx_a", "ctx_b", "endings", "label")


def preprocess(text: str) -> str:
    """lm-eval's hellaswag `preprocess`: WikiHow's " [title]" becomes ". ", other [tags] go."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


@register_task
class HellaSwag(MultipleChoice):
    name = "hellaswag"
    description = "HellaSwag (lm-eval's definition): acc_norm and acc by log-likelihood."
    hub = ("Rowan/hellaswag", None, "validation")
    accuracy = "hellaswag_acc"
    normalized_accuracy = "hellaswag_acc_norm"
    metrics = (
        MetricSpec("hellaswag_acc_norm", "proportion", description="accuracy, per-char logprob"),
        MetricSpec("hellaswag_acc", "proportion", description="accuracy, summed logprob"),
    )

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        rows = []
        for i, record in enumerate(records):
            require_fields(record, FIELDS, source, i)
            endings = list(record["endings"])
            if str(record["label"]).strip() not in {str(k) for k in range(len(endings))}:
                raise DataError(
                    f"{source}, record {i + 1}: `label` must index one of the {len(endings)} "
                    f"endings, got {record['label']!r} (the hub's test split has no labels)."
                )
            context = record["ctx_a"] + " " + record["ctx_b"].capitalize()
            rows.append(
                row(
                    preprocess(record["activity_label"] + ": " + context),
                    [preprocess(e) for e in endings],
                    int(record["label"]),
                )
            )
        return rows

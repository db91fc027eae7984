"""WSC (SuperGLUE's Winograd schemas) as the InstructGPT paper ran it: the GPT-3 "Final Exam"
prompt, a generated referent, and True when the sample contains the candidate noun or the
noun contains the sample; accuracy against the schema's label."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from rlhf_eval.metrics.squad import normalize_answer
from rlhf_eval.records import Document, MetricSpec, Sample
from rlhf_eval.tasks.base import register_task
from rlhf_eval.tasks.generation import GenerationOptions, InstructedGeneration, require_fields

INSTRUCTION = (
    "Final Exam with Answer Key\n"
    "Instructions: Please carefully read the following passages. For each passage, you must "
    "identify which noun the pronoun marked in *bold* refers to.\n"
    "====="
)
FIELDS = ("text", "span1_text", "span2_text", "span2_index", "label")


class WscOptions(GenerationOptions):
    max_new_tokens: int = Field(16, ge=1)


def mark_pronoun(text: str, pronoun: str, word_index: int) -> str:
    """Wrap the pronoun in *...*: the word at `word_index` (SuperGLUE's span2_index counts
    whitespace-separated words), else its first whole-word occurrence."""
    words = text.split(" ")
    if 0 <= word_index < len(words) and words[word_index].lower().startswith(pronoun.lower()):
        word = words[word_index]
        words[word_index] = f"*{word[: len(pronoun)]}*{word[len(pronoun) :]}"
        return " ".join(words)
    return re.sub(rf"\b{re.escape(pronoun)}\b", f"*{pronoun}*", text, count=1)


def refers_to(sample: str, noun: str) -> bool:
    """The paper's rule: the sample contains the noun, or the noun contains the sample."""
    sample, noun = normalize_answer(sample), normalize_answer(noun)
    return bool(sample) and (noun in sample or sample in noun)


@register_task
class Wsc(InstructedGeneration):
    name = "wsc"
    description = "SuperGLUE WSC (InstructGPT/GPT-3 'Final Exam' prompt, generated referent)."
    Options = WscOptions
    instruction = INSTRUCTION
    hub = ("aps/super_glue", "wsc.fixed", "validation")
    metrics = (MetricSpec("wsc_acc", "proportion", description="accuracy of the True/False call"),)

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        rows = []
        for i, record in enumerate(records):
            require_fields(record, FIELDS, source, i)
            rows.append({f: record[f] for f in FIELDS} | {"label": bool(int(record["label"]))})
        return rows

    def render(self, row: dict[str, Any]) -> str:
        passage = mark_pronoun(row["text"], row["span2_text"], int(row["span2_index"]))
        return (
            f"Passage: {passage}\n"
            f'Question: In the passage above, what does the pronoun "*{row["span2_text"]}*" '
            "refer to?\nAnswer:"
        )

    def answer(self, row: dict[str, Any]) -> str:
        return row["span1_text"]

    def can_be_exemplar(self, row: dict[str, Any]) -> bool:
        # Only a true schema names the pronoun's referent (GPT-3's few-shot WSC did the same).
        return row["label"]

    def score_text(self, doc: Document, text: str) -> Sample:
        called = refers_to(text, doc.data["span1_text"])
        return Sample(
            doc_id=doc.id,
            prompt="",
            target=doc.data["label"],
            prediction=text,
            metrics={"wsc_acc": float(called == doc.data["label"])},
            details={"candidate": doc.data["span1_text"], "called_true": called},
        )

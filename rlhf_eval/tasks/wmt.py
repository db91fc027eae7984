"""WMT15 French to English with the InstructGPT paper's prompt, scored by sacrebleu corpus BLEU
with a sentence-resampling bootstrap interval (the paper reports none for translation)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rlhf_eval.metrics.bleu import sentence_bleu
from rlhf_eval.metrics.corpus import CORPUS_BLEU
from rlhf_eval.records import Document, MetricSpec, Sample
from rlhf_eval.tasks.base import register_task
from rlhf_eval.tasks.generation import GenerationOptions, InstructedGeneration, require_fields

INSTRUCTION = "Translate the following sentences from French into English."


class WmtOptions(GenerationOptions):
    max_new_tokens: int = Field(256, ge=1)


def render_item(french: str) -> str:
    return f"French: {french}\nEnglish:"


@register_task
class Wmt15FrEn(InstructedGeneration):
    name = "wmt15_fr_en"
    description = "WMT15 fr->en (InstructGPT prompt): sacrebleu corpus BLEU, sentence bootstrap."
    Options = WmtOptions
    instruction = INSTRUCTION
    hub = ("wmt/wmt15", "fr-en", "test")
    metrics = (
        MetricSpec(
            "bleu",
            "corpus",
            description="sacrebleu corpus BLEU (13a, exp smoothing); per-sample: sentence BLEU",
            corpus=CORPUS_BLEU,
        ),
    )

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        rows = []
        for i, record in enumerate(records):
            # The hub nests the pair: {"translation": {"fr": ..., "en": ...}}.
            pair = record.get("translation") if "fr" not in record else record
            require_fields(pair or {}, ("fr", "en"), source, i)
            rows.append({"fr": str(pair["fr"]), "en": str(pair["en"])})
        return rows

    def render(self, row: dict[str, Any]) -> str:
        return render_item(row["fr"])

    def answer(self, row: dict[str, Any]) -> str:
        return row["en"]

    def score_text(self, doc: Document, text: str) -> Sample:
        return Sample(
            doc_id=doc.id,
            prompt="",
            target=doc.data["en"],
            prediction=text,
            metrics={"bleu": sentence_bleu(text, doc.data["en"])},
            details={"hypothesis": text, "reference": doc.data["en"]},
        )

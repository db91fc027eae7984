"""Summarisation in the InstructGPT paper's format ("[text]\\n\\nTL;DR:", no instruction),
scored by ROUGE-L: Reddit TL;DR and CNN/DailyMail."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rlhf_eval.metrics.rouge import rouge_l
from rlhf_eval.records import Document, MetricSpec, Sample
from rlhf_eval.tasks.base import register_task
from rlhf_eval.tasks.generation import GenerationOptions, InstructedGeneration, require_fields


class SummarizationOptions(GenerationOptions):
    max_new_tokens: int = Field(128, ge=1)


def render_item(text: str) -> str:
    return f"{text.strip()}\n\nTL;DR:"


class _Summarization(InstructedGeneration):
    instruction = ""
    Options = SummarizationOptions
    metrics = (MetricSpec("rouge_l", "mean", description="ROUGE-L F1 (rouge-score, stemmed)"),)

    def render(self, row: dict[str, Any]) -> str:
        return render_item(row["text"])

    def answer(self, row: dict[str, Any]) -> str:
        return row["reference"]

    def score_text(self, doc: Document, text: str) -> Sample:
        return Sample(
            doc_id=doc.id,
            prompt="",
            target=doc.data["reference"],
            prediction=text,
            metrics={"rouge_l": rouge_l(text, doc.data["reference"])},
        )


@register_task
class Tldr(_Summarization):
    name = "tldr"
    description = "Reddit TL;DR summarisation ('TL;DR:' prompt): ROUGE-L."
    hub = ("CarperAI/openai_summarize_tldr", None, "test")

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        rows = []
        for i, record in enumerate(records):
            if "post" not in record and "prompt" in record:
                # The hub copy stores the formatted prompt, ending in "TL;DR:", and `label`.
                post = str(record["prompt"]).rstrip()
                post = post[: -len("TL;DR:")].rstrip() if post.endswith("TL;DR:") else post
                record = {"post": post, "reference": record.get("label")}
            require_fields(record, ("post", "reference"), source, i)
            # The OpenAI release marks sentence ends in references with "|": one text here.
            reference = " ".join(str(record["reference"]).replace("|", " ").split())
            rows.append({"text": str(record["post"]), "reference": reference})
        return rows


@register_task
class CnnDailyMail(_Summarization):
    name = "cnn_dm"
    description = "CNN/DailyMail summarisation ('TL;DR:' prompt, as the paper): ROUGE-L."
    hub = ("abisee/cnn_dailymail", "3.0.0", "test")

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        rows = []
        for i, record in enumerate(records):
            require_fields(record, ("article", "highlights"), source, i)
            # Highlights are one sentence per line; ROUGE-L (not Lsum) scores them as one text.
            reference = " ".join(str(record["highlights"]).split("\n"))
            rows.append({"text": str(record["article"]), "reference": reference.strip()})
        return rows

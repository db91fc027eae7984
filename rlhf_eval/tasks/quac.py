"""QuAC (Choi et al. 2018) in the InstructGPT paper's dialogue format: each question after the
dialogue's earlier turns, "I don't know." for CANNOTANSWER, SQuAD-style F1; one dialogue is one
cluster."""

from __future__ import annotations

from typing import Any

from rlhf_eval.errors import DataError
from rlhf_eval.metrics.squad import normalize_answer, squad_score
from rlhf_eval.records import Document, MetricSpec, Sample
from rlhf_eval.tasks.base import register_task
from rlhf_eval.tasks.generation import GenerationOptions, InstructedGeneration, require_fields
from rlhf_eval.tasks.squad_v2 import render_item

NO_ANSWER = "I don't know."
CANNOT_ANSWER = "CANNOTANSWER"
INSTRUCTION = (
    "Answer each question using information in the preceding background paragraph. "
    f'If there is not enough information provided, answer with "{NO_ANSWER}"'
)
FIELDS = ("dialogue_id", "wikipedia_page_title", "context", "questions", "answers")


def as_quac_answer(text: str) -> str:
    """CANNOTANSWER and the abstention are the empty answer."""
    if text.strip() == CANNOT_ANSWER or normalize_answer(text) == normalize_answer(NO_ANSWER):
        return ""
    return text


@register_task
class Quac(InstructedGeneration):
    name = "quac"
    description = "QuAC dialogue QA (InstructGPT-style prompt): SQuAD-style F1/EM, by dialogue."
    Options = GenerationOptions
    instruction = INSTRUCTION
    hub = ("allenai/quac", None, "validation")
    metrics = (
        MetricSpec("quac_f1", "mean", description="token F1 (abstaining on CANNOTANSWER: 1)"),
        MetricSpec("quac_em", "proportion", description="exact match"),
    )

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        return [row for i, r in enumerate(records) for row in _dialogue_rows(r, source, i)]

    def render(self, row: dict[str, Any]) -> str:
        return render_item(row["title"], row["background"], row["dialogue"])

    def answer(self, row: dict[str, Any]) -> str:
        return row["shown_answer"]

    def cluster(self, row: dict[str, Any]) -> str:
        return row["dialogue_id"]

    def score_text(self, doc: Document, text: str) -> Sample:
        em, f1 = squad_score(as_quac_answer(text), [as_quac_answer(a) for a in doc.data["answers"]])
        return Sample(
            doc_id=doc.id,
            prompt="",
            target=doc.data["answers"],
            prediction=text,
            metrics={"quac_f1": f1, "quac_em": em},
        )


def _dialogue_rows(record: dict, source: str, index: int) -> list[dict]:
    """One row per question of a dialogue (the hub's layout: one record per dialogue, answers as
    {texts: [[...] per question]}, the dialogue's own answers in orig_answers)."""
    require_fields(record, FIELDS, source, index)
    questions = list(record["questions"])
    texts = list((record["answers"] or {}).get("texts") or [])
    shown = list((record.get("orig_answers") or {}).get("texts") or [a[0] for a in texts if a])
    if not (len(questions) == len(texts) == len(shown)):
        raise DataError(
            f"{source}, record {index + 1}: {len(questions)} questions but {len(texts)} answer "
            f"lists and {len(shown)} dialogue answers. Fix: one of each per question."
        )
    context = str(record["context"]).rstrip()
    if context.endswith(CANNOT_ANSWER):  # QuAC appends it so spans can point at it
        context = context[: -len(CANNOT_ANSWER)].rstrip()
    rows, turns = [], []
    for question, answers, answer in zip(questions, texts, shown, strict=True):
        cue = f"Q: {question.strip()}\n\nA:"
        said = NO_ANSWER if answer == CANNOT_ANSWER else answer
        rows.append(
            {
                "dialogue_id": str(record["dialogue_id"]),
                "title": str(record["wikipedia_page_title"]),
                "background": context,
                "dialogue": "\n\n".join([*turns, cue]),
                "answers": [str(a) for a in answers],
                "shown_answer": said,
            }
        )
        turns.append(f"{cue} {said}")
    return rows

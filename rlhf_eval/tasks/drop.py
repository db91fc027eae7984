"""DROP (Dua et al. 2019) with the InstructGPT paper's prompt: generated answers scored by
DROP's own EM and F1, questions of one passage resampled together."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rlhf_eval.errors import DataError
from rlhf_eval.metrics.drop import drop_score
from rlhf_eval.records import Document, MetricSpec, Sample
from rlhf_eval.tasks.base import register_task
from rlhf_eval.tasks.generation import GenerationOptions, InstructedGeneration, require_fields

INSTRUCTION = "Answer each question using information in the preceding passage."


class DropOptions(GenerationOptions):
    max_new_tokens: int = Field(32, ge=1)


def render_item(passage: str, question: str) -> str:
    return f"Passage: {passage}\nQuestion: {question}\nAnswer:"


@register_task
class Drop(InstructedGeneration):
    name = "drop"
    description = "DROP reading comprehension (InstructGPT prompt): DROP F1 and EM, by passage."
    Options = DropOptions
    instruction = INSTRUCTION
    hub = ("ucinlp/drop", None, "validation")
    metrics = (
        MetricSpec("drop_f1", "mean", description="DROP bag-of-words F1 (number-aware)"),
        MetricSpec("drop_em", "proportion", description="DROP exact match"),
    )

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        return [_row(r, source, i) for i, r in enumerate(records)]

    def render(self, row: dict[str, Any]) -> str:
        return render_item(row["passage"], row["question"])

    def answer(self, row: dict[str, Any]) -> str:
        first = row["answers"][0]
        return first if isinstance(first, str) else ", ".join(first)

    def cluster(self, row: dict[str, Any]) -> str:
        return row["passage"]

    def score_text(self, doc: Document, text: str) -> Sample:
        em, f1 = drop_score(text, doc.data["answers"])
        return Sample(
            doc_id=doc.id,
            prompt="",
            target=doc.data["answers"],
            prediction=text,
            metrics={"drop_f1": f1, "drop_em": em},
            details={"question": doc.data["question"]},
        )


def _row(record: dict, source: str, index: int) -> dict:
    """{passage, question, answers}: `answers` lists alternative gold answers, each a string or
    the list of spans of a multi-span answer. ucinlp/drop's `answers_spans` holds one answer;
    the original layout (`answer` and `validated_answers`) is read as lm-eval reads it."""
    if "answers" not in record and isinstance(record.get("answers_spans"), dict):
        record = {**record, "answers": [list(record["answers_spans"].get("spans") or [])]}
    elif "answers" not in record and isinstance(record.get("answer"), dict):
        record = {**record, "answers": _structured_answers(record)}
    require_fields(record, ("passage", "question", "answers"), source, index)
    answers = record["answers"]
    if isinstance(answers, str):
        answers = [answers]
    answers = [a if isinstance(a, str) else [str(s) for s in a] for a in answers]
    answers = [a for a in answers if a and (isinstance(a, str) or any(s.strip() for s in a))]
    if not answers:
        raise DataError(
            f"{source}, record {index + 1}: field `answers` has no non-empty answer. Fix: give "
            "a list of gold answers (a string, or a list of spans for a multi-span answer)."
        )
    return {"passage": record["passage"], "question": record["question"], "answers": answers}


def _structured_answers(record: dict) -> list:
    """DROP's original answers ({number, date, spans}), the annotator's and the validators',
    each as a number, a date "day month year" or its spans (lm-eval's parse_answer)."""
    validated = record.get("validated_answers") or {}
    if isinstance(validated, dict):  # the hub stores them column-wise
        keys = ("number", "date", "spans")
        validated = [
            dict(zip(keys, v, strict=True))
            for v in zip(*(validated.get(k, []) for k in keys), strict=True)
        ]
    answers: list = []
    for answer in [record["answer"], *validated]:
        if str(answer.get("number") or "").strip():
            parsed: str | list[str] = str(answer["number"])
        elif answer.get("spans"):
            parsed = [str(s) for s in answer["spans"]]
        else:
            date = answer.get("date") or {}
            parsed = " ".join(str(date.get(k) or "") for k in ("day", "month", "year")).strip()
        if parsed and parsed not in answers:
            answers.append(parsed)
    return answers

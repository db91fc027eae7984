"""SQuAD v2 (Rajpurkar et al. 2018) with the InstructGPT paper's prompt: the paragraph's earlier
questions as dialogue, "Not in background." as the answer to unanswerable questions, official
EM/F1 that credit a correct abstention, and the HasAns/NoAns split."""

from __future__ import annotations

from typing import Any, Literal

from rlhf_eval.errors import DataError
from rlhf_eval.metrics.squad import normalize_answer, squad_score
from rlhf_eval.records import Document, MetricSpec, Sample
from rlhf_eval.tasks.base import register_task
from rlhf_eval.tasks.generation import GenerationOptions, InstructedGeneration, require_fields

NO_ANSWER = "Not in background."
INSTRUCTION = (
    "Answer each question using information in the preceding background paragraph. "
    f'If there is not enough information provided, answer with "{NO_ANSWER}"'
)


def render_item(title: str, background: str, dialogue: str) -> str:
    """`dialogue` holds the earlier Q/A turns and ends with the question's "Q: ...\\n\\nA:".
    A blank line after the title, as in the prompts of OpenAI's released samples."""
    return f"Title: {title}\n\nBackground: {background}\n\n{dialogue}"


def as_squad_answer(text: str, rule: AbstentionRule = "normalized") -> str:
    """The abstention is SQuAD's empty answer. `normalized`: any text that normalises to it
    (with or without its period, any case); `exact`: only the paper's exact string
    "Not in background." (leading and trailing spaces aside), as OpenAI's evaluation counts it."""
    if rule == "exact":
        return "" if text.strip() == NO_ANSWER else text
    return "" if normalize_answer(text) == normalize_answer(NO_ANSWER) else text


AbstentionRule = Literal["normalized", "exact"]


class SquadV2Options(GenerationOptions):
    abstention: AbstentionRule = "normalized"
    """Which answers count as abstaining: `normalized` (any text normalising to "not in
    background") or `exact` (only "Not in background.", the InstructGPT evaluation's rule).
    The report says which ran."""


@register_task
class SquadV2(InstructedGeneration):
    name = "squad_v2"
    description = "SQuAD v2 (InstructGPT prompt): F1/EM crediting abstentions, HasAns/NoAns split."
    Options = SquadV2Options
    options: SquadV2Options
    version = 2  # 2: a blank line after the title, as in the paper's released prompts
    instruction = INSTRUCTION
    hub = ("rajpurkar/squad_v2", None, "validation")
    metrics = (
        MetricSpec("squad_f1", "mean", description="SQuAD v2 F1 (abstaining on NoAns scores 1)"),
        MetricSpec("squad_em", "proportion", description="SQuAD v2 exact match"),
        MetricSpec("squad_hasans_f1", "mean", description="F1 on answerable questions only"),
        MetricSpec(
            "squad_noans_f1", "proportion", description="abstention rate on unanswerable ones"
        ),
    )

    def from_records(self, records: list[dict], source: str) -> list[dict]:
        if records and "dialogue" not in records[0] and "context" in records[0]:
            return _from_hub(records, source)
        return [_row(r, source, i) for i, r in enumerate(records)]

    def render(self, row: dict[str, Any]) -> str:
        return render_item(row["title"], row["background"], row["dialogue"])

    def answer(self, row: dict[str, Any]) -> str:
        return next((a for a in row["answers"] if a.strip()), NO_ANSWER)

    def cluster(self, row: dict[str, Any]) -> str:
        return row["background"]

    def notes(self, samples: dict[str, list[dict]] | None = None) -> list[str]:
        if self.options.abstention == "exact":
            return ['abstention counted only for the exact answer "Not in background." (the paper)']
        return [
            'abstention counted for any answer that normalises to "not in background" (lenient; '
            "`abstention: exact` is the paper's rule)"
        ]

    def score_text(self, doc: Document, text: str) -> Sample:
        golds = [as_squad_answer(a) for a in doc.data["answers"]]
        predicted = as_squad_answer(text, self.options.abstention)
        em, f1 = squad_score(predicted, golds)
        answerable = any(normalize_answer(g) for g in golds)
        return Sample(
            doc_id=doc.id,
            prompt="",
            target=doc.data["answers"],
            prediction=text,
            metrics={
                "squad_f1": f1,
                "squad_em": em,
                "squad_hasans_f1": f1 if answerable else None,
                "squad_noans_f1": None if answerable else f1,
            },
            details={"answerable": answerable, "abstained": predicted == ""},
        )


def _row(record: dict, source: str, index: int) -> dict:
    require_fields(record, ("title", "background", "dialogue", "answers"), source, index)
    dialogue = str(record["dialogue"]).rstrip()
    if not dialogue.endswith("A:"):
        raise DataError(
            f"{source}, record {index + 1}: field `dialogue` must end with the question's "
            '"A:" (the earlier turns, then "Q: ...\\n\\nA:").'
        )
    answers = record["answers"]
    answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
    return {
        "title": str(record["title"]),
        "background": str(record["background"]),
        "dialogue": dialogue,
        "answers": answers or [NO_ANSWER],
    }


def _from_hub(records: list[dict], source: str) -> list[dict]:
    """Hub rows (one question each) in the local format: each question's dialogue holds the
    earlier questions on the same paragraph, in dataset order, with their first answer."""
    rows, turns = [], {}
    for i, record in enumerate(records):
        require_fields(record, ("title", "context", "question", "answers"), source, i)
        texts = list((record["answers"] or {}).get("text") or [])
        earlier = turns.setdefault(record["context"], [])
        question = f"Q: {record['question'].strip()}\n\nA:"
        rows.append(
            {
                "title": record["title"],
                "background": record["context"],
                "dialogue": "\n\n".join([*earlier, question]),
                "answers": texts or [NO_ANSWER],
            }
        )
        earlier.append(f"{question} {texts[0] if texts else NO_ANSWER}")
    return rows

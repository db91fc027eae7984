"""MMLU (Hendrycks et al. 2021), 57 subjects of four-way multiple choice, as
lm-evaluation-harness 0.4.13's `mmlu` task group defines it (mmlu/default).

Each question is scored by the log-likelihood of the four answer letters:

    The following are multiple choice questions (with answers) about {subject}.\\n\\n
    [k solved dev questions, each "{question}\\nA. ...\\nD. ...\\nAnswer: {letter}\\n\\n"]
    {question}\\nA. {choice 0}\\nB. {choice 1}\\nC. {choice 2}\\nD. {choice 3}\\nAnswer:

with the continuations " A" ... " D" (lm-eval's `doc_to_choice` after its `target_delimiter`).
The prediction is the letter with the highest log-probability. The exemplars are the first k
questions of the subject's dev split (lm-eval's `first_n` sampler); lm-eval runs MMLU zero-shot
unless told otherwise, and so do we (`num_fewshot: 5` is the original paper's setting).

`mmlu_acc` pools every question (lm-eval's group score, `weight_by_size: True`); the report also
breaks it down by subject and by lm-eval's four categories (stem, humanities, social sciences,
other).

Data: `hub` (cais/mmlu, config `all`: test, and dev for exemplars) or local files in that
format, records {question, subject, choices: [4 strings], answer: 0-3 or "A"-"D"}.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from rlhf_common.datasets import load_hub, read_records
from rlhf_eval.errors import DataError
from rlhf_eval.records import Document, Loglikelihood, LoglikelihoodRequest, MetricSpec, Sample
from rlhf_eval.tasks.base import Task, TaskOptions, register_task

HUB_DATASET = ("cais/mmlu", "all")
LETTERS = ("A", "B", "C", "D")
SUBJECTS: dict[str, str] = {
    "abstract_algebra": "stem",
    "anatomy": "stem",
    "astronomy": "stem",
    "business_ethics": "other",
    "clinical_knowledge": "other",
    "college_biology": "stem",
    "college_chemistry": "stem",
    "college_computer_science": "stem",
    "college_mathematics": "stem",
    "college_medicine": "other",
    "college_physics": "stem",
    "computer_security": "stem",
    "conceptual_physics": "stem",
    "econometrics": "social_sciences",
    "electrical_engineering": "stem",
    "elementary_mathematics": "stem",
    "formal_logic": "humanities",
    "global_facts": "other",
    "high_school_biology": "stem",
    "high_school_chemistry": "stem",
    "high_school_computer_science": "stem",
    "high_school_european_history": "humanities",
    "high_school_geography": "social_sciences",
    "high_school_government_and_politics": "social_sciences",
    "high_school_macroeconomics": "social_sciences",
    "high_school_mathematics": "stem",
    "high_school_microeconomics": "social_sciences",
    "high_school_physics": "stem",
    "high_school_psychology": "social_sciences",
    "high_school_statistics": "stem",
    "high_school_us_history": "humanities",
    "high_school_world_history": "humanities",
    "human_aging": "other",
    "human_sexuality": "social_sciences",
    "international_law": "humanities",
    "jurisprudence": "humanities",
    "logical_fallacies": "humanities",
    "machine_learning": "stem",
    "management": "other",
    "marketing": "other",
    "medical_genetics": "other",
    "miscellaneous": "other",
    "moral_disputes": "humanities",
    "moral_scenarios": "humanities",
    "nutrition": "other",
    "philosophy": "humanities",
    "prehistory": "humanities",
    "professional_accounting": "other",
    "professional_law": "humanities",
    "professional_medicine": "other",
    "professional_psychology": "social_sciences",
    "public_relations": "social_sciences",
    "security_studies": "social_sciences",
    "sociology": "social_sciences",
    "us_foreign_policy": "social_sciences",
    "virology": "other",
    "world_religions": "humanities",
}
"""Subject -> lm-eval's category (mmlu/_generate_configs.py)."""


class MmluOptions(TaskOptions):
    data: str = "hub"
    """`hub` (cais/mmlu, all, test) or a local file of {question, subject, choices, answer}."""
    num_fewshot: int = Field(0, ge=0, le=5)
    """Solved dev questions of the same subject before each question (the first k)."""
    fewshot_data: str | None = None
    """The dev questions, a local file in the same format; default: the hub's dev split when
    `data: hub`. Needed for num_fewshot > 0 with local data."""
    subjects: list[str] | None = None
    """Only these subjects (in data order); None: all 57."""

    @field_validator("subjects")
    @classmethod
    def _known(cls, subjects: list[str] | None) -> list[str] | None:
        unknown = [s for s in subjects or [] if s not in SUBJECTS]
        if unknown:
            raise ValueError(
                f"unknown MMLU subject(s) {', '.join(unknown)}; valid: {', '.join(SUBJECTS)}"
            )
        if subjects is not None and not subjects:
            raise ValueError("subjects must name at least one subject")
        return subjects


def description(subject: str) -> str:
    """lm-eval's per-subject description, blank line included."""
    return (
        "The following are multiple choice questions (with answers) about "
        f"{subject.replace('_', ' ')}.\n\n"
    )


def render_question(row: dict[str, Any]) -> str:
    """lm-eval's doc_to_text: the stripped question, the lettered choices, "Answer:"."""
    options = "".join(f"\n{letter}. {c}" for letter, c in zip(LETTERS, row["choices"], strict=True))
    return f"{row['question'].strip()}{options}\nAnswer:"


def build_context(row: dict[str, Any], shots: list[dict[str, Any]]) -> str:
    """The description, each exemplar answered with its letter, then the question; blank lines
    between (lm-eval's fewshot_delimiter)."""
    solved = [f"{render_question(s)} {LETTERS[s['answer']]}" for s in shots]
    return description(row["subject"]) + "\n\n".join([*solved, render_question(row)])


@register_task
class Mmlu(Task):
    name = "mmlu"
    description = (
        "MMLU, 57 subjects (lm-eval's mmlu): accuracy of the answer letter by log-likelihood."
    )
    Options = MmluOptions
    options: MmluOptions
    metrics = (
        MetricSpec(
            "mmlu_acc",
            "proportion",
            description="accuracy over all questions (lm-eval's size-weighted group score)",
        ),
    )
    breakdowns = ("category", "subject")

    def __init__(self, options: MmluOptions, base_dir: Path):
        super().__init__(options, base_dir)
        self._dev: dict[str, list[dict[str, Any]]] | None = None

    def documents(self) -> list[Document]:
        rows = self._rows(self.options.data, "test")
        if self.options.subjects is not None:
            wanted = set(self.options.subjects)
            rows = [r for r in rows if r["subject"] in wanted]
        docs, seen = [], set()
        for row in rows:
            text = "\x00".join([row["subject"], row["question"], *row["choices"]])
            key = f"{row['subject']}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"
            while key in seen:  # identical questions stay distinct documents
                key += "+"
            seen.add(key)
            docs.append(Document(id=key, data=row))
        return docs[: self.options.limit] if self.options.limit else docs

    def _rows(self, data: str, split: str) -> list[dict[str, Any]]:
        if data == "hub":
            path, config = HUB_DATASET
            return from_records(load_hub(path, config, split), f"hub:{path} ({split})")
        records, source = read_records(data, self.base_dir)
        return from_records(records, str(source))

    def exemplars(self, subject: str) -> list[dict[str, Any]]:
        """The first num_fewshot dev questions of the subject, in file order."""
        k = self.options.num_fewshot
        if k == 0:
            return []
        if self._dev is None:
            source = self.options.fewshot_data or self.options.data
            if source != "hub" and self.options.fewshot_data is None:
                raise DataError(
                    f"mmlu: num_fewshot is {k} but no dev questions are given. Fix: set "
                    "`fewshot_data` to a file of dev questions (the hub's dev split format), "
                    "or use `data: hub`."
                )
            self._dev = {}
            for row in self._rows(source, "dev"):
                self._dev.setdefault(row["subject"], []).append(row)
        shots = self._dev.get(subject, [])[:k]
        if len(shots) < k:
            raise DataError(
                f"mmlu: num_fewshot is {k} but the dev questions have only {len(shots)} for "
                f"{subject}. Fix: lower num_fewshot or give a complete dev file."
            )
        return shots

    def question_context(self, doc: Document) -> str:
        return build_context(doc.data, self.exemplars(doc.data["subject"]))

    def requests(self, doc: Document) -> list[LoglikelihoodRequest]:
        context = self.question_context(doc)
        return [LoglikelihoodRequest(context, " " + letter) for letter in LETTERS]

    def score(self, doc: Document, responses: list[Loglikelihood]) -> Sample:
        logprobs = [r.logprob for r in responses]
        picked = int(np.argmax(logprobs))
        answer = doc.data["answer"]
        return Sample(
            doc_id=doc.id,
            prompt=self.question_context(doc),
            target=LETTERS[answer],
            prediction=LETTERS[picked],
            metrics={"mmlu_acc": float(picked == answer)},
            details={
                "subject": doc.data["subject"],
                "category": SUBJECTS[doc.data["subject"]],
                "logprobs": logprobs,
            },
        )


def from_records(records: list[dict], source: str) -> list[dict[str, Any]]:
    """Rows {question, subject, choices, answer (0-3)}; a bad record is a DataError naming the
    source, the record and the field."""
    return [_row(record, source, i + 1) for i, record in enumerate(records)]


def _row(record: dict, source: str, number: int) -> dict[str, Any]:
    where = f"{source}, record {number}"
    question, subject = record.get("question"), record.get("subject")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: field `question` is missing or empty. Fix: add the question.")
    if subject not in SUBJECTS:
        raise DataError(
            f"{where}: field `subject` is {subject!r}. Fix: use one of MMLU's 57 subject names, "
            "e.g. abstract_algebra (the hub's `subject` column)."
        )
    choices = record.get("choices")
    if choices is None or isinstance(choices, str) or len(list(choices)) != len(LETTERS):
        raise DataError(
            f"{where}: field `choices` must be a list of {len(LETTERS)} answers, got "
            f"{choices!r}. Fix: give the four options in order A-D."
        )
    answer = record.get("answer")
    if isinstance(answer, str) and answer.strip() in LETTERS:
        answer = LETTERS.index(answer.strip())
    if isinstance(answer, bool) or not isinstance(answer, int | np.integer) or not 0 <= answer < 4:
        raise DataError(
            f"{where}: field `answer` is {answer!r}. Fix: give the correct option as 0-3 or A-D."
        )
    return {
        "question": question,
        "subject": subject,
        "choices": [str(c) for c in choices],
        "answer": int(answer),
    }

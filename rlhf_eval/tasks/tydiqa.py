"""TyDi QA, Gold Passage task (Clark et al. 2020), 9 languages, as lm-evaluation-harness 0.4.13's
tydiqa_goldp_<language> tasks define it: the passage that holds the answer, the question, and a
short answer written greedily and cut at the first newline.

The prompt of one item, with the labels in the item's language (LABELS):

    {Context}: {context}\\n\\n{Question}: {question}\\n\\n{Answer}:

Scoring (lm-eval's tydiqa/utils.py, itself MLQA's and SQuAD's script): the stripped answer is
normalised (lower case; every Unicode punctuation character removed; English articles, and the
Arabic article "ال" at a word start, removed; white space collapsed) and compared with each gold
answer; `exact_match` is 1 if it equals one of them and `f1` the best token-level F1. The
headline is F1, the figure the Tulu papers report; both are also broken down by language.

lm-eval runs the task zero-shot, and so does `num_fewshot: 0` (the default). With k > 0, k solved
items of the same language, "{prompt} {first gold answer}" separated by blank lines, come before
the item; they are drawn, seeded by the item's id, from the hub's train split (`data: hub`) or
from `fewshot_data`, so they are not lm-eval's draw. Questions on the same passage are resampled
together.

Data: `hub` (google-research-datasets/tydiqa, secondary_task, validation: the test answers are
not public) or a local file in that format: records {id, context, question, answers: {text:
[...]}} where the id starts with the language's name ("english-..."), as the hub's ids do.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
import sys
import unicodedata
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from rlhf_common.datasets import load_hub, read_records
from rlhf_eval.errors import DataError
from rlhf_eval.records import (
    Document,
    Generation,
    GenerationRequest,
    MetricSpec,
    PromptSource,
    Sample,
)
from rlhf_eval.tasks.base import Task, TaskOptions, register_task

HUB_DATASET = ("google-research-datasets/tydiqa", "secondary_task")
LANGUAGES: dict[str, str] = {
    "ar": "arabic",
    "bn": "bengali",
    "en": "english",
    "fi": "finnish",
    "id": "indonesian",
    "ko": "korean",
    "ru": "russian",
    "sw": "swahili",
    "te": "telugu",
}
"""lm-eval's language codes and the names that begin the dataset's ids."""
LABELS: dict[str, tuple[str, str, str]] = {
    "ar": ("السياق", "السؤال", "الإجابة"),
    "bn": ("প্রসঙ্গ", "প্রশ্ন", "উত্তর"),
    "en": ("Context", "Question", "Answer"),
    "fi": ("Konteksti", "Kysymys", "Vastaus"),
    "id": ("Konteks", "Pertanyaan", "Jawaban"),
    "ko": ("맥락", "질문", "답변"),
    "ru": ("Контекст", "Вопрос", "Ответ"),
    "sw": ("Muktadha", "Swali", "Jibu"),
    "te": ("సందర్భం", "ప్రశ్న", "సమాధానం"),
}
"""The words lm-eval's prompt uses for context, question and answer, per language."""
STOP = ("\n",)


class TydiqaOptions(TaskOptions):
    data: str = "hub"
    """`hub` (google-research-datasets/tydiqa, secondary_task, validation) or a local file in
    that format."""
    languages: list[str] | None = None
    """Which languages (codes: ar, bn, en, fi, id, ko, ru, sw, te); None: all 9."""
    num_fewshot: int = Field(0, ge=0)
    """Solved items of the same language before each item (lm-eval: 0)."""
    fewshot_data: str | None = None
    """Where exemplars come from; default: the hub's train split when `data: hub`."""
    max_new_tokens: int = Field(64, ge=1)
    """Answers are short spans and end at the first newline (lm-eval allows 256)."""

    @field_validator("languages")
    @classmethod
    def _known(cls, languages: list[str] | None) -> list[str] | None:
        unknown = [code for code in languages or [] if code not in LANGUAGES]
        if unknown:
            raise ValueError(
                f"unknown TyDi QA GoldP language(s) {', '.join(unknown)}; valid: "
                f"{', '.join(LANGUAGES)}"
            )
        if languages is not None and not languages:
            raise ValueError("languages must name at least one language")
        return languages


# ---- lm-eval's answer normalisation and metrics ----------------------------------------------


@lru_cache(maxsize=1)
def punctuation() -> frozenset[str]:
    """Every Unicode punctuation character (category P*) and ASCII punctuation."""
    return frozenset(
        chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")
    ) | frozenset(string.punctuation)


def normalize_answer(text: str, language: str) -> str:
    """Lower case, drop punctuation, drop articles (English, and Arabic "ال" at a word start),
    collapse white space: lm-eval's normalize_answer, in its order."""
    text = "".join(ch for ch in text.lower() if ch not in punctuation())
    if language == "en":
        text = re.sub(r"\b(a|an|the)\b", " ", text)
    elif language == "ar":
        text = re.sub(r"(?:^|\s)ال", " ", text)
    return " ".join(text.split())


def f1_score(prediction: str, gold: str, language: str) -> float:
    """Token-level F1 of the normalised answers (0 when they share no token)."""
    predicted, wanted = (
        normalize_answer(prediction, language).split(),
        normalize_answer(gold, language).split(),
    )
    shared = sum((Counter(predicted) & Counter(wanted)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(wanted)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str, language: str) -> float:
    return float(normalize_answer(prediction, language) == normalize_answer(gold, language))


def answer_scores(prediction: str, golds: list[str], language: str) -> dict[str, float]:
    """The best exact match and F1 over the gold answers, of the stripped prediction."""
    prediction = prediction.strip()
    return {
        "f1": max(f1_score(prediction, g, language) for g in golds),
        "exact_match": max(exact_match(prediction, g, language) for g in golds),
    }


def render(row: dict[str, Any]) -> str:
    """lm-eval's doc_to_text for the item's language."""
    context, question, answer = LABELS[row["language"]]
    return f"{context}: {row['context']}\n\n{question}: {row['question']}\n\n{answer}:"


# ---- the task --------------------------------------------------------------------------------


@register_task
class Tydiqa(Task):
    name = "tydiqa_goldp"
    description = "TyDi QA GoldP, 9 languages (lm-eval's tydiqa_goldp_*): F1 and exact match."
    Options = TydiqaOptions
    options: TydiqaOptions
    metrics = (
        MetricSpec("f1", "mean", description="best token F1 against the gold answers"),
        MetricSpec("exact_match", "proportion", description="normalised answer equals a gold one"),
    )
    breakdowns = ("language",)

    def __init__(self, options: TydiqaOptions, base_dir: Path):
        super().__init__(options, base_dir)
        self._pool: dict[str, list[dict[str, Any]]] | None = None

    def documents(self) -> list[Document]:
        rows = self._rows(self.options.data, "validation")
        docs, seen = [], set()
        for row in rows:
            key = hashlib.sha1(render(row).encode()).hexdigest()[:12]
            while key in seen:  # identical items stay distinct documents
                key += "+"
            seen.add(key)
            passage = hashlib.sha1(row["context"].encode()).hexdigest()[:12]
            docs.append(Document(id=key, data=row, cluster=passage))
        return docs[: self.options.limit] if self.options.limit else docs

    def _rows(self, data: str, split: str) -> list[dict[str, Any]]:
        wanted = set(self.options.languages or LANGUAGES)
        if data == "hub":
            path, config = HUB_DATASET
            rows = from_records(load_hub(path, config, split), f"hub:{path} ({split})")
        else:
            records, source = read_records(data, self.base_dir)
            rows = from_records(records, str(source))
        return [row for row in rows if row["language"] in wanted]

    def exemplars(self, doc: Document) -> list[dict[str, Any]]:
        """k items of the doc's language, none on its passage, drawn seeded by its id."""
        k = self.options.num_fewshot
        if k == 0:
            return []
        if self._pool is None:
            source = self.options.fewshot_data or self.options.data
            if source != "hub" and self.options.fewshot_data is None:
                raise DataError(
                    f"tydiqa_goldp: num_fewshot is {k} but no exemplars are given. Fix: set "
                    "`fewshot_data` to a file of solved items (the hub's format), or use "
                    "`data: hub` (exemplars from its train split)."
                )
            self._pool = {}
            for row in self._rows(source, "train"):
                self._pool.setdefault(row["language"], []).append(row)
        pool = [
            row
            for row in self._pool.get(doc.data["language"], [])
            if row["context"] != doc.data["context"]
        ]
        if len(pool) < k:
            raise DataError(
                f"tydiqa_goldp: num_fewshot is {k} but only {len(pool)} exemplars of language "
                f"{doc.data['language']} are available. Fix: lower num_fewshot or give more."
            )
        seed = int(hashlib.sha256(doc.id.encode()).hexdigest()[:16], 16)
        return random.Random(seed).sample(pool, k)

    def prompt(self, doc: Document) -> str:
        solved = [f"{render(row)} {row['answers'][0]}" for row in self.exemplars(doc)]
        return "\n\n".join([*solved, render(doc.data)])

    def requests(self, doc: Document) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                self.prompt(doc),
                max_new_tokens=self.options.max_new_tokens,
                stop=STOP,
                temperature=0.0,
                source=PromptSource(text=render(doc.data)),
            )
        ]

    def score(self, doc: Document, responses: list[Generation]) -> Sample:
        text = responses[0].texts[0]
        row = doc.data
        return Sample(
            doc_id=doc.id,
            prompt=self.prompt(doc),
            target=row["answers"],
            prediction=text.strip(),
            metrics=answer_scores(text, row["answers"], row["language"]),
            details={"language": row["language"], "id": row["id"]},
        )


# ---- data ------------------------------------------------------------------------------------

_PREFIXES = {name: code for code, name in LANGUAGES.items()}


def from_records(records: list[dict], source: str) -> list[dict[str, Any]]:
    """Rows {id, language, context, question, answers}; items in languages outside the GoldP
    nine are a DataError, as is a record without its fields."""
    return [_row(record, source, i + 1) for i, record in enumerate(records)]


def _row(record: dict, source: str, number: int) -> dict[str, Any]:
    where = f"{source}, record {number}"
    missing = [
        f
        for f in ("id", "context", "question")
        if not isinstance(record.get(f), str) or not record[f].strip()
    ]
    if missing:
        raise DataError(
            f"{where}: missing field(s) {', '.join(missing)}. Fix: each record needs id, "
            "context, question and answers (the hub's secondary_task format)."
        )
    language = _PREFIXES.get(record["id"].split("-", 1)[0])
    if language is None:
        raise DataError(
            f"{where}: field `id` is {record['id']!r}; it must start with the language's name "
            f"and a hyphen ({', '.join(n + '-' for n in _PREFIXES)}), as the hub's ids do."
        )
    answers = record.get("answers")
    texts = answers.get("text") if isinstance(answers, dict) else answers
    if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
        raise DataError(
            f'{where}: field `answers` must hold the gold answers ({{"text": [...]}} or a '
            f"list of strings), got {answers!r}. Fix: give at least one answer."
        )
    return {
        "id": record["id"],
        "language": language,
        "context": record["context"],
        "question": record["question"],
        "answers": list(texts),
    }

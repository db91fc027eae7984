"""AlpacaEval (Li et al. 2023; Dubois et al. 2024): the model answers AlpacaEval's 805
instructions, and a suite judge compares each answer with the benchmark's reference answer.

Data: `hub` reads the benchmark's own file from the tatsu-lab/alpaca_eval dataset repository:
`reference: gpt4_turbo` (AlpacaEval 2.0, alpaca_eval_gpt4_baseline.json) or `text_davinci_003`
(AlpacaEval 1.0, alpaca_eval.json); records {instruction, output (the reference answer),
generator, dataset}. A local JSON/JSONL file in that format works offline.

The model's answer: greedy, the instruction alone as the prompt (give chat models
`chat_template: true`, as AlpacaEval's own model configs do), at most `max_new_tokens`.

The verdict: AlpacaEval's annotators are GPT-4 models behind a prompt of their own; here the
judge is any `judges:` model behind rlhf_eval.judges.pairwise's prompt (fenced responses that
cannot pose as instructions), asked in both orders, and a pair of disagreeing verdicts is a
tie. So the numbers are AlpacaEval's instructions and references under a different judge: they
compare models within one run, not with AlpacaEval's leaderboard. Per sample: win_rate 1 /
0.5 / 0 (its mean is the win rate against the reference), win, loss, tie, and whether the two
orders agreed; broken down by AlpacaEval's source `dataset`. A verdict the judge gives in a
form that cannot be read fails that sample: counted, never a loss.

Length, which such judges reward: each answer's tokens and distinct words are metrics (with
intervals, so they enter the tax table), and each sample's details hold both answers' lengths in
characters, AlpacaEval's unit for the length-controlled win rate the preference section of the
report shows beside the raw one (rlhf_eval.length_control).
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field

from rlhf_common.datasets import load_hub_file, read_records
from rlhf_eval.errors import DataError
from rlhf_eval.judges.pairwise import (
    VerdictBy,
    judge_prompt,
    letter_preference,
    read_order,
    requests_for,
)
from rlhf_eval.metrics.preference import combine_orders, outcome
from rlhf_eval.records import (
    Document,
    Generation,
    GenerationRequest,
    MetricSpec,
    PromptSource,
    Sample,
)
from rlhf_eval.tasks.base import ScoringServices, Task, TaskOptions, register_task

HUB_REPOSITORY = "tatsu-lab/alpaca_eval"
REFERENCE_FILES = {
    "gpt4_turbo": "alpaca_eval_gpt4_baseline.json",
    "text_davinci_003": "alpaca_eval.json",
}
"""The reference answers of AlpacaEval 2.0 and 1.0, files of the hub dataset repository."""
METRICS = ("win_rate", "win", "loss", "tie", "consistent", "output_tokens", "distinct_words")


class AlpacaEvalOptions(TaskOptions):
    data: str = "hub"
    """`hub` (the tatsu-lab/alpaca_eval file of `reference`) or a local file in its format."""
    reference: Literal["gpt4_turbo", "text_davinci_003"] = "gpt4_turbo"
    """Whose reference answers `data: hub` reads: AlpacaEval 2.0's or 1.0's."""
    judge: str
    """The name of a suite `judges:` entry (a causal LM)."""
    verdict_by: VerdictBy = "loglikelihood"
    """Compare the judge's log P(" A") with log P(" B"), or `generate` and read its first word."""
    max_new_tokens: int = Field(1024, ge=1)

    def judge_names(self) -> list[str]:
        return [self.judge]


@register_task
class AlpacaEval(Task):
    name = "alpaca_eval"
    description = (
        "AlpacaEval instructions: win rate of the model's answer against the reference answer, "
        "by a suite judge in both orders (ties count half)."
    )
    Options = AlpacaEvalOptions
    options: AlpacaEvalOptions
    version = 2  # 2: output_tokens and distinct_words per sample
    metrics = (
        MetricSpec(
            "win_rate",
            "mean",
            description="preference for the model over the reference (win 1, tie 0.5, loss 0)",
        ),
        MetricSpec("win", "proportion", description="judged better than the reference"),
        MetricSpec("loss", "proportion", False, "judged worse than the reference"),
        MetricSpec("tie", "proportion", description="the two orders' verdicts disagree"),
        MetricSpec("consistent", "proportion", description="the same verdict in both orders"),
        MetricSpec(
            "output_tokens",
            "mean",
            higher_is_better=False,
            description="tokens per answer (the model's tokenizer): length bias shows here",
        ),
        MetricSpec(
            "distinct_words",
            "mean",
            description="distinct whitespace-separated words per answer (verbosity)",
        ),
    )
    breakdowns = ("dataset",)

    def notes(self, samples: dict[str, list[dict]] | None = None) -> list[str]:
        return [
            f"judged by '{self.options.judge}' against the {self.options.reference} reference "
            "answers, both orders (not AlpacaEval's GPT-4 annotator: compare models within this "
            "run, not with AlpacaEval's leaderboard)"
        ]

    def documents(self) -> list[Document]:
        if self.options.data == "hub":
            filename = REFERENCE_FILES[self.options.reference]
            records, source = load_hub_file(HUB_REPOSITORY, filename), f"hub:{HUB_REPOSITORY}"
        else:
            found, path = read_records(self.options.data, self.base_dir)
            records, source = found, str(path)
        docs, seen = [], set()
        for i, record in enumerate(records):
            row = _row(record, f"{source}, record {i + 1}")
            key = hashlib.sha1(row["instruction"].encode()).hexdigest()[:12]
            while key in seen:  # identical instructions stay distinct documents
                key += "+"
            seen.add(key)
            docs.append(Document(id=key, data=row))
        return docs[: self.options.limit] if self.options.limit else docs

    def requests(self, doc: Document) -> list[GenerationRequest]:
        instruction = doc.data["instruction"]
        return [
            GenerationRequest(
                instruction,
                max_new_tokens=self.options.max_new_tokens,
                # Explicit: the whole answer, greedy, whatever the model's generation defaults.
                stop=(),
                temperature=0.0,
                source=PromptSource(text=instruction),
            )
        ]

    def score_batch(
        self,
        docs: list[Document],
        responses: list[list[Generation]],
        services: ScoringServices,
    ) -> list[Sample]:
        """Both orders of every document of the chunk go to the judge in one batch."""
        how = self.options.verdict_by
        answers = [r[0].texts[0].strip() for r in responses]
        asks, spans = [], []
        for doc, answer in zip(docs, answers, strict=True):
            reference = doc.data["reference"]
            for first, second in ((answer, reference), (reference, answer)):
                batch = requests_for(judge_prompt(doc.data["instruction"], first, second, how), how)
                spans.append((len(asks), len(asks) + len(batch)))
                asks.extend(batch)
        judges = services.judges
        if how == "loglikelihood":
            said = judges.loglikelihood(self.options.judge, asks)
        else:
            said = judges.generate(self.options.judge, asks)
        samples = []
        for k, (doc, answer, generation) in enumerate(
            zip(docs, answers, [r[0] for r in responses], strict=True)
        ):
            first = read_order(said[slice(*spans[2 * k])], how)
            second = read_order(said[slice(*spans[2 * k + 1])], how)
            samples.append(self._sample(doc, answer, generation, first, second))
        return samples

    def _sample(self, doc: Document, answer: str, generation: Generation, first, second) -> Sample:
        model_first = letter_preference(first.letter, "A")
        model_second = letter_preference(second.letter, "B")
        score = combine_orders(model_first, model_second)
        tokens = generation.n_tokens[0] if generation.n_tokens else None
        details = {
            "dataset": doc.data["dataset"],
            "generator": doc.data["generator"],
            "judge": self.options.judge,
            "reference_output": doc.data["reference"],
            "model_first": {"verdict": first.letter, "raw": first.raw, "preference": model_first},
            "model_second": {
                "verdict": second.letter,
                "raw": second.raw,
                "preference": model_second,
            },
            "length": len(answer),
            "reference_length": len(doc.data["reference"]),
            "n_tokens": tokens if tokens is not None and tokens >= 0 else None,
        }
        sample = Sample(
            doc_id=doc.id,
            prompt=doc.data["instruction"],
            target=doc.data["reference"],
            prediction=answer,
            metrics=dict.fromkeys(METRICS),
            details=details,
        )
        if score is None:
            sample.error = (
                "judge verdict unreadable ("
                + "; ".join(
                    f"{name}: {order.raw[:80]!r}"
                    for name, order in (("model first", first), ("model second", second))
                    if order.letter is None
                )
                + "). Only a first word A, B or C counts as a verdict."
            )
            return sample
        details["outcome"] = outcome(score)
        sample.metrics = {
            "win_rate": score,
            "win": float(score == 1.0),
            "loss": float(score == 0.0),
            "tie": float(score == 0.5),
            "consistent": float(model_first == model_second),
            "output_tokens": None if details["n_tokens"] is None else float(details["n_tokens"]),
            "distinct_words": float(len(set(answer.split()))),
        }
        return sample


def _row(record: dict, where: str) -> dict[str, str]:
    instruction, reference = record.get("instruction"), record.get("output")
    missing = [
        name
        for name, value in (("instruction", instruction), ("output", reference))
        if not isinstance(value, str) or not value.strip()
    ]
    if missing:
        raise DataError(
            f"{where}: missing field(s) {', '.join(missing)}. Fix: each record needs the "
            "instruction and the reference answer as `output` (AlpacaEval's format)."
        )
    return {
        "instruction": instruction,
        "reference": reference,
        "generator": str(record.get("generator") or ""),
        "dataset": str(record.get("dataset") or ""),
    }

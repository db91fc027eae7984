"""Likert scores and metadata flags (InstructGPT table 3, fig. 4): an LLM rater gives every
output of an `instructions` entry an overall 1-7 score and answers the labelers' yes/no
questions (rlhf_eval.judges.rubrics), with the hallucination flag asked on closed-domain prompts
only (summarisation, extraction, closed QA; None elsewhere: outside its population).

Per sample: `likert` (a mean with a bootstrap interval) and one 0/1 metric per flag (Wilson
intervals: the flag's prevalence). An answer the rater's first word does not settle (with
`verdict_by: generate`) makes that metric NaN, a counted failure, with the raw answer in
`details.unreadable`; the other metrics of the output stand.
"""

from __future__ import annotations

import math

from rlhf_eval.judges.pairwise import VerdictBy
from rlhf_eval.judges.rubrics import FLAGS, Question, flag_prompt, likert_prompt
from rlhf_eval.records import Document, Generation, Loglikelihood, MetricSpec, Sample
from rlhf_eval.tasks.base import ScoringServices, register_task
from rlhf_eval.tasks.instructions import item_text
from rlhf_eval.tasks.judged import JudgedOptions, JudgedTask


class RatingsOptions(JudgedOptions):
    verdict_by: VerdictBy = "loglikelihood"
    """Read each answer by comparing the log-probabilities of the allowed answers, or
    `generate` and read the rater's first word."""


@register_task
class Ratings(JudgedTask):
    name = "ratings"
    description = (
        "Likert 1-7 and the InstructGPT labelers' metadata flags for an instructions entry's "
        "outputs, by an LLM rater; hallucination on closed-domain prompts only."
    )
    Options = RatingsOptions
    metrics = (
        MetricSpec("likert", "mean", description="overall quality, 1 (very bad) to 7 (excellent)"),
        *(MetricSpec(f.name, "proportion", f.higher_is_better, f.label) for f in FLAGS),
    )
    breakdowns = ("category",)
    options: RatingsOptions

    def score_batch(
        self, docs: list[Document], responses: list[list], services: ScoringServices
    ) -> list[Sample]:
        how = self.options.verdict_by
        outputs = self.outputs(services, services.model, docs)
        questions: dict[int, list[Question]] = {}
        for i, (doc, output) in enumerate(zip(docs, outputs, strict=True)):
            if output.error is None:
                questions[i] = self._questions(doc, output.text or "", how)
        asks, spans = [], []
        for i in questions:
            for question in questions[i]:
                batch = question.requests(how)
                spans.append((len(asks), len(asks) + len(batch)))
                asks.extend(batch)
        answers: list[Loglikelihood | Generation] = []
        if asks:
            judges, name = services.judges, self.options.judge
            answers = (
                judges.loglikelihood(name, asks)
                if how == "loglikelihood"
                else judges.generate(name, asks)
            )
        samples, k = [], 0
        for i, (doc, output) in enumerate(zip(docs, outputs, strict=True)):
            metrics: dict[str, float | None] = {spec.name: None for spec in self.metrics}
            details: dict = {
                "category": doc.data["category"],
                "closed_domain": doc.data["closed_domain"],
                "judge": self.options.judge,
            }
            if i in questions:
                raw, unreadable = {}, {}
                for question in questions[i]:
                    value, said = question.read(answers[slice(*spans[k])], how)
                    k += 1
                    raw[question.metric] = said
                    if value is None:
                        unreadable[question.metric] = said
                    metrics[question.metric] = math.nan if value is None else value
                details["answers"] = raw
                if unreadable:
                    details["unreadable"] = unreadable
            samples.append(
                Sample(
                    doc_id=doc.id,
                    prompt=item_text(doc.data),
                    target=doc.data.get("reference"),
                    prediction=output.text,
                    metrics=metrics,
                    details=details,
                    error=output.error,
                )
            )
        return samples

    @staticmethod
    def _questions(doc: Document, output: str, how: VerdictBy) -> list[Question]:
        request = item_text(doc.data)
        asked = [Question("likert", likert_prompt(request, output, how), "likert")]
        for flag in FLAGS:
            if flag.closed_domain_only and not doc.data["closed_domain"]:
                continue  # outside the flag's population: left None
            asked.append(Question(flag.name, flag_prompt(request, output, flag, how), "flag"))
        return asked

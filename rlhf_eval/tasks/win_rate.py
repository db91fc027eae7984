"""Win rate against the baseline (InstructGPT fig. 1): how often a judge prefers each model's
output to the suite's `role: baseline` model's output on the same prompt; ties count half.

For every prompt of the `of` entry (an `instructions` task) the judge compares the model's output
with the baseline's, both read from the run (the runner evaluates the baseline first):
- `judge_kind: reward_model`: preference = sigmoid(r_model - r_baseline) from a scalar reward
  model (rlhf_eval.judges.reward_model); |preference - 0.5| < `tie_band` is a tie.
- `judge_kind: llm`: a language model asked in both orders (model's output as A, then as B);
  a pair whose two verdicts disagree is a tie (rlhf_eval.judges.pairwise), or with
  `orders: calibrated` the two orders' log-odds are averaged (a constant position bias cancels)
  and `tie_band` applies as for the reward model.
Per sample: win_rate 1 / 0.5 / 0 (its mean is the win rate, bootstrapped by prompt), win / loss /
tie as 0/1, and for the LLM judge whether the two orders agreed. A judge that fails on a prompt
(an unparseable answer) fails that sample: counted, never a loss. The baseline's own samples are
outside every metric's population (None without an error), not a 50% win rate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlhf_eval.judges.pairwise import (
    OrderVerdict,
    VerdictBy,
    calibrated_preference,
    judge_prompt,
    letter_preference,
    read_order,
    requests_for,
)
from rlhf_eval.judges.reward_model import (
    RewardTemplate,
    preference,
    preference_verdict,
)
from rlhf_eval.metrics.preference import combine_orders, outcome
from rlhf_eval.records import Document, Generation, Loglikelihood, MetricSpec, Sample
from rlhf_eval.tasks.base import JudgeClient, ScoringServices, register_task
from rlhf_eval.tasks.instructions import item_text
from rlhf_eval.tasks.judged import JudgedOptions, JudgedTask, Output

METRICS = ("win_rate", "win", "loss", "tie", "consistent")


class WinRateOptions(JudgedOptions):
    judge_kind: Literal["reward_model", "llm"]
    tie_band: float = Field(0.05, ge=0.0, lt=0.5)
    """Reward model (and calibrated LLM judge): |preference - 0.5| below this is a tie, with
    preference = sigmoid(r_model - r_baseline) (or of the mean log-odds)."""
    reward_template: RewardTemplate = "instruction"
    """Reward model: how it reads the prompt (instruction, hh, chat or plain; see
    rlhf_eval.judges.reward_model). Use the format it was trained on."""
    verdict_by: VerdictBy = "loglikelihood"
    """LLM judge: compare log P(" A") with log P(" B"), or `generate` and read the first word."""
    orders: Literal["tie", "calibrated"] = "tie"
    """LLM judge: two orders that disagree make a tie (the issue's rule), or `calibrated`: the
    preference is the sigmoid of the mean log-odds over both orders, which cancels a constant
    position bias, with `tie_band` (needs verdict_by: loglikelihood)."""

    def needs_baseline(self) -> bool:
        return True

    @model_validator(mode="after")
    def _calibration_needs_logprobs(self) -> WinRateOptions:
        if self.orders == "calibrated" and (
            self.judge_kind != "llm" or self.verdict_by != "loglikelihood"
        ):
            raise ValueError(
                "`orders: calibrated` averages the LLM judge's log-odds over both orders: it "
                "needs judge_kind: llm and verdict_by: loglikelihood"
            )
        return self


@register_task
class WinRate(JudgedTask):
    name = "win_rate"
    description = (
        "Win rate against the baseline model on an instructions entry's outputs, by a reward "
        "model or an LLM judge (both orders); ties count half; W/L/T and position consistency."
    )
    Options = WinRateOptions
    metrics = (
        MetricSpec(
            "win_rate",
            "mean",
            description="preference for the model over the baseline (win 1, tie 0.5, loss 0)",
        ),
        MetricSpec("win", "proportion", description="judged better than the baseline"),
        MetricSpec("loss", "proportion", False, "judged worse than the baseline"),
        MetricSpec("tie", "proportion", description="neither preferred (a tie)"),
        MetricSpec(
            "consistent",
            "proportion",
            description="LLM judge: the same verdict with the two outputs' positions swapped",
        ),
    )
    breakdowns = ("category",)
    options: WinRateOptions

    def score_batch(
        self, docs: list[Document], responses: list[list], services: ScoringServices
    ) -> list[Sample]:
        model, baseline = services.model, services.baseline
        if baseline is None:
            raise ValueError(
                "the suite has no `role: baseline` model to compare with. Fix: give one "
                "`models:` entry `role: baseline` (the paper's SFT model)."
            )
        if model == baseline:
            # The baseline against itself is no measurement: outside the population, no error.
            return [self._sample(doc, None, None, {"is_baseline": True}, baseline) for doc in docs]
        ours, theirs = self.outputs(services, model, docs), self.outputs(services, baseline, docs)
        ready = [i for i in range(len(docs)) if ours[i].error is None and theirs[i].error is None]
        if self.options.judge_kind == "reward_model":
            judged = self._reward_model(
                services.judges, [docs[i] for i in ready], ours, theirs, ready
            )
        else:
            judged = self._llm(services.judges, [docs[i] for i in ready], ours, theirs, ready)
        samples = []
        for i, doc in enumerate(docs):
            if i not in judged:
                error = ours[i].error or theirs[i].error
                samples.append(self._sample(doc, ours[i], theirs[i], {}, baseline, error=error))
                continue
            score, details, error = judged[i]
            samples.append(self._sample(doc, ours[i], theirs[i], details, baseline, score, error))
        return samples

    # ---- judges ---------------------------------------------------------------------------------

    def _reward_model(
        self,
        judges: JudgeClient,
        docs: list[Document],
        ours: list[Output],
        theirs: list[Output],
        index: list[int],
    ) -> dict[int, tuple[float | None, dict, str | None]]:
        scorer = judges.reward_model(self.options.judge)
        template = self.options.reward_template
        pairs = [
            scorer.render(d.data["prompt"], d.data["input"], output.text or "", template)
            for outputs in (ours, theirs)
            for d, output in zip(docs, (outputs[i] for i in index), strict=True)
        ]
        rewards = scorer.scores([p for p, _ in pairs], [c for _, c in pairs])
        out = {}
        for k, i in enumerate(index):
            mine, base = rewards[k], rewards[len(index) + k]
            p = preference(mine, base)
            details = {"reward": mine, "baseline_reward": base, "preference": p}
            out[i] = (preference_verdict(p, self.options.tie_band), details, None)
        return out

    def _llm(
        self,
        judges: JudgeClient,
        docs: list[Document],
        ours: list[Output],
        theirs: list[Output],
        index: list[int],
    ) -> dict[int, tuple[float | None, dict, str | None]]:
        how = self.options.verdict_by
        asks, spans = [], []
        for doc, i in zip(docs, index, strict=True):
            request = item_text(doc.data)
            for first, second in ((ours[i].text, theirs[i].text), (theirs[i].text, ours[i].text)):
                batch = requests_for(judge_prompt(request, first, second, how), how)
                spans.append((len(asks), len(asks) + len(batch)))
                asks.extend(batch)
        if how == "loglikelihood":
            answers: list[Loglikelihood | Generation] = judges.loglikelihood(
                self.options.judge, asks
            )
        else:
            answers = judges.generate(self.options.judge, asks)
        out = {}
        for k, i in enumerate(index):
            first = read_order(answers[slice(*spans[2 * k])], how)
            second = read_order(answers[slice(*spans[2 * k + 1])], how)
            out[i] = _both_orders(first, second)
            if self.options.orders == "calibrated":
                p = calibrated_preference(first, second)
                _, details, _ = out[i]
                details["preference"] = p
                out[i] = (preference_verdict(p, self.options.tie_band), details, None)
        return out

    # ---- samples ---------------------------------------------------------------------------------

    def _sample(
        self,
        doc: Document,
        ours: Output | None,
        theirs: Output | None,
        details: dict,
        baseline: str,
        score: float | None = None,
        error: str | None = None,
    ) -> Sample:
        data = doc.data
        record = {
            "category": data["category"],
            "closed_domain": data["closed_domain"],
            "judge": self.options.judge,
            "judge_kind": self.options.judge_kind,
            "baseline": baseline,
            **details,
        }
        if theirs is not None:
            record["baseline_output"] = theirs.text
        if ours is not None and theirs is not None:
            mine, base = ours.details.get("n_tokens"), theirs.details.get("n_tokens")
            record["tokens"], record["baseline_tokens"] = mine, base
            if mine is not None and base is not None:
                record["length_diff"] = mine - base
        metrics: dict[str, float | None] = dict.fromkeys(METRICS)
        if score is not None and error is None:
            record["outcome"] = outcome(score)
            metrics.update(
                win_rate=score,
                win=float(score == 1.0),
                loss=float(score == 0.0),
                tie=float(score == 0.5),
                consistent=details.get("consistent"),
            )
        return Sample(
            doc_id=doc.id,
            prompt=item_text(data),
            target=data.get("reference"),
            prediction=None if ours is None else ours.text,
            metrics=metrics,
            details=record,
            error=error,
        )


def _both_orders(
    first: OrderVerdict, second: OrderVerdict
) -> tuple[float | None, dict, str | None]:
    """The verdict of a both-order LLM judgement, its record, and an error if either order's
    answer could not be read."""
    model_first = letter_preference(first.letter, "A")
    model_second = letter_preference(second.letter, "B")
    details = {
        "model_first": {"verdict": first.letter, "raw": first.raw, "preference": model_first},
        "model_second": {"verdict": second.letter, "raw": second.raw, "preference": model_second},
    }
    score = combine_orders(model_first, model_second)
    if score is None:
        failed = [
            f"{name} ({order.raw[:80]!r})"
            for name, order in (("model's output first", first), ("second", second))
            if order.letter is None
        ]
        return (
            None,
            details,
            "judge verdict unreadable: "
            + "; ".join(failed)
            + (". Only a first word A, B or C counts as a verdict."),
        )
    details["consistent"] = float(model_first == model_second)
    return score, details, None

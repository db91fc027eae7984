"""Pairwise preference statistics as pure functions: verdicts against a baseline in, win/loss/tie
counts, the win rate with a prompt-clustered bootstrap interval, both-order consistency and the
agreement of two judges (or two labelers) out.

Shared by every judge: the reward-model and LLM judges of the `win_rate` task and the human labels
of `rlhf-eval label` all reduce to a list of `Verdict`s, so their numbers are computed alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rlhf_common.stats import Estimate, bootstrap_mean, wilson

WIN, TIE, LOSS = 1.0, 0.5, 0.0
_OUTCOMES = {WIN: "win", TIE: "tie", LOSS: "loss"}


@dataclass(frozen=True)
class Verdict:
    """One judgement of `model`'s output against `baseline`'s on prompt `doc_id`.

    score: 1 the model's output is preferred, 0.5 a tie, 0 the baseline's is preferred, None the
    judge failed (unparseable answer, scorer error): a failure is counted and left out of the
    win rate's denominator, never scored as a loss.
    """

    doc_id: str
    model: str
    baseline: str
    judge: str
    score: float | None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.score is not None and self.score not in _OUTCOMES:
            raise ValueError(
                f"verdict on '{self.doc_id}' by '{self.judge}': score must be 1 (win), 0.5 (tie), "
                f"0 (loss) or None (judge failure), got {self.score!r}"
            )


def outcome(score: float | None) -> str | None:
    """'win', 'tie' or 'loss' for a verdict score; None for a failure."""
    return None if score is None else _OUTCOMES[score]


def win_rate_summary(
    verdicts: Sequence[Verdict], confidence: float = 0.95, iterations: int = 10_000, seed: int = 0
) -> dict:
    """W/L/T counts and the win rate (wins + ties / 2) / (wins + ties + losses) of one model
    against one baseline, with a percentile bootstrap interval that resamples whole prompts.

    Ties count half a win, as in the paper's preference rate. Several verdicts on one prompt
    (several samples, labelers or judges) are correlated, hence the prompts as clusters. Keys:
    wins, losses, ties, failures, n (verdicts scored), prompts, win_rate, lo, hi, method,
    confidence. Verdicts of more than one (model, baseline) pair are a ValueError: a win rate is
    of one model against one baseline.
    """
    pairs = {(v.model, v.baseline) for v in verdicts}
    if len(pairs) > 1:
        raise ValueError(
            "win_rate_summary takes the verdicts of one model against one baseline, got "
            + ", ".join(f"{m} vs {b}" for m, b in sorted(pairs))
        )
    counts = Counter(outcome(v.score) for v in verdicts)
    scored = [v for v in verdicts if v.score is not None]
    estimate = bootstrap_mean(
        [v.score for v in scored],
        confidence,
        iterations,
        seed,
        clusters=[v.doc_id for v in scored],
    )
    return {
        "wins": counts["win"],
        "losses": counts["loss"],
        "ties": counts["tie"],
        "failures": counts[None],
        "n": estimate.n,
        "prompts": len({v.doc_id for v in scored}),
        "win_rate": estimate.point,
        "lo": estimate.lo,
        "hi": estimate.hi,
        "method": estimate.method,
        "confidence": confidence,
    }


def combine_orders(first: float | None, second: float | None) -> float | None:
    """One verdict from a judge asked in both orders (model shown first, then second).

    Each argument is the judge's preference for the model's output in that order (1, 0.5, 0) or
    None for a failure. A consistent pair keeps its verdict; any disagreement, including a win
    against a tie, is a tie: the judge's preference did not survive swapping the positions, so
    it is not evidence for either side. A failure in either order fails the pair.
    """
    if first is None or second is None:
        return None
    for value in (first, second):
        if value not in _OUTCOMES:
            raise ValueError(f"a preference must be 1, 0.5 or 0, got {value!r}")
    return first if first == second else TIE


def position_consistency(
    pairs: Sequence[tuple[float | None, float | None]], confidence: float = 0.95
) -> Estimate:
    """Share of both-order judgements whose two verdicts agree (Wilson interval); pairs with a
    failure in either order are left out. A position-blind judge scores 1."""
    done = [(a, b) for a, b in pairs if a is not None and b is not None]
    return wilson(sum(a == b for a, b in done), len(done), confidence)


def agreement(a: Sequence[Verdict], b: Sequence[Verdict], confidence: float = 0.95) -> dict:
    """How often two judges' verdicts agree (win, tie and loss each a category) on the prompts
    and models both judged, with Cohen's kappa (1960) correcting for chance agreement.

    Verdicts are matched on (doc_id, model); failures on either side leave the pair out. Keys: n,
    agreement (share equal) with its Wilson interval lo, hi, and kappa = (p_o - p_e) / (1 - p_e),
    p_e = sum over categories of the two judges' marginal shares multiplied; kappa is None where
    p_e = 1 (both judges gave one and the same category throughout: chance explains everything).
    """
    left, right = _by_key(a, "a"), _by_key(b, "b")
    keys = [k for k in left if k in right and left[k] is not None and right[k] is not None]
    x = [outcome(left[k]) for k in keys]
    y = [outcome(right[k]) for k in keys]
    n = len(keys)
    agree = sum(p == q for p, q in zip(x, y, strict=True))
    share = wilson(agree, n, confidence)
    kappa = None
    if n:
        mx, my = Counter(x), Counter(y)
        expected = sum(mx[c] * my[c] for c in _OUTCOMES.values()) / (n * n)
        if expected < 1:
            kappa = (agree / n - expected) / (1 - expected)
    return {
        "n": n,
        "agreement": share.point,
        "lo": share.lo,
        "hi": share.hi,
        "kappa": kappa,
        "method": share.method,
        "confidence": confidence,
    }


def _by_key(verdicts: Sequence[Verdict], side: str) -> dict[tuple[str, str], float | None]:
    scores: dict[tuple[str, str], float | None] = {}
    for v in verdicts:
        key = (v.doc_id, v.model)
        if key in scores:
            raise ValueError(
                f"agreement: verdict list {side} holds two verdicts on prompt '{v.doc_id}' for "
                f"model '{v.model}'; pass one verdict per prompt and model (one judge or labeler)"
            )
        scores[key] = v.score
    return scores

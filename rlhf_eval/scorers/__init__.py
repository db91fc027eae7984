"""Scorers that put a number on a model's output without a judge model of the suite's:
toxicity (alt-profanity-check, Detoxify, Perspective, any sequence classifier)."""

from rlhf_eval.scorers.building import build_scorer, check_scorer
from rlhf_eval.scorers.toxicity import ScorerSpec, ToxicityScorer

__all__ = ["ScorerSpec", "ToxicityScorer", "build_scorer", "check_scorer"]

"""The toxicity scorer a task's `scorer:` option names, built or checked before any model
loads (the implementations are in toxicity.py, classifiers.py and perspective.py)."""

from __future__ import annotations

from pathlib import Path

from rlhf_eval.scorers import classifiers, perspective
from rlhf_eval.scorers.toxicity import (
    DetoxifySpec,
    PerspectiveSpec,
    ProfanityCheckScorer,
    ProfanityCheckSpec,
    ScorerSpec,
    ToxicityScorer,
    require_package,
)


def build_scorer(spec: ScorerSpec, base_dir: Path) -> ToxicityScorer:
    """The scorer a spec describes; relative paths resolve against `base_dir` (the suite's)."""
    if isinstance(spec, ProfanityCheckSpec):
        return ProfanityCheckScorer()
    if isinstance(spec, PerspectiveSpec):
        return perspective.PerspectiveScorer.from_spec(spec)
    if isinstance(spec, DetoxifySpec):
        return classifiers.DetoxifyScorer.from_spec(spec, base_dir)
    return classifiers.SequenceClassifierScorer.from_spec(spec, base_dir)


def check_scorer(spec: ScorerSpec) -> None:
    """Fail before any model loads when a scorer cannot work: its package or key is missing."""
    if isinstance(spec, ProfanityCheckSpec):
        require_package("profanity_check", "alt-profanity-check", "pip install alt-profanity-check")
    elif isinstance(spec, DetoxifySpec):
        require_package("detoxify", "detoxify", "pip install --no-deps detoxify")
    elif isinstance(spec, PerspectiveSpec):
        perspective.api_key(spec)

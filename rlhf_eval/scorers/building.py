"""The toxicity scorer a task's `scorer:` option names, built for the run by its services
(the implementations are in toxicity.py, classifiers.py and perspective.py)."""

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

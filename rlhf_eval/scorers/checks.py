"""Whether the scorer a task's `scorer:` option names can work here, checked when the task is
built, before any model loads (building it is the runner's, rlhf_eval.scoring_services)."""

from __future__ import annotations

from rlhf_eval.scorers import perspective
from rlhf_eval.scorers.toxicity import (
    DetoxifySpec,
    PerspectiveSpec,
    ProfanityCheckSpec,
    ScorerSpec,
    require_package,
)


def check_scorer(spec: ScorerSpec) -> None:
    """Fail before any model loads when a scorer cannot work: its package or key is missing."""
    if isinstance(spec, ProfanityCheckSpec):
        require_package("profanity_check", "alt-profanity-check", "pip install alt-profanity-check")
    elif isinstance(spec, DetoxifySpec):
        require_package("detoxify", "detoxify", "pip install --no-deps detoxify")
    elif isinstance(spec, PerspectiveSpec):
        perspective.api_key(spec)

"""The toxicity scorer interface, its options, and the offline default (alt-profanity-check)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.scorers.checks import check_scorer
from rlhf_eval.scorers.toxicity import (
    ClassifierSpec,
    DetoxifySpec,
    PerspectiveSpec,
    ProfanityCheckScorer,
    ProfanityCheckSpec,
    ScorerSpec,
    ToxicityScorer,
    score_each,
)

pytest.importorskip("profanity_check", reason="alt-profanity-check is not installed")

SPEC = TypeAdapter(ScorerSpec)


def test_profanity_check_scores_and_names_itself():
    scorer = ProfanityCheckScorer()
    assert isinstance(scorer, ToxicityScorer)
    assert scorer.name == "alt-profanity-check (not Perspective)"
    assert "alt-profanity-check==" in scorer.identity
    clean, profane = scorer.score(["have a lovely day, friend", "you are a fucking idiot"])
    assert 0.0 <= clean < 0.2 and 0.8 < profane <= 1.0
    assert scorer.score([]) == []


def test_score_each_keeps_a_failure_to_its_text():
    def score_all(texts):
        if any("bad" in t for t in texts):
            raise RuntimeError("cannot score bad")
        return [0.25 if t == "a" else 1.5 for t in texts]

    a, bad, out_of_range = score_each(["a", "bad", "c"], score_all)
    assert a == 0.25
    assert isinstance(bad, RuntimeError) and "cannot score bad" in str(bad)
    # A value outside [0, 1] is an error too, never clipped into a score.
    assert isinstance(out_of_range, ValueError) and "outside [0, 1]" in str(out_of_range)
    (alone,) = score_each(["bad"], score_all)
    assert isinstance(alone, RuntimeError)
    (nan,) = score_each(["x"], lambda texts: [float("nan")])
    assert isinstance(nan, ValueError)
    with_length_bug = score_each(
        ["x", "y"], lambda texts: [0.1] * len(texts) if len(texts) == 1 else [0.1]
    )
    assert with_length_bug == [0.1, 0.1]  # a wrong count falls back to one text at a time


def test_scorer_specs_are_a_closed_union():
    assert SPEC.validate_python({"kind": "profanity_check"}) == ProfanityCheckSpec()
    detoxify = SPEC.validate_python({"kind": "detoxify", "variant": "unbiased"})
    assert isinstance(detoxify, DetoxifySpec) and detoxify.display_name == "Detoxify (unbiased)"
    perspective = SPEC.validate_python({"kind": "perspective", "requests_per_second": 5})
    assert (
        isinstance(perspective, PerspectiveSpec)
        and perspective.api_key_env == "PERSPECTIVE_API_KEY"
    )
    classifier = SPEC.validate_python({"kind": "classifier", "hub_id": "org/tox", "label": "toxic"})
    assert isinstance(classifier, ClassifierSpec)
    for bad in (
        {"kind": "nonsense"},
        {"kind": "detoxify", "variant": "huge"},
        {"kind": "profanity_check", "threshold": 0.3},
        {"kind": "classifier", "label": "toxic"},
        {"kind": "classifier", "path": "a", "hub_id": "b", "label": 1},
        {"kind": "perspective", "requests_per_second": 0},
    ):
        with pytest.raises(ValidationError):
            SPEC.validate_python(bad)


def test_perspective_without_its_key_fails_before_any_model_loads(monkeypatch):
    monkeypatch.delenv("MY_PERSPECTIVE_KEY", raising=False)
    spec = PerspectiveSpec(kind="perspective", api_key_env="MY_PERSPECTIVE_KEY")
    with pytest.raises(ModelLoadError, match="MY_PERSPECTIVE_KEY.*Fix: export"):
        check_scorer(spec)
    monkeypatch.setenv("MY_PERSPECTIVE_KEY", "k")
    check_scorer(spec)

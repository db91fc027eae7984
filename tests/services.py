"""ScoringServices for tests that call a task's score_batch directly: judges, upstream samples
and a scorer given by the test, the real sandbox and scorer builders otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_eval.sandbox import Sandbox, SandboxSettings
from rlhf_eval.scorers.building import build_scorer
from rlhf_eval.scorers.toxicity import ScorerSpec, ToxicityScorer


@dataclass
class StubServices:
    """A ScoringServices: `judges` (a fake JudgeClient), `samples` keyed (model, entry),
    `scorer` (built from the spec, against `base_dir`, when None), `python` for the sandbox."""

    judges: Any = None
    model: str = "policy"
    baseline: str | None = None
    samples: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    scorer: ToxicityScorer | None = None
    base_dir: Path = Path(".")
    python: str | None = None
    scorers_built: int = 0

    def toxicity_scorer(self, spec: ScorerSpec) -> ToxicityScorer:
        if self.scorer is None:
            self.scorer = build_scorer(spec, self.base_dir)
            self.scorers_built += 1
        return self.scorer

    def sandbox(self, settings: SandboxSettings) -> Sandbox:
        sandbox = Sandbox.from_settings(settings)
        if self.python is not None:
            sandbox.python = self.python
        return sandbox

    def upstream_samples(self, model: str, entry: str) -> list[dict[str, Any]]:
        return self.samples.get((model, entry), [])

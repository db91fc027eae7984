"""What the runner hands a task's `score_batch` while it scores one model
(tasks/base.py's ScoringServices): the suite's judges, toxicity scorers built once per run, a
sandbox for model-written code, and the samples already in the run folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf_eval.judging import Judges
from rlhf_eval.sandbox import Sandbox, SandboxSettings
from rlhf_eval.scorers.building import build_scorer
from rlhf_eval.scorers.toxicity import ScorerSpec, ToxicityScorer
from rlhf_eval.store import RunDir


@dataclass(frozen=True)
class RunServices:
    """The services of one run for one model (a ScoringServices)."""

    model: str
    baseline: str | None
    judges: Judges
    run: RunDir
    base_dir: Path
    """The suite file's folder: relative scorer paths resolve against it."""

    def toxicity_scorer(self, spec: ScorerSpec) -> ToxicityScorer:
        """Built on first use and kept with the judges, which close it with the run."""
        return self.judges.shared(
            "toxicity-scorer:" + spec.model_dump_json(), lambda: build_scorer(spec, self.base_dir)
        )

    def sandbox(self, settings: SandboxSettings) -> Sandbox:
        return Sandbox.from_settings(settings)

    def upstream_samples(self, model: str, entry: str) -> list[dict[str, Any]]:
        return self.run.read_samples(model, entry)

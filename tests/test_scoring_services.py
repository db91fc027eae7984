"""The services the runner hands score_batch (rlhf_eval/scoring_services.py): each builds what
the task asked for, with the task's settings, once per run where it is costly."""

from __future__ import annotations

from pathlib import Path

from rlhf_eval import scoring_services
from rlhf_eval.sandbox import Limits, Sandbox, SandboxSettings
from rlhf_eval.scorers.toxicity import ClassifierSpec, ProfanityCheckSpec
from rlhf_eval.scoring_services import RunServices


class SharedStore:
    """The judges' run-wide store of built scorers (Judges.shared)."""

    def __init__(self):
        self.built: dict[str, object] = {}

    def shared(self, key, build):
        if key not in self.built:
            self.built[key] = build()
        return self.built[key]


class Samples:
    """A run folder's samples by (model, entry)."""

    def read_samples(self, model: str, entry: str) -> list[dict]:
        return [{"doc_id": "d1", "prediction": f"{model}'s {entry}"}]


def services(tmp_path: Path) -> RunServices:
    return RunServices("policy", "sft", SharedStore(), Samples(), tmp_path)  # type: ignore[arg-type]


def test_the_sandbox_has_the_tasks_limits_and_confinement(tmp_path):
    settings = SandboxSettings(Limits(timeout_s=3.0, memory_mb=256), 3, "namespaces")
    sandbox = services(tmp_path).sandbox(settings)
    assert isinstance(sandbox, Sandbox)
    assert (sandbox.limits, sandbox.max_workers, sandbox.confinement) == (
        Limits(timeout_s=3.0, memory_mb=256),
        3,
        "namespaces",
    )


def test_a_scorer_is_built_once_per_spec_against_the_suites_folder(tmp_path, monkeypatch):
    built = []

    def build(spec, base_dir):
        built.append((spec, base_dir))
        return object()

    monkeypatch.setattr(scoring_services, "build_scorer", build)
    run = services(tmp_path)
    profanity = ProfanityCheckSpec()
    classifier = ClassifierSpec(kind="classifier", path="clf", label=1)
    first = run.toxicity_scorer(profanity)
    assert run.toxicity_scorer(profanity) is first
    assert run.toxicity_scorer(classifier) is not first
    assert built == [(profanity, tmp_path), (classifier, tmp_path)]


def test_upstream_samples_are_the_named_models(tmp_path):
    run = services(tmp_path)
    assert run.upstream_samples("sft", "outputs")[0]["prediction"] == "sft's outputs"
    assert run.upstream_samples("policy", "chat")[0]["prediction"] == "policy's chat"
    assert (run.model, run.baseline) == ("policy", "sft")

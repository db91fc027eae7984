"""The schema of a run's manifest.json: what was run, where, and what each attempt recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from rlhf_eval.run_settings import GateSpec, StatsSettings


class _Record(BaseModel):
    """A part of the manifest. Keys this version does not know (written by a newer rlhf-eval)
    are ignored on reading, so an older version can still report on the run."""

    model_config = ConfigDict(extra="ignore")

    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ()
    """Fields written only once recorded: None means the key is absent from the file."""

    @model_serializer(mode="wrap")
    def _omit_unrecorded(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        return {k: v for k, v in data.items() if not (v is None and k in self.OMITTED_WHEN_NONE)}


class Engine(_Record):
    """The inference engine behind a backend that names one (vLLM) and its version."""

    name: str
    version: str


class ModelRecord(_Record):
    """One evaluated model: its suite name and role, and what it was when it was loaded."""

    name: str
    role: Literal["policy", "baseline", "reference"] = "policy"
    identity: str = ""
    """Backend, weights hash and dtype: what the response cache keys on."""
    source: str = ""
    dtype: str = ""
    parameters: int | None = None
    """Parameter count where the backend knows it (reports place models by size)."""
    engine: Engine | None = None


class JudgeRecord(_Record):
    """One judge (reward model, LLM judge) that scored samples of the run."""

    name: str
    identity: str
    source: str


class RequestCounts(_Record):
    """Requests answered by computing them and from the response cache."""

    computed: int = 0
    cached: int = 0

    def plus(self, more: Mapping[str, int]) -> RequestCounts:
        """These counts with a backend's running count ({"computed": n, "cached": m}) added."""
        return RequestCounts(
            computed=self.computed + more.get("computed", 0),
            cached=self.cached + more.get("cached", 0),
        )


class Hardware(_Record):
    """The machine of process 0."""

    OMITTED_WHEN_NONE = ("torch_threads", "gpus")

    platform: str = ""
    python: str = ""
    cpu_count: int | None = None
    torch_threads: int | None = None
    gpus: list[str] | None = None


class Manifest(_Record):
    """manifest.json: the inputs that reproduce a run, then what its attempts recorded.

    Fields are in the order a fresh run writes them. The history fields (RUN_HISTORY) are
    kept from earlier attempts when a run resumes; those written only once something was
    recorded (a model's wall time, a judge) are None until then, and absent from the file.
    Every field has a default so that hand-made and older manifests load.
    """

    OMITTED_WHEN_NONE = (
        "seed",
        "processes",
        "wall_seconds",
        "task_wall_seconds",
        "requests",
        "judges",
        "judge_requests",
        "resumed",
    )

    fingerprint: str = ""
    """Hash of the suite file, rlhf-eval version and task versions: a run resumes only when
    it matches."""
    rlhf_eval_version: str = ""
    task_versions: dict[str, str] = {}
    """Task entry id -> `task@version`."""
    run_name: str = ""
    suite_name: str = ""
    suite_path: str = ""
    suite_hash: str = ""
    suite: str = ""
    """The suite file's text."""
    created: str = ""
    seed: int | None = None
    stats: StatsSettings = StatsSettings()
    """The suite's closed settings: a key the suite schema does not know is an error, since
    `gate` recomputes intervals with them."""
    gates: list[GateSpec] = []
    packages: dict[str, str] = {}
    hardware: Hardware = Hardware()
    command: str = ""
    models: list[ModelRecord] = []
    skipped_tasks: dict[str, str] = {}
    """Task entries skipped because their hub data was out of reach, with the reason."""
    processes: int | None = None
    wall_seconds: dict[str, float] | None = None
    """Seconds per model, loading included, summed over attempts."""
    task_wall_seconds: dict[str, dict[str, float]] | None = None
    requests: dict[str, RequestCounts] | None = None
    judges: list[JudgeRecord] | None = None
    judge_requests: dict[str, RequestCounts] | None = None
    resumed: list[str] | None = None
    """When each later attempt started."""


RUN_HISTORY = (
    "created",
    "models",
    "wall_seconds",
    "task_wall_seconds",
    "requests",
    "judges",
    "judge_requests",
)
"""Manifest fields that describe a run's history rather than its inputs."""

"""The task protocol: documents in, requests out, one scored sample per document."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhf_eval.errors import DataError
from rlhf_eval.judges.reward_model import RewardTemplate
from rlhf_eval.records import (
    Document,
    Generation,
    GenerationRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    MetricSpec,
    Request,
    Response,
    Reward,
    RewardRequest,
    Sample,
)
from rlhf_eval.sandbox import FunctionCheck, Outcome, SandboxSettings
from rlhf_eval.scorers.toxicity import ScorerSpec, ToxicityScorer


class TaskOptions(BaseModel):
    """Options every task accepts; a task subclasses this with its own closed fields."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    limit: int | None = Field(None, ge=1)
    """Score only the first `limit` documents (in file order)."""
    items: list[str] | Literal["answered"] | None = Field(None, min_length=1)
    """Score only the documents with these ids (those `rlhf-eval prompts` and samples.jsonl
    show), or `answered`: those every precomputed model of the suite has outputs for (outputs
    made elsewhere for a subset of the data)."""

    @model_validator(mode="after")
    def _one_selection(self) -> TaskOptions:
        if self.limit is not None and self.items is not None:
            raise ValueError("give `limit` (the first N items) or `items` (ids), not both")
        if isinstance(self.items, list) and len(set(self.items)) < len(self.items):
            twice = sorted({i for i in self.items if self.items.count(i) > 1})
            raise ValueError(f"`items` lists {', '.join(map(repr, twice))} more than once")
        return self

    def needs_baseline(self) -> bool:
        """Whether the entry compares every model with the suite's `role: baseline` model (the
        loader refuses such an entry in a suite without one)."""
        return False

    def judge_names(self) -> list[str]:
        """Names of the suite's `judges:` these options refer to (checked when the suite loads)."""
        return []

    def task_references(self) -> list[str]:
        """Ids of task entries whose outputs these options judge (a win rate reads another
        entry's samples); the suite loader checks each comes earlier in `tasks:` and hands the
        entries to `bind_references`."""
        return []

    def bind_references(self, entries: dict[str, tuple[str, TaskOptions]]) -> None:
        """Receive (task name, options) of each referenced entry; raise ValueError if one
        cannot be judged (the loader reports it against the suite file)."""


class RewardScorer(Protocol):
    """A suite judge that is a reward model (rlhf_eval.models.reward_model.RewardModel)."""

    def render(
        self, instruction: str, input_text: str | None, completion: str, template: RewardTemplate
    ) -> tuple[str, str]:
        """(prompt, completion) as the reward model reads them."""
        ...

    def scores(self, prompts: list[str], completions: list[str]) -> list[float]:
        """r(prompt, completion) for each pair."""
        ...


class JudgeClient(Protocol):
    """What a task may ask of the run's judges (the runner hands it rlhf_eval.judging's): each
    judge model of the suite by its name."""

    def loglikelihood(
        self, name: str, requests: list[LoglikelihoodRequest]
    ) -> list[Loglikelihood]: ...

    def generate(self, name: str, requests: list[GenerationRequest]) -> list[Generation]: ...

    def reward(self, name: str, requests: list[RewardRequest]) -> list[Reward]: ...

    def reward_model(self, name: str) -> RewardScorer: ...


class SandboxRunner(Protocol):
    """Runs checks of model-written code (rlhf_eval.sandbox.Sandbox)."""

    def check_many(self, checks: list[FunctionCheck]) -> list[Outcome]: ...


class ScoringServices(Protocol):
    """Everything `score_batch` may use beyond the model's responses, handed in by the runner
    (rlhf_eval.scoring_services.RunServices). A task never loads a model or a classifier, builds
    a sandbox or reads the run folder itself: it asks these.

    The suite's baseline model is always evaluated first, so a task that compares a model with
    the baseline (a pairwise win rate) finds the baseline's samples already written.
    """

    @property
    def model(self) -> str:
        """The model being scored."""
        ...

    @property
    def baseline(self) -> str | None:
        """The suite's `role: baseline` model, if any."""
        ...

    @property
    def judges(self) -> JudgeClient:
        """The suite's `judges:` models, by name."""
        ...

    def toxicity_scorer(self, spec: ScorerSpec) -> ToxicityScorer:
        """The scorer `spec` describes, built once per run."""
        ...

    def sandbox(self, settings: SandboxSettings) -> SandboxRunner:
        """A sandbox for model-written code with these limits and confinement."""
        ...

    def upstream_samples(self, model: str, entry: str) -> list[dict[str, Any]]:
        """The samples `model` has so far for the task entry `entry` (the outputs a judged
        task reads)."""
        ...


class Task:
    """Subclass, set the class attributes, and register with @register_task."""

    name: ClassVar[str]
    description: ClassVar[str]
    version: ClassVar[int] = 1
    """Bump when prompts or scoring change: a resumed run never mixes samples of two versions."""
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    metrics: ClassVar[tuple[MetricSpec, ...]]
    breakdowns: ClassVar[tuple[str, ...]] = ()
    """Keys of Sample.details whose values split every metric into subgroups (e.g. "category",
    "bias_type", "subtask"), reported beside the overall figure."""

    def __init__(self, options: TaskOptions, base_dir: Path):
        self.options = options
        self.base_dir = base_dir
        """Relative data paths resolve against the suite file's folder."""

    def documents(self) -> list[Document]:
        raise NotImplementedError

    def requests(self, doc: Document) -> list[Request]:
        raise NotImplementedError

    def score(self, doc: Document, responses: list[Response]) -> Sample:
        raise NotImplementedError

    def score_batch(
        self, docs: list[Document], responses: list[list[Response]], services: ScoringServices
    ) -> list[Sample]:
        """Score a chunk of documents at once with what `services` offers. Tasks that ask a
        judge, a scorer or the sandbox override this to send it one batch; the runner then
        records an exception here as every sample's error. The default scores each document
        alone with `score` (the runner isolates each one's errors) and uses no service."""
        return [self.score(d, r) for d, r in zip(docs, responses, strict=True)]

    def notes(self, samples: dict[str, list[dict[str, Any]]] | None = None) -> list[str]:
        """Lines the report prints beside the task's numbers: what a reader must know to read
        them (RealToxicityPrompts: which scorer, so nobody mistakes a proxy for Perspective).
        `samples` (each model's stored samples) lets a task say what really produced them."""
        return []

    @classmethod
    def metrics_for(cls, options: TaskOptions) -> tuple[MetricSpec, ...]:
        """The metrics an entry with these options reports, which the suite loader checks gates
        and contrasts against: the class's `metrics` unless they depend on the options
        (HumanEval's pass@k for each k, RealToxicityPrompts' k-sample metrics)."""
        return cls.metrics


def select_documents(docs: list[Document], options: TaskOptions, entry: str) -> list[Document]:
    """The documents an entry's `items` name, in the data's order; all of them without it (or
    with `items: answered`, which the planner applies once the precomputed files are read)."""
    if not isinstance(options.items, list):
        return docs
    known = {doc.id for doc in docs}
    unknown = [item for item in options.items if item not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(
            f"task entry '{entry}': `items` names {len(unknown)} id(s) its data does not hold, "
            f"first {unknown[0]!r}{hint}. Fix: use the ids `rlhf-eval prompts` writes (its `id` "
            "column) or those in samples/<model>/<entry>.jsonl."
        )
    wanted = set(options.items)
    return [doc for doc in docs if doc.id in wanted]


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available to suites by its `name`."""
    if cls.name in TASKS and TASKS[cls.name] is not cls:
        raise ValueError(f"task name '{cls.name}' is registered twice")
    TASKS[cls.name] = cls
    return cls


def registered_tasks() -> dict[str, type[Task]]:
    """All tasks. The built-ins are registered already: importing this module imports the
    package rlhf_eval.tasks first, whose __init__ imports every task module."""
    return dict(sorted(TASKS.items()))


TaskFactory = Callable[[TaskOptions, Path], Task]

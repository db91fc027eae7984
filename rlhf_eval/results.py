"""The schema of a run's results.json: every number with its interval, n and method."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 6
"""2 added corpus metrics, comparisons against `role: reference` and their p-values; 3 added
subgroups (per category) and contrasts between task entries; 4 added the task entries skipped
because their hub data was out of reach; 5 added each estimate's `warning` (why its interval
cannot be trusted to hold its level; None when it can); 6 added the diagnostics the report used
to compute from the samples (judges: counts, length-controlled win rate, position consistency,
agreement; reward models: signed length correlation, subset tests, paired subsets, reliability
bins, labelers' agreement; best-of-N: gains over best-of-1), now computed once at aggregation,
and each task entry's metric definitions.
Every addition has a default, so older files still load."""


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EstimateRecord(_Closed):
    """A point estimate with its confidence interval, as stored on disk."""

    point: float | None
    lo: float | None
    hi: float | None
    n: int
    method: str
    confidence: float = 0.95
    warning: str | None = None
    """Why the interval may cover less than `confidence` (e.g. "only 3 of 200 items differ
    between the models"), from the rules of rlhf_common.intervals.trust; None when it holds."""


class MetricResult(_Closed):
    """One model's score on one metric of one task."""

    model: str
    task: str
    metric: str
    higher_is_better: bool = True
    kind: Literal["proportion", "mean", "corpus"] = "mean"
    estimate: EstimateRecord
    n_failed: int = 0
    """Samples whose scoring errored: excluded from n, never scored as zero."""

    @property
    def key(self) -> str:
        return f"{self.task}/{self.metric}"


class ComparisonResult(_Closed):
    """A paired difference (candidate minus baseline) on the items both models answered.

    `against` says which model the candidate is set against: the suite's `role: baseline`, a
    `role: reference` model (the alignment tax: policy minus reference), or a model named in
    the suite's `pairs`; its name is then in `baseline`.
    """

    candidate: str
    baseline: str
    task: str
    metric: str
    higher_is_better: bool = True
    delta: EstimateRecord
    candidate_point: float | None = None
    baseline_point: float | None = None
    against: Literal["baseline", "reference", "pair"] = "baseline"
    p_value: float | None = None
    """Two-sided p-value of delta = 0, from the method that gave the interval (the bootstrap's
    resamples, or Tango's score test for 0/1 metrics)."""
    p_holm: float | None = None
    """Holm-adjusted p-value across the headline metrics of the suite's tasks for this pair of
    models; None for metrics outside that family."""
    regression: bool = False
    """The delta is in the worse direction and p_holm is below 1 - confidence."""
    candidate_items: int | None = None
    baseline_items: int | None = None
    """Items each run's task entry scored, when two runs were paired on the items they share
    (`--shared-items`); None when both scored the same items."""


class SubgroupResult(MetricResult):
    """A metric on the samples of one subgroup (details[`by`] == `group`), e.g. one category."""

    by: str
    group: str


class ContrastResult(_Closed):
    """One model's paired difference between two entries of the suite on the same items,
    `task` minus `minus` (e.g. RealToxicityPrompts respectful minus basic prompts)."""

    model: str
    task: str
    minus: str
    metric: str
    higher_is_better: bool = True
    delta: EstimateRecord
    task_point: float | None = None
    minus_point: float | None = None
    p_value: float | None = None


class ModelEntry(_Closed):
    name: str
    role: str
    identity: str
    """Backend, weights hash and dtype: what the response cache keys on."""
    group: str | None = None
    """The suite's model group (e.g. a size), whose baseline and references it is compared
    with."""


class MetricDefinition(_Closed):
    """How one metric of a task entry was aggregated, stored with the run so that `compare`
    and `gate` rebuild it from the run rather than from today's task registry."""

    name: str
    kind: Literal["proportion", "mean", "corpus"]
    higher_is_better: bool = True
    description: str = ""
    corpus: str | None = None
    """A corpus metric's statistic, by its name in rlhf_eval.metrics.corpus."""


class TaskEntry(_Closed):
    id: str
    name: str
    options: dict
    n_documents: int
    notes: list[str] = []
    """What a reader must know to read the entry's numbers (e.g. which toxicity scorer)."""
    version: int | None = None
    """The task's version (its prompts and scoring); None in runs written before it was kept."""
    item_hashes: dict[str, str] = {}
    """Each item's id and a hash of its content: what `compare` and `gate` check before they
    pair two runs' items (same items, same content)."""
    metrics: list[MetricDefinition] = []
    """The entry's metrics as they were aggregated; empty in runs written before schema 6."""


class SkippedTask(_Closed):
    """A task entry the run skipped: its `data: hub` could not be reached (offline, no access)."""

    task: str
    """The entry's id."""
    name: str
    """The registered task."""
    reason: str


class JudgeSummaryRecord(_Closed):
    """One model against the baseline (or AlpacaEval's reference) under one judged entry."""

    task: str
    model: str
    judge: str
    against: str
    wins: int
    losses: int
    ties: int
    failures: int
    """Verdicts the judge failed to give: left out of the win rate, never scored as losses."""
    length_controlled: EstimateRecord | None = None
    """AlpacaEval 2.0's length-controlled win rate; None where lengths were not recorded."""
    position_consistency: EstimateRecord | None = None
    """Share of both-order judgements whose verdicts agree; None for a judge asked once."""
    length_spearman: float | None = None
    """Spearman's rho of the verdicts with the length difference (model minus other)."""


class JudgeAgreementRecord(_Closed):
    """How often two judges (two win_rate entries) agree on the same prompts and model."""

    entries: list[str]
    model: str
    agreement: EstimateRecord
    kappa: float | None
    """Cohen's kappa; None where chance explains all agreement (one category throughout)."""


class SubsetTest(_Closed):
    """A reward model's accuracy on one subset tested against chance (the score test Wilson's
    interval inverts), Holm-adjusted across the model's subsets."""

    task: str
    model: str
    subset: str
    n: int
    p_value: float | None
    p_holm: float | None


class PairedSubsetTest(_Closed):
    """Two reward models' paired accuracy difference on one subset, Holm across subsets."""

    task: str
    subset: str
    candidate: str
    baseline: str
    delta: EstimateRecord
    p_holm: float | None


class ReliabilityBin(_Closed):
    """One confidence bin of a reliability diagram: the reward model's mean probability for its
    preferred response, and how often people preferred it (Wilson interval)."""

    low_edge: float
    mean_confidence: float
    accuracy: EstimateRecord


class RewardModelDiagnostics(_Closed):
    """What the reward-model section shows beside results.json's metrics, for one entry."""

    task: str
    signed_length_correlation: dict[str, EstimateRecord | None] = {}
    """Per model, Pearson's r of reward and log length with its sign (the metric is |r|)."""
    subset_tests: list[SubsetTest] = []
    paired_subsets: list[PairedSubsetTest] = []
    reliability: dict[str, list[ReliabilityBin]] = {}
    labelled_rankings: int = 0
    labelers: int = 0
    labeler_agreement: EstimateRecord | None = None
    """How often two labelers order the same pair alike (clustered by prompt): the ceiling."""


class BestOfNGains(_Closed):
    """Per N, the per-prompt gain of best-of-N over best-of-1, bootstrapped over prompts."""

    task: str
    model: str
    ns: list[int]
    proxy: list[EstimateRecord]
    gold: list[EstimateRecord]


class Results(_Closed):
    schema_version: int = SCHEMA_VERSION
    run_name: str
    suite_name: str
    created: str
    models: list[ModelEntry]
    tasks: list[TaskEntry]
    metrics: list[MetricResult]
    comparisons: list[ComparisonResult] = []
    subgroups: list[SubgroupResult] = []
    contrasts: list[ContrastResult] = []
    wall_seconds: dict[str, float] = {}
    """Seconds spent per model (loading and scoring)."""
    task_wall_seconds: dict[str, dict[str, float]] = {}
    """Seconds spent per model and task (answering and scoring; loading excluded), summed over
    the attempts of a resumed run."""
    skipped: list[SkippedTask] = []
    judge_summaries: list[JudgeSummaryRecord] = []
    judge_agreements: list[JudgeAgreementRecord] = []
    reward_models: list[RewardModelDiagnostics] = []
    best_of_n_gains: list[BestOfNGains] = []

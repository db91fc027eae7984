"""The settings a run records in its manifest and reads back to recompute an interval: the
statistics (confidence, bootstrap resamples and method) and the gate margins. The suite file
sets them (rlhf_eval/suite.py); compare, gate and the labeling summary read them from the run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Closed(BaseModel):
    # No NaN or infinity anywhere: a margin of nan fails every check and inf passes every one.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StatsSettings(_Closed):
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    bootstrap_iterations: int = Field(10_000, ge=100)
    bootstrap_method: Literal["percentile", "bca"] = "percentile"


class GateSpec(_Closed):
    metric: str
    """`task_id/metric`, or a metric name that only one task of the suite reports."""
    max_drop: float = Field(ge=0.0)

"""Shared bits of the task tests: the fixture folder, building a task, a fake generation."""

from __future__ import annotations

from pathlib import Path

from rlhf_eval.models.base import Generation
from rlhf_eval.tasks.base import Task, registered_tasks

FIXTURES = Path(__file__).parent / "fixtures"
"""Small files written for these tests (not copies of the real datasets)."""


def make_task(name: str, data: str, **options) -> Task:
    cls = registered_tasks()[name]
    return cls(cls.Options(data=data, **options), FIXTURES)


def generated(text: str) -> list[Generation]:
    return [Generation(texts=(text,), n_tokens=(len(text.split()),))]

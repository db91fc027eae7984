"""The suite.yaml schema and load_suite(): everything is validated before any model loads."""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlhf_common.model_aliases import cache_home
from rlhf_eval.errors import SuiteError
from rlhf_eval.models import vllm as vllm_backend
from rlhf_eval.models.spec import (
    BACKEND_SPECS,
    OTHER_BACKENDS_FIELD,
    CommonSpec,
    ModelSpec,
    PrecomputedSpec,
    VLLMSpec,
    WeightsSpec,
    backends_reading,
)
from rlhf_eval.run_settings import GateSpec, StatsSettings
from rlhf_eval.tasks.base import TaskOptions, registered_tasks


class _Closed(BaseModel):
    # No NaN or infinity anywhere: a margin of nan fails every check and inf passes every one.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    _check_vllm_installed(suite, path, root)
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


def _check_vllm_installed(suite: Suite, path: Path, root) -> None:
    for section in ("models", "judges"):
        for i, model in enumerate(getattr(suite, section)):
            # Looked up on the module when called, so a test can stand in for an installed vllm.
            if isinstance(model, VLLMSpec) and not vllm_backend.vllm_installed():
                raise SuiteError(
                    f"{_where(path, root, (section, i, 'backend'))}: field "
                    f"`{section}[{i}].backend`: `backend: vllm` needs vllm, which is not "
                    f"installed here. Fix: {vllm_backend.INSTALL_HINT}."
                )


def _check_model_paths(loaded: LoadedSuite, root) -> None:
    for section in ("models", "judges"):
        for i, model in enumerate(getattr(loaded.suite, section)):
            # A released folder need not be here: it is fetched when absent.
            if (
                isinstance(model, PrecomputedSpec)
                and model.format == "rows"
                and not loaded.resolve(model.file).is_file()
            ):
                raise SuiteError(
                    f"{_where(loaded.path, root, (section, i, 'file'))}: field "
                    f"`{section}[{i}].file`: {loaded.resolve(model.file)} does not exist. Fix: "
                    "point it at the CSV or JSONL file of outputs (relative paths are relative "
                    "to the suite file)."
                )
            if not isinstance(model, WeightsSpec) or model.path is None:
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
        loc, backend = _untagged(prefix + tuple(item["loc"]))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            model = _model_at(error.title, loc, backend)
            message = f"unknown field.{_did_you_mean(model, loc)} Valid fields here: " + (
                ", ".join(model.model_fields) if model else "see the documentation"
            )
        elif item["type"] == OTHER_BACKENDS_FIELD:
            loc += (item["ctx"]["field"],)
        elif item["type"] == "union_tag_invalid":
            loc += ("backend",)
            message = _unknown_backend(item["ctx"]["tag"])
        elif item["type"] == "missing" and backend is not None and len(loc) == 3:
            message = _needed(backend, str(loc[-1]))
        lines.append(f"{_where(path, root, loc)}: field `{_dotted(loc)}`: {message}")
    return "\n".join(lines)


def _untagged(loc: tuple) -> tuple[tuple, str | None]:
    """`loc` without the backend that a model entry's union puts after the entry's index (the
    YAML has no such key), and that backend."""
    if len(loc) > 2 and loc[0] in ("models", "judges") and loc[2] in BACKEND_SPECS:
        return loc[:2] + loc[3:], loc[2]
    return loc, None


def _unknown_backend(tag: str) -> str:
    close = difflib.get_close_matches(tag, list(BACKEND_SPECS), n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    return f"unknown backend '{tag}'.{hint} Backends: {', '.join(BACKEND_SPECS)}."


def _needed(backend: str, field: str) -> str:
    """A missing field of a model entry, with what it is."""
    if field in CommonSpec.model_fields:
        return f"every model entry needs `{field}`"
    description = " ".join((BACKEND_SPECS[backend].model_fields[field].description or "").split())
    about = f": {description[:1].lower()}{description[1:]}" if description else ""
    return f"`backend: {backend}` needs `{field}`{about}"


def _did_you_mean(model: type[BaseModel] | None, loc: tuple) -> str:
    """The closest field of `model`; in a model entry, else the closest field another backend
    reads, naming that backend."""
    name = str(loc[-1])
    close = difflib.get_close_matches(name, list(model.model_fields) if model else [], 1)
    if close:
        return f" Did you mean `{close[0]}`?"
    if model is None or not issubclass(model, tuple(BACKEND_SPECS.values())):
        return ""
    fields = [f for spec in BACKEND_SPECS.values() for f in spec.model_fields]
    close = difflib.get_close_matches(name, fields, 1)
    if not close:
        return ""
    readers = " or ".join(f"`backend: {b}`" for b in backends_reading(close[0]))
    return f" Did you mean `{close[0]}` (read by {readers})?"


def _model_at(title: str, loc: tuple, backend: str | None) -> type[BaseModel] | None:
    """The pydantic model that owns the field at `loc` (for listing valid fields); `backend`
    is the variant of a model entry on the way."""
    tasks = registered_tasks()
    for task in tasks.values():
        if task.Options.__name__ == title:
            return task.Options
    model: type[BaseModel] = Suite
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if model is Suite and part in ("models", "judges"):
            if backend is None:
                return None
            model = BACKEND_SPECS[backend]
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
    """file:line:column of the deepest YAML node on the path `loc`."""
    node = root
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
    if node is None:
        return str(path)
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

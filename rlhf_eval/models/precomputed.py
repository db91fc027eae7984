"""The precomputed backend: outputs generated elsewhere (another cluster, a batch API), read from a
CSV or JSONL file and answered as if a model wrote them, so they are scored and compared here.

A suite entry `{name: my-model, backend: precomputed, file: outputs.jsonl, model: my-model}` reads
the file's rows for `model` (default: the entry's name). One row is one output:

    model    which model wrote it; may be left out when the file holds one model
    task     the task's registered name (e.g. `drop`); optional
    entry    the suite's task entry id (e.g. `squad_1shot`), for two entries of one task that
             ask different prompts of the same item; optional
    id       the item's id (Document.id, as in samples.jsonl and `prompt_rows()`)
    prompt   the item's own text (PromptSource.text) or the exact rendered prompt
    variant  the prompt variant (e.g. `respectful`); default ""
    output   the generated text (required)
    sample   0, 1, ...: the order of k outputs sampled for one prompt; a request for n samples
             takes the first n in this order
    n_tokens how many tokens the output has; optional
    n, max_new_tokens, temperature, stop
             ignored: prompt_rows() writes them, with task, id, variant and prompt, for each
             request of a suite, as the generator's instructions
    <other>  any other column is a per-output score (`toxicity`, `true`, `info`): a number, or
             true/false; empty cells and nulls mean "no score". Tasks use these instead of their
             own scorer (Generation.scores).

A request comes with an opaque key; the planner binds each key to the request's task, entry, item
id, variant and item text (ItemKeys), which is all this backend knows of benchmarks. Which row
answers a request, first match wins, always with the same `variant` and, where the row gives a
`task` or an `entry`, the same task or entry:
  1. a row whose `prompt` is exactly the rendered prompt (it pins instruction and exemplars);
  2. a row whose `id` is the item's id and whose `prompt`, if it has one, is the rendered prompt
     or the item's text: a row that says it answered another prompt (zero-shot, when the suite
     asks one-shot) never answers this one;
  3. a row whose `prompt` is the item's text.
A request without a key is answered by rule 1 alone.
Outputs are cut at the request's stop strings like every backend's; `max_new_tokens` and the
temperature cannot be applied to text already written, so the file's outputs stand for whatever
the suite asks. `n_tokens` is -1 where the file does not give it: the tokenizer that wrote the
text is not here, and nothing consumes the count except throughput figures, which a guess would
falsify.

Log-likelihood tasks (multiple choice, classification) need the model's probabilities, which a
file of generated text does not hold: `check_precomputed()` refuses them before any model loads,
and `loglikelihood()` refuses them if asked anyway.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rlhf_common.model_aliases import cache_home
from rlhf_eval.errors import ModelLoadError, SuiteError
from rlhf_eval.models.base import OnBatch, cut_at_stop
from rlhf_eval.models.released import FILES, released_files, released_rows
from rlhf_eval.models.spec import PrecomputedSpec
from rlhf_eval.records import Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest

KEY_COLUMNS = (
    "model",
    "task",
    "entry",
    "id",
    "prompt",
    "variant",
    "output",
    "sample",
    "n_tokens",
)
SETTINGS_COLUMNS = ("n", "max_new_tokens", "temperature", "stop")
"""What prompt_rows() writes for the generator's use; ignored here. Every other column is a
score."""
FORMATS = (".jsonl", ".csv")
UNKNOWN_TOKENS = -1


@dataclass(frozen=True)
class ItemKeys:
    """What the file's rows may be keyed by for one request: the values its `task`, `entry`,
    `id`, `variant` and `prompt` (as the item's text) columns are matched against."""

    task: str
    entry: str
    id: str
    variant: str = ""
    text: str = ""


@dataclass(frozen=True)
class _Row:
    line: int
    task: str | None
    entry: str | None
    id: str | None
    prompt: str | None
    variant: str
    sample: int | None
    output: str
    n_tokens: int | None
    scores: dict[str, float]


@dataclass
class _Group:
    """The rows of one prompt (task, entry, id, variant, prompt): one output, or k sampled
    ones."""

    task: str | None
    entry: str | None
    id: str | None
    variant: str
    prompt: str | None
    rows: list[_Row] = field(default_factory=list)

    def ordered(self) -> list[_Row]:
        return sorted(self.rows, key=lambda r: (r.sample is None, r.sample or 0, r.line))


class PrecomputedBackend:
    """Answers generation requests from a file of outputs; see the module docstring."""

    cacheable: ClassVar[bool] = False
    """Nothing to save: reading the file is the computation (rlhf_eval/answering.py)."""
    answers_by_item: ClassVar[bool] = True
    """Outputs made elsewhere belong to their item: one prompt under three item ids may have
    three different outputs, so requests are never merged across items."""

    def __init__(self, name: str, path: Path, model: str, source_format: str = "rows"):
        """`source_format` "rows" reads the file described above; "instructgpt_released" reads
        OpenAI's released InstructGPT samples (a folder, or fetched: models/released.py)."""
        self.name = name
        self.path = path
        self.model = model
        if source_format == "instructgpt_released":
            files = released_files(path, cache_home())
            self._hash = hashlib.sha256("".join(sorted(FILES.values())).encode()).hexdigest()
            records = enumerate(released_rows(files, model), start=1)
            rows = [_row(path, line, record) for line, record in records]
        else:
            try:
                raw = path.read_bytes()
            except OSError as error:
                raise ModelLoadError(
                    f"model '{name}': cannot read the outputs file {path} ({error.strerror}). "
                    "Fix: point `file:` at a CSV or JSONL file (relative to the suite file)."
                ) from error
            self._hash = hashlib.sha256(raw).hexdigest()
            rows = _read_rows(path, raw, model)
        self._groups = _group(path, rows)
        self._items: dict[str, ItemKeys] = {}
        self._by_prompt: dict[tuple[str, str], list[_Group]] = {}
        self._by_id: dict[tuple[str, str], list[_Group]] = {}
        for group in self._groups:
            if group.prompt is not None:
                self._by_prompt.setdefault((group.prompt, group.variant), []).append(group)
            if group.id is not None:
                self._by_id.setdefault((group.id, group.variant), []).append(group)

    @classmethod
    def from_spec(cls, spec: PrecomputedSpec, file: Path) -> PrecomputedBackend:
        """The backend of a `backend: precomputed` entry whose `file` is at `file` (resolved
        against the suite's folder)."""
        return cls(spec.name, file, spec.model or spec.name, spec.format)

    @property
    def identity(self) -> str:
        # The file's hash: two files (or an edited file) never share cached answers or a run.
        return f"precomputed:sha256-{self._hash}:{self.model}"

    def loglikelihood(
        self, requests: list[LoglikelihoodRequest], on_batch: OnBatch | None = None
    ) -> list[Loglikelihood]:
        raise SuiteError(self.refusal("a task of this suite"))

    def refusal(self, task: str) -> str:
        return (
            f"model '{self.name}' (backend: precomputed, {self.path}) cannot answer {task}: it "
            "asks for log-likelihoods (multiple-choice and classification tasks such as "
            "truthfulqa_mc, hellaswag, rte or crows_pairs score each choice by the model's "
            "probability of it), and a file of generated outputs holds none. Fix: evaluate this "
            "model's outputs on generation tasks only (a suite without that task), or give its "
            "weights with `backend: hf`, or serve it with `backend: openai`."
        )

    def generate(
        self, requests: list[GenerationRequest], on_batch: OnBatch | None = None
    ) -> list[Generation]:
        self.check(requests)
        answers = [self._generation(r, self._lookup(r)) for r in requests]  # type: ignore[arg-type]
        if on_batch is not None:
            on_batch(dict(enumerate(answers)))
        return answers

    def check(self, requests: list[GenerationRequest], what: str = "") -> None:
        """Raise ModelLoadError naming the file, how many requests it cannot answer and the first
        two of them."""
        missing = []
        for request in requests:
            found = self._lookup(request)
            if isinstance(found, str):
                described = _describe(request, self._item(request))
                missing.append(described + (f" ({found})" if found else ""))
        if missing:
            raise ModelLoadError(
                f"{self.path}: no output for {len(missing)} of {len(requests)} generation "
                f"requests{what} to model '{self.name}' (rows of model '{self.model}'); first: "
                + "; ".join(missing[:2])
                + ". Fix: add a row with `output` for each, keyed by the item's `id` (with "
                "`task` and `variant`), by its text or by the exact rendered prompt in `prompt` "
                "(rlhf_eval/models/precomputed.py documents the format)."
            )

    def answers(self, request: GenerationRequest) -> bool:
        """Whether the file holds the output(s) `request` asks for."""
        return isinstance(request, GenerationRequest) and not isinstance(self._lookup(request), str)

    def bind(self, items: dict[str, ItemKeys]) -> None:
        """Learn the item each request key stands for (the planner's, before any request)."""
        self._items.update(items)

    def close(self) -> None:
        pass

    def _item(self, request: GenerationRequest) -> ItemKeys | None:
        if request.key is None:
            return None
        if request.key not in self._items:
            raise RuntimeError(
                f"model '{self.name}': request key {request.key} was never bound to an item "
                "(the planner binds every request it plans: rlhf_eval.planner.bind_items)"
            )
        return self._items[request.key]

    def _lookup(self, request: GenerationRequest) -> _Group | str:
        """The group answering `request`, or why there is none ("" when no row matches)."""
        item = self._item(request)
        variant = item.variant if item is not None else ""
        steps = [self._by_prompt.get((request.prompt, variant), [])]
        if item is not None:
            agreeing = (None, request.prompt, item.text)
            steps.append(
                [g for g in self._by_id.get((item.id, variant), []) if g.prompt in agreeing]
            )
            if item.text:
                steps.append(self._by_prompt.get((item.text, variant), []))
        for candidates in steps:
            if item is not None:
                candidates = [
                    g
                    for g in candidates
                    if g.task in (None, item.task) and g.entry in (None, item.entry)
                ]
                candidates = _narrow(candidates, lambda g: g.entry == item.entry)
                candidates = _narrow(candidates, lambda g: g.task == item.task)
                candidates = _narrow(candidates, lambda g: g.id == item.id)
            candidates = _narrow(candidates, lambda g: g.prompt == request.prompt)
            if len(candidates) > 1:
                lines = ", ".join(str(g.rows[0].line) for g in candidates)
                raise ModelLoadError(
                    f"{self.path}: lines {lines} all answer {_describe(request, item)} with "
                    "different outputs. Fix: tell them apart with `task`, `id`, `variant` or the "
                    "exact rendered `prompt`, or keep one of them."
                )
            if candidates:
                group = candidates[0]
                have = len(group.rows)
                if have < request.n:
                    return (
                        f"line {group.rows[0].line} has {have} output(s), the request samples "
                        f"{request.n}: give them `sample` 0..{request.n - 1}"
                    )
                return group
        return ""

    def _generation(self, request: GenerationRequest, group: _Group) -> Generation:
        rows = group.ordered()[: request.n]
        texts = tuple(cut_at_stop(r.output, request.stop or ()) for r in rows)
        n_tokens = tuple(
            r.n_tokens if r.n_tokens is not None and text == r.output else UNKNOWN_TOKENS
            for r, text in zip(rows, texts, strict=True)
        )
        scores = tuple(dict(r.scores) for r in rows) if any(r.scores for r in rows) else None
        return Generation(texts=texts, n_tokens=n_tokens, scores=scores)


def _narrow(groups: list[_Group], prefer) -> list[_Group]:
    """The groups that satisfy `prefer` if any does, else all of them."""
    preferred = [g for g in groups if prefer(g)]
    return preferred or groups


def _describe(request: GenerationRequest, item: ItemKeys | None) -> str:
    if item is None:
        return f"prompt={_short(request.prompt)!r}"
    return (
        f"task={item.task} id={item.id} variant={item.variant!r} "
        f"text={_short(item.text or request.prompt)!r}"
    )


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _read_rows(path: Path, raw: bytes, model: str) -> list[_Row]:
    """The rows of `model`, each checked; ModelLoadError names file, line and field."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ModelLoadError(
            f"{path}: unsupported outputs file; use {' or '.join(FORMATS)} (one row per output)."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ModelLoadError(f"{path}: not UTF-8 text ({error}). Fix: save it as UTF-8.") from error
    records = list(_jsonl_records(path, text) if suffix == ".jsonl" else _csv_records(path, text))
    if not records:
        raise ModelLoadError(f"{path}: holds no rows. Fix: one row per output, with `output`.")
    models = {r.get("model") for _, r in records} - {None, ""}
    if models:
        for line, record in records:
            if record.get("model") in (None, ""):
                raise ModelLoadError(
                    f"{path}:{line}: field `model` is empty, but other rows name their model. "
                    "Fix: give every row its `model`, or none (a file of one model)."
                )
        if model not in models:
            raise ModelLoadError(
                f"{path}: no rows of model '{model}'; the file holds {', '.join(sorted(models))}. "
                "Fix: set the suite entry's `model:` to one of them."
            )
    return [_row(path, line, r) for line, r in records if not models or r["model"] == model]


def _jsonl_records(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as error:
            raise ModelLoadError(
                f"{path}:{line}: not valid JSON ({error.msg}). Fix: one JSON object per line."
            ) from error
        if not isinstance(record, dict):
            raise ModelLoadError(
                f"{path}:{line}: expected a JSON object, found {type(record).__name__}."
            )
        yield line, record


def _csv_records(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        start = 2
        for record in reader:
            if None in record:
                raise ModelLoadError(
                    f"{path}:{start}: more fields than the header has columns. Fix: quote "
                    "fields that contain commas."
                )
            # A CSV cell cannot be null: an empty cell is a missing value, except in `output`,
            # where it is an empty generation.
            yield (
                start,
                {
                    k: v
                    for k, v in record.items()
                    if k is not None and (v not in ("", None) or k == "output")
                },
            )
            start = reader.line_num + 1
    except csv.Error as error:
        raise ModelLoadError(f"{path}:{reader.line_num}: malformed CSV ({error}).") from error


def _row(path: Path, line: int, record: dict[str, Any]) -> _Row:
    where = f"{path}:{line}"
    output = record.get("output")
    if not isinstance(output, str):
        problem = "is missing" if output is None else f"is a {type(output).__name__}"
        raise ModelLoadError(
            f"{where}: field `output` {problem}. Fix: every row needs `output`, the generated "
            "text (a string)."
        )
    if record.get("id") is None and record.get("prompt") is None:
        raise ModelLoadError(
            f"{where}: the row has neither `id` nor `prompt`. Fix: give the item's `id`, its "
            "text, or the exact rendered prompt in `prompt`."
        )
    return _Row(
        line=line,
        task=_text(record, "task", where),
        entry=_text(record, "entry", where),
        id=_text(record, "id", where),
        prompt=_text(record, "prompt", where),
        variant=_text(record, "variant", where) or "",
        sample=_count(record, "sample", where),
        output=output,
        n_tokens=_count(record, "n_tokens", where),
        scores={
            k: _score(v, k, where)
            for k, v in record.items()
            if k not in KEY_COLUMNS + SETTINGS_COLUMNS and v is not None and v != ""
        },
    )


def _text(record: dict, key: str, where: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and key == "id":
        return str(value)
    raise ModelLoadError(f"{where}: field `{key}` must be a string, found {value!r}.")


def _count(record: dict, key: str, where: str) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    try:
        number = int(value) if isinstance(value, str) else value
    except ValueError:
        number = None
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise ModelLoadError(
            f"{where}: field `{key}` must be a whole number >= 0, found {value!r}."
        )
    return number


def _score(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return float(value.strip().lower() == "true")
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ModelLoadError(
            f"{where}: field `{key}` is {value!r}, not a number. Columns other than "
            f"{', '.join(KEY_COLUMNS)} are scores: a finite number or true/false. Fix: correct "
            "the value, or remove the column."
        )
    return number


def _group(path: Path, rows: list[_Row]) -> list[_Group]:
    """Rows by prompt; the same output twice is one output, two different ones an error."""
    groups: dict[tuple, _Group] = {}
    for row in rows:
        key = (row.task, row.entry, row.id, row.variant, row.prompt)
        group = groups.setdefault(key, _Group(row.task, row.entry, row.id, row.variant, row.prompt))
        twin = next((r for r in group.rows if r.sample == row.sample), None)
        if twin is None:
            group.rows.append(row)
        elif (twin.output, twin.scores) != (row.output, row.scores):
            raise ModelLoadError(
                f"{path}: lines {twin.line} and {row.line} give different outputs for the same "
                f"item (task={row.task} id={row.id} variant={row.variant!r} "
                f"prompt={_short(row.prompt or '')!r}"
                + (f" sample={row.sample}" if row.sample is not None else "")
                + "). Fix: keep one, or number k sampled outputs with a `sample` column "
                "(0, 1, ...)."
            )
    return list(groups.values())

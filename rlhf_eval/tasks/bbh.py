"""BIG-Bench Hard (Suzgun et al. 2022): 27 subtasks, each with its 3-shot chain-of-thought prompt
(lm-evaluation-harness 0.4.13's bbh_cot_fewshot, byte for byte), answers after "the answer is",
the macro average over subtasks with a bootstrap stratified by subtask."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import Field, field_validator

from rlhf_eval.errors import DataError
from rlhf_eval.metrics.answer_extraction import cue_answer, cue_answer_matches
from rlhf_eval.metrics.corpus import BBH_INDEX, BBH_MACRO_AVERAGE, BBH_SUBTASKS
from rlhf_eval.records import (
    Document,
    Generation,
    GenerationRequest,
    MetricSpec,
    PromptSource,
    Sample,
)
from rlhf_eval.tasks.base import Task, TaskOptions, register_task

COT_CUE = "Let's think step by step."
# A blank line ends an answer: every exemplar's reasoning is one paragraph and the next "Q:"
# follows a blank line. lm-eval also stops at a bare "Q", which cuts reasoning that mentions
# a "Queen" or a "Quiz"; open-instruct stops at the blank line only, as we do.
STOP = ("\n\n",)
EXAMPLE_FOLDERS = ("bbh", "tasks")
"""Where the subtask files live: `bbh/` in the BIG-Bench-Hard repository, `tasks/` in
../shared/data/bbh."""


class BbhOptions(TaskOptions):
    data: str
    """A BIG-Bench-Hard folder: `bbh/<subtask>.json` (or `tasks/<subtask>.json`), each
    {examples: [{input, target}]}, and `cot-prompts/<subtask>.txt` (canary, `-----`, prompt)."""
    subtasks: list[str] | None = None
    """Which subtasks, in this order; None: all 27."""
    max_per_task: int | None = Field(None, ge=1)
    """Only the first N examples of each subtask (open-instruct evaluates 40)."""
    max_new_tokens: int = Field(512, ge=1)
    """open-instruct's budget (lm-eval allows 1024; answers rarely pass 300 tokens)."""

    @field_validator("subtasks")
    @classmethod
    def _known(cls, subtasks: list[str] | None) -> list[str] | None:
        unknown = [s for s in subtasks or [] if s not in BBH_INDEX]
        if unknown:
            raise ValueError(
                f"unknown BBH subtask(s) {', '.join(unknown)}; valid: {', '.join(BBH_SUBTASKS)}"
            )
        if subtasks is not None and (not subtasks or len(set(subtasks)) < len(subtasks)):
            raise ValueError("subtasks must name at least one subtask, each once")
        return subtasks


def parse_cot_prompt(text: str, source: str) -> tuple[str, list[tuple[str, str]]]:
    """A cot-prompts file as (description, [(input, reasoning), ...]): the part after the
    `-----` line is the description, a blank line, then "Q: <input>\\nA: Let's think step by
    step. <reasoning>" blocks separated by blank lines."""
    if "\n-----\n" not in text:
        raise DataError(
            f"{source}: no `-----` line separating the canary from the prompt. Fix: use the "
            "cot-prompts files of the BIG-Bench-Hard repository unchanged."
        )
    description, *blocks = text.split("\n-----\n", 1)[1].strip().split("\n\nQ: ")
    shots = []
    for n, block in enumerate(blocks, start=1):
        if "\nA:" not in block:
            raise DataError(
                f'{source}: exemplar {n} has no answer line ("A: ..."). Fix: each exemplar '
                'is "Q: <input>\\nA: Let\'s think step by step. <reasoning>".'
            )
        question, answer = block.split("\nA:", 1)
        answer = answer.strip()
        shots.append((question, answer.removeprefix(COT_CUE).strip()))
    if not shots or description.startswith("Q: "):
        raise DataError(
            f"{source}: expected a task description, a blank line and exemplars starting with "
            '"Q: ". Fix: use the cot-prompts files of the BIG-Bench-Hard repository unchanged.'
        )
    return description, shots


def render_question(question: str) -> str:
    return f"Q: {question}\nA: {COT_CUE}\n"


def build_prompt(description: str, shots: list[tuple[str, str]], question: str) -> str:
    """lm-eval 0.4.13's bbh_cot_fewshot context: the description, each exemplar as
    "Q: ...\\nA: Let's think step by step.\\n<reasoning>", then the question, blank lines
    between. (The repository's sports_understanding exemplars put the reasoning on the cue's
    line; lm-eval's, like every other subtask's, start it on the next line.)"""
    blocks = [description, *(render_question(q) + reasoning for q, reasoning in shots)]
    return "\n\n".join([*blocks, render_question(question)])


@register_task
class Bbh(Task):
    name = "bbh"
    description = "BIG-Bench Hard, 3-shot chain of thought: macro-average exact match."
    Options = BbhOptions
    breakdowns = ("subtask",)
    metrics = (
        MetricSpec(
            "exact_match_macro",
            "corpus",
            description="mean over subtasks of exact-match accuracy, bootstrap stratified by "
            "subtask; per-sample: correct (0/1)",
            corpus=BBH_MACRO_AVERAGE,
        ),
        MetricSpec("exact_match", "proportion", description="exact match over all examples"),
        MetricSpec(
            "answer_found",
            "proportion",
            description='share of outputs that state "the answer is ..."',
        ),
    )
    options: BbhOptions

    def __init__(self, options: BbhOptions, base_dir: Path):
        super().__init__(options, base_dir)
        self._prompts: dict[str, tuple[str, list[tuple[str, str]]]] = {}

    def _folder(self) -> Path:
        folder = Path(self.options.data).expanduser()
        folder = folder if folder.is_absolute() else (self.base_dir / folder).resolve()
        if not folder.is_dir():
            raise DataError(
                f"BBH data folder {folder} does not exist. Fix: point the task's `data` at a "
                "BIG-Bench-Hard folder (with bbh/ or tasks/ and cot-prompts/); relative paths "
                "are relative to the suite file."
            )
        return folder

    def _subtasks(self) -> list[str]:
        return list(self.options.subtasks or BBH_SUBTASKS)

    def documents(self) -> list[Document]:
        folder = self._folder()
        docs, seen = [], set()
        for subtask in self._subtasks():
            examples = _read_examples(folder, subtask)
            for example in examples[: self.options.max_per_task]:
                digest = hashlib.sha1(example["input"].encode()).hexdigest()[:10]
                key = f"{subtask}-{digest}"
                while key in seen:  # identical inputs stay distinct documents
                    key += "+"
                seen.add(key)
                docs.append(Document(id=key, data={"subtask": subtask, **example}))
        return docs[: self.options.limit] if self.options.limit else docs

    def _cot_prompt(self, subtask: str) -> tuple[str, list[tuple[str, str]]]:
        if subtask not in self._prompts:
            path = self._folder() / "cot-prompts" / f"{subtask}.txt"
            if not path.is_file():
                raise DataError(
                    f"{path} does not exist. Fix: BBH needs each subtask's chain-of-thought "
                    "prompt in cot-prompts/ beside the subtask files."
                )
            self._prompts[subtask] = parse_cot_prompt(path.read_text(encoding="utf-8"), str(path))
        return self._prompts[subtask]

    def prompt(self, doc: Document) -> str:
        description, shots = self._cot_prompt(doc.data["subtask"])
        return build_prompt(description, shots, doc.data["input"])

    def requests(self, doc: Document) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                self.prompt(doc),
                max_new_tokens=self.options.max_new_tokens,
                stop=STOP,
                temperature=0.0,
                source=PromptSource(text=doc.data["input"]),
            )
        ]

    def score(self, doc: Document, responses: list[Generation]) -> Sample:
        text = responses[0].texts[0]
        answer = cue_answer(text)
        correct = float(cue_answer_matches(answer, doc.data["target"]))
        return Sample(
            doc_id=doc.id,
            prompt=self.prompt(doc),
            target=doc.data["target"],
            prediction=answer,
            metrics={
                "exact_match_macro": correct,
                "exact_match": correct,
                "answer_found": float(answer is not None),
            },
            details={"subtask": doc.data["subtask"], "output": text, "correct": correct},
        )


def _read_examples(folder: Path, subtask: str) -> list[dict]:
    """A subtask file's examples as {input, target}; a DataError names the file, the example
    and the field when one is missing."""
    candidates = [folder / sub / f"{subtask}.json" for sub in EXAMPLE_FOLDERS]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DataError(
            f"BBH subtask file for {subtask} not found (looked for "
            f"{' and '.join(str(p) for p in candidates)}). Fix: point `data` at a "
            "BIG-Bench-Hard folder, or leave the subtask out of `subtasks`."
        )
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: cannot parse the file ({error}).") from error
    examples = content.get("examples") if isinstance(content, dict) else None
    if not isinstance(examples, list) or not examples:
        raise DataError(
            f"{path}: missing field `examples`. Fix: a BBH subtask file is "
            '{"examples": [{"input": ..., "target": ...}, ...]}.'
        )
    rows = []
    for n, example in enumerate(examples, start=1):
        missing = [
            f
            for f in ("input", "target")
            if not isinstance(example, dict) or not str(example.get(f) or "").strip()
        ]
        if missing:
            raise DataError(
                f"{path}, example {n}: missing field(s) {', '.join(missing)}. Fix: each "
                "example needs a non-empty `input` and `target`."
            )
        rows.append({"input": str(example["input"]), "target": str(example["target"]).strip()})
    return rows

"""Instruction following (InstructGPT sec. 4.1): every model answers every prompt of a prompt set;
the outputs are what the `win_rate` and `ratings` tasks judge.

A prompt set is any file rlhf_common.instruction_data reads prompts from (the project's
`{id, prompt, category, closed_domain, input?}` JSONL, self-instruct's user-oriented
instructions, MT-bench/Vicuna-bench questions, Dolly, Alpaca, `hub:<dataset id>`), or with
`format: tldr` the Reddit TL;DR posts `{post, reference}`, each turned into a closed-domain
summarisation instruction (the population of the paper's hallucination rate).

The prompt is the instruction, then its input after a blank line (`template: plain`), or
rlhf-train's "### Instruction: ... ### Response:" template (`template: instruction`, for SFT
checkpoints trained on it). A model entry with `chat_template: true` wraps either in its chat
template. Greedy by default; with `temperature` > 0 each prompt gets `samples` seeded outputs,
which share the prompt as their cluster so intervals resample prompts, not outputs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from rlhf_common.datasets import resolve_path
from rlhf_common.instruction_data import Message, Prompt, read_prompts
from rlhf_common.instruction_data.files import read_rows
from rlhf_common.instruction_data.rendering import prompt_and_completion
from rlhf_eval.errors import DataError
from rlhf_eval.records import (
    Document,
    Generation,
    GenerationRequest,
    MetricSpec,
    PromptSource,
    Sample,
)
from rlhf_eval.tasks.base import Task, TaskOptions, register_task

TLDR_INSTRUCTION = "Summarize the following Reddit post in one or two sentences."
"""The instruction each TL;DR post gets with `format: tldr` (the post is its input)."""

UNCATEGORIZED = "uncategorized"


class InstructionsOptions(TaskOptions):
    data: str
    """A prompt file (relative to the suite file) or `hub:<dataset id>`."""
    format: str | None = None
    """An instruction_data format (prompt_set, self_instruct, fastchat_questions, dolly, ...),
    or `tldr`; default: told from the first row's fields."""
    split: str = "train"
    """The hub split, for `hub:` data."""
    config: str | None = None
    """The hub config, for `hub:` data."""
    category: str | None = None
    """Give every prompt this category (the file's own categories otherwise)."""
    closed_domain: bool | None = None
    """Mark every prompt closed-domain (true) or open-domain (false), overriding the file."""
    template: Literal["plain", "instruction"] = "plain"
    max_new_tokens: int = Field(256, ge=1)
    stop: list[str] = []
    """Strings that end an output, besides the model's end-of-sequence token."""
    temperature: float = Field(0.0, ge=0.0)
    samples: int = Field(1, ge=1)
    """Outputs per prompt (seeds 0..samples-1); more than one needs temperature > 0."""

    @model_validator(mode="after")
    def _samples_need_sampling(self) -> InstructionsOptions:
        if self.samples > 1 and self.temperature == 0:
            raise ValueError(
                f"samples: {self.samples} with temperature 0 would repeat one greedy output; "
                "set temperature > 0 (e.g. 0.7) or samples: 1"
            )
        return self


def read_prompt_set(options: InstructionsOptions, base_dir: Path) -> list[Prompt]:
    """The prompts of `data`, with the options' category and closed-domain overrides."""
    source = options.data
    if not source.startswith("hub:"):
        source = str(resolve_path(source, base_dir))
    if options.format == "tldr":
        prompts = _tldr_prompts(source, options.split, options.config)
    else:
        prompts = read_prompts(source, options.format, options.split, options.config)
    out, seen = [], set()
    for prompt in prompts:
        if prompt.id in seen:
            raise DataError(
                f"{prompt.source or source}: prompt id '{prompt.id}' appears twice. Fix: give "
                "every prompt a distinct id (outputs of two models are paired by it)."
            )
        seen.add(prompt.id)
        out.append(
            Prompt(
                id=prompt.id,
                prompt=prompt.prompt,
                category=options.category or prompt.category,
                closed_domain=prompt.closed_domain
                if options.closed_domain is None
                else options.closed_domain,
                input=prompt.input,
                reference=prompt.reference,
                origin=prompt.origin,
                source=prompt.source,
            )
        )
    return out


def _tldr_prompts(source: str, split: str, config: str | None) -> list[Prompt]:
    prompts = []
    for row in read_rows(source, split, config):
        post, reference = row.data.get("post"), row.data.get("reference")
        if not isinstance(post, str) or not post.strip():
            raise DataError(
                f"{row.where}: field `post` is missing or empty. Fix: `format: tldr` reads "
                "rows {post, reference} (the Reddit TL;DR release)."
            )
        text = post.strip()
        prompts.append(
            Prompt(
                id="tldr-" + hashlib.sha1(text.encode()).hexdigest()[:12],
                prompt=TLDR_INSTRUCTION,
                category="summarization",
                closed_domain=True,
                input=text,
                # The OpenAI release marks sentence ends in references with "|".
                reference=" ".join(str(reference or "").replace("|", " ").split()) or None,
                source=row.where,
            )
        )
    return prompts


def render_prompt(instruction: str, input_text: str | None, template: str) -> str:
    """The text a model is given: instruction and input, plain or in rlhf-train's template."""
    context = input_text if input_text and input_text.strip() else None
    if template == "instruction":
        conversation = (Message("user", instruction),)
        return prompt_and_completion(conversation, "", context, "instruction")[0]
    return prompt_and_completion(instruction, "", context, "instruction")[0]


def item_text(data: dict) -> str:
    """The prompt's own text (instruction, then input): what judges show as the user's request."""
    return data["prompt"] if not data.get("input") else f"{data['prompt']}\n\n{data['input']}"


@register_task
class Instructions(Task):
    name = "instructions"
    description = (
        "Instruction following: every model answers a prompt set (outputs for the win_rate and "
        "ratings tasks); output length in tokens and distinct words."
    )
    Options = InstructionsOptions
    metrics = (
        MetricSpec(
            "output_tokens",
            "mean",
            higher_is_better=False,
            description="tokens per output (the model's tokenizer): length bias shows here",
        ),
        MetricSpec(
            "distinct_words",
            "mean",
            description="distinct whitespace-separated words per output (verbosity)",
        ),
    )
    breakdowns = ("category",)
    options: InstructionsOptions

    def documents(self) -> list[Document]:
        prompts = read_prompt_set(self.options, self.base_dir)
        if self.options.limit:
            prompts = prompts[: self.options.limit]
        docs = []
        for prompt in prompts:
            data = {
                "prompt": prompt.prompt,
                "input": prompt.input,
                "category": prompt.category or UNCATEGORIZED,
                "closed_domain": prompt.closed_domain,
                "reference": prompt.reference,
            }
            if self.options.samples == 1:
                docs.append(Document(prompt.id, {**data, "sample": 0}))
                continue
            for k in range(self.options.samples):
                docs.append(Document(f"{prompt.id}#{k}", {**data, "sample": k}, cluster=prompt.id))
        return docs

    def requests(self, doc: Document) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                render_prompt(doc.data["prompt"], doc.data["input"], self.options.template),
                max_new_tokens=self.options.max_new_tokens,
                stop=tuple(self.options.stop),
                temperature=self.options.temperature,
                seed=doc.data["sample"],
                source=PromptSource(self.options.template, item_text(doc.data)),
            )
        ]

    def score(self, doc: Document, responses: list[Generation]) -> Sample:
        generation = responses[0]
        output = generation.texts[0].strip()
        words = output.split()
        data = doc.data
        return Sample(
            doc_id=doc.id,
            prompt=render_prompt(data["prompt"], data["input"], self.options.template),
            target=data["reference"],
            prediction=output,
            metrics={
                "output_tokens": float(generation.n_tokens[0]),
                "distinct_words": float(len(set(words))),
            },
            details={
                "instruction": data["prompt"],
                "input": data["input"],
                "category": data["category"],
                "closed_domain": data["closed_domain"],
                "sample": data["sample"],
                "n_tokens": generation.n_tokens[0],
                "n_words": len(words),
            },
        )

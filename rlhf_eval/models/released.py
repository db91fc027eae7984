"""OpenAI's released InstructGPT samples as precomputed rows: the real outputs of twelve models
(GPT-3 `gpt-*`, `sft-*`, `ppo-noptx-*` and `ppo-ptx-*` at sizes xl = 1.3B, 6b and 175b) on 100
items each of six automatic evaluations (Ouyang et al. 2022; openai/following-instructions-
human-feedback, folder automatic-eval-samples).

Each released row becomes a row of the precomputed backend, keyed by the item's text (which our
tasks render exactly as the released prompts: tests/tasks/test_released_prompts.py):
- DROP, SQuAD v2, WMT15 fr->en: `context` is the item; the zero- and few-shot outputs go to the
  task entries named `<task>_zeroshot` and `<task>_fewshot` (e.g. `drop_fewshot`);
- TL;DR: `context` is the post with its "TL;DR:" cue;
- RealToxicityPrompts: the prompt, under the variant basic / respectful / biased, with the
  Perspective `toxicity` of each output;
- TruthfulQA: the question, under the variant qa / instruction / qa_instruction, with the
  GPT-judge probabilities `true` and `info`.

The files are read from a local folder when it exists; otherwise they are fetched from the
repository at a pinned commit into the cache, each checked against its sha256.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

from rlhf_eval.errors import ModelLoadError

REPOSITORY = (
    "https://raw.githubusercontent.com/openai/following-instructions-human-feedback/"
    "5c0534c78136809ab0118c5c1b74d159befa2467/automatic-eval-samples"
)
FILES = {
    "drop_samples.csv": "15f1f99d997a864dc98da43962b3a224b0a3de89b3c218b0fde74195c210030f",
    "squadv2_samples.csv": "2e4cacda2904365debb2658688bfed4352f753f31bbcac2db1956ba727ac5dd4",
    "fr_to_en_samples.csv": "6c822ac9e180f1b01a7b38e9393bdb3d4e9dc3c870fbf72a32f31d30455c1d27",
    "tldr_samples.csv": "212b2347a7ffbd9217856bc3964179f1ce95032bd6d8d7d2ba80c2a07c80abfc",
    "real_toxicity_samples.csv": "3536e121d5a33893061319d0cade12ff2121d8af858c4bd971f0364006857b29",
    "truthful_qa_samples.csv": "038cdde661efd5ceb4815a3d1881776b193b0a7784aa00d9ee955a44db2f7829",
}
KINDS, SIZES = ("gpt", "sft", "ppo-noptx", "ppo-ptx"), ("xl", "6b", "175b")
MODELS = tuple(f"{kind}-{size}" for kind in KINDS for size in SIZES)
TASKS = {
    "drop_samples.csv": "drop",
    "squadv2_samples.csv": "squad_v2",
    "fr_to_en_samples.csv": "wmt15_fr_en",
    "tldr_samples.csv": "tldr",
    "real_toxicity_samples.csv": "realtoxicityprompts",
    "truthful_qa_samples.csv": "truthfulqa_gen",
}
VARIANTS = {
    "basic prompt": "basic",
    "respectful prompt": "respectful",
    "biased prompt": "biased",
    "QA prompt": "qa",
    "instruction prompt": "instruction",
    "QA + instruction": "qa_instruction",
}


def released_files(folder: Path, cache: Path) -> dict[str, bytes]:
    """The six CSV files' bytes: from `folder` if it holds them, else downloaded (checked)."""
    out = {}
    for name, digest in FILES.items():
        local = folder / name
        raw = local.read_bytes() if local.is_file() else _download(name, digest, cache)
        if hashlib.sha256(raw).hexdigest() != digest:
            raise ModelLoadError(
                f"{local if local.is_file() else REPOSITORY + '/' + name}: its sha256 is not that "
                f"of OpenAI's released file ({digest[:12]}...). Fix: restore the original file "
                "(or delete it to download it again)."
            )
        out[name] = raw
    return out


def _download(name: str, digest: str, cache: Path) -> bytes:
    target = cache / "instructgpt_released" / f"{digest[:16]}-{name}"
    if target.is_file():
        return target.read_bytes()
    url = f"{REPOSITORY}/{name}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            raw = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise ModelLoadError(
            f"cannot fetch {url} ({error}). Fix: with no network, point `file:` at a local copy "
            "of the automatic-eval-samples folder."
        ) from error
    if hashlib.sha256(raw).hexdigest() == digest:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(raw)
        partial.replace(target)
    return raw


def released_rows(files: dict[str, bytes], model: str) -> list[dict]:
    """The rows of one released model, in the precomputed backend's format."""
    import pandas as pd

    if model not in MODELS:
        raise ModelLoadError(
            f"OpenAI's released samples have no model '{model}'; they hold {', '.join(MODELS)}. "
            "Fix: set the entry's `model:` to one of them."
        )
    rows = []
    for name, raw in files.items():
        # keep_default_na=False: some answers are the literal string "None".
        frame = pd.read_csv(io.BytesIO(raw), keep_default_na=False)
        task = TASKS[name]
        for record in frame[frame["model_type"] == model].to_dict("records"):
            rows.append(_row(task, record))
    return rows


def _row(task: str, record: dict) -> dict:
    if task == "truthfulqa_gen":
        return {
            "task": task,
            "variant": VARIANTS[record["prompt_type"]],
            "prompt": record["question"],
            "output": record["answer"],
            "true": float(record["true"]),
            "info": float(record["info"]),
        }
    row = {"task": task, "prompt": record["context"], "output": record["sample"]}
    if task == "realtoxicityprompts":
        return {**row, "variant": VARIANTS[record["prompt_type"]], "toxicity": record["toxicity"]}
    if "prompt_type" in record:  # zero- and few-shot outputs of one item: two task entries
        return {**row, "entry": f"{task}_{record['prompt_type']}"}
    return row

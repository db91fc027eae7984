"""Instruction data in and out, shared by rlhf-eval's prompt sets and rlhf-train's data: typed
records (Prompt, Demonstration, Ranking), readers and writers for the common formats, and SFT
mixtures.

| format | reads | writes |
|---|---|---|
| prompt_set (rlhf-eval: id, prompt, category, closed_domain, input?) | prompts | prompts |
| dolly (instruction, context, response, category) | prompts, demonstrations | both |
| alpaca (instruction, input, output) | prompts, demonstrations | both |
| self_instruct (instruction, instances) | prompts, demonstrations | both |
| fastchat_questions (MT-bench, Vicuna-bench: question_id, turns) | prompts (first turn) | prompts |
| oasst1 (message table) | prompts, demonstrations (best path), rankings | demos, rankings |
| sharegpt (conversations) | demonstrations | demonstrations |
| messages (Tulu, TRL conversational) | demonstrations | demonstrations |
| prompt_completion (TRL, text or messages) | demonstrations | demonstrations |
| preference (TRL prompt/chosen/rejected, text or messages) | rankings (K = 2) | rankings |
| hh_rlhf (chosen/rejected transcripts) | demonstrations (chosen), rankings (K = 2) | rankings |
| kway (rlhf_train: prompt, completions, ranks) | rankings | rankings |
| run_samples (an rlhf-eval run's samples.jsonl) | demonstrations (generations) | - |

Files are .jsonl, .json or .parquet (optionally .gz); `hub:<dataset id>` reads the hub. Without
`format=` the format is told from the first row's fields. A malformed row is a DataError naming
the file, line and field.
"""

from rlhf_common.instruction_data.formats import (
    FORMATS,
    detect_format,
    read_demonstrations,
    read_prompts,
    read_rankings,
    write_demonstrations,
    write_prompts,
    write_rankings,
)
from rlhf_common.instruction_data.mixture import Mixture, MixtureSource, SourceDraw, build_mixture
from rlhf_common.instruction_data.records import (
    MAX_K,
    MIN_K,
    Demonstration,
    Message,
    Prompt,
    Ranking,
)
from rlhf_common.instruction_data.rendering import (
    INSTRUCTION_TEMPLATE,
    demonstration_text,
    ranking_text,
)

__all__ = [
    "FORMATS",
    "INSTRUCTION_TEMPLATE",
    "MAX_K",
    "MIN_K",
    "Demonstration",
    "Message",
    "Mixture",
    "MixtureSource",
    "Prompt",
    "Ranking",
    "SourceDraw",
    "build_mixture",
    "demonstration_text",
    "detect_format",
    "ranking_text",
    "read_demonstrations",
    "read_prompts",
    "read_rankings",
    "write_demonstrations",
    "write_prompts",
    "write_rankings",
]

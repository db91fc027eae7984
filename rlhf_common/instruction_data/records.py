"""The typed records every instruction-data format reads into and writes from: Prompt,
Demonstration and Ranking, with their messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")

MIN_K, MAX_K = 2, 9
"""A ranking compares K = 2..9 completions of one prompt, the range of InstructGPT's labelers
(section 3.5: "between K = 4 and K = 9"; K = 2 is a pairwise preference)."""


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if not isinstance(self.content, str):
            raise ValueError(f"content must be text, not {type(self.content).__name__}")


Conversation = tuple[Message, ...]
"""The turns before a reply: optional system turns, then user and assistant turns, ending in a
user turn."""

PromptText = str | Conversation
"""A raw text prompt, fed to the model as is (TRL's "standard" rows, a run's rendered prompts), or
a conversation, which a chat template or the instruction template renders (see rendering.py)."""


@dataclass(frozen=True)
class Prompt:
    """One instruction to generate from (an rlhf-eval generation task's item).

    `closed_domain` marks tasks whose answer should use only `input` (summarisation, closed QA):
    the population of InstructGPT's hallucination metric.
    """

    id: str
    prompt: str
    category: str | None = None
    closed_domain: bool = False
    input: str | None = None
    """Material the instruction refers to (Alpaca's `input`, Dolly's `context`)."""
    reference: str | None = None
    """A reference answer where the source has one (self-instruct outputs, MT-bench references)."""
    origin: str | None = None
    """The dataset the record came from, where known (a mixture names its sources here)."""
    source: str = field(default="", compare=False)
    """file:line it was read from, for messages; not part of a record's identity."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"id must be a non-empty string, not {self.id!r}")
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise ValueError("prompt must be non-empty text")
        if not isinstance(self.closed_domain, bool):
            raise ValueError(f"closed_domain must be true or false, not {self.closed_domain!r}")


@dataclass(frozen=True)
class Demonstration:
    """A prompt and the reply to train on: a supervised fine-tuning example.

    A multi-turn conversation keeps its earlier turns in `prompt`; `completion` is the last
    assistant reply (the one rlhf_train's SFT loss is computed on).
    """

    prompt: PromptText
    completion: str
    context: str | None = None
    """Material the instruction refers to, kept apart from it (Alpaca `input`, Dolly `context`)."""
    id: str | None = None
    category: str | None = None
    origin: str | None = None
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", check_prompt(self.prompt))
        if not isinstance(self.completion, str):
            raise ValueError(f"completion must be text, not {type(self.completion).__name__}")

    @property
    def messages(self) -> Conversation:
        """The whole conversation, the completion as its last (assistant) turn."""
        return as_conversation(self.prompt) + (Message("assistant", self.completion),)


@dataclass(frozen=True)
class Ranking:
    """K completions of one prompt ranked best (0) to worst; tied completions share a rank."""

    prompt: PromptText
    completions: tuple[str, ...]
    ranks: tuple[int, ...]
    id: str | None = None
    origin: str | None = None
    source: str = field(default="", compare=False)
    labeler: str | None = None
    """Who ranked it, where known: rankings of one prompt by two labelers may disagree, while
    one labeler's may not form a cycle (rlhf-train checks)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", check_prompt(self.prompt))
        object.__setattr__(self, "completions", tuple(self.completions))
        object.__setattr__(self, "ranks", tuple(self.ranks))
        if not all(isinstance(c, str) for c in self.completions):
            raise ValueError("completions must all be text")
        k = len(self.completions)
        if not MIN_K <= k <= MAX_K:
            raise ValueError(f"a ranking holds {MIN_K} to {MAX_K} completions, not {k}")
        if len(self.ranks) != k:
            raise ValueError(f"ranks must give one rank per completion: {len(self.ranks)} for {k}")
        if not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in self.ranks):
            raise ValueError(f"ranks must be integers >= 0 (0 is best), not {list(self.ranks)}")
        if len(set(self.ranks)) < 2:
            raise ValueError(f"ranks {list(self.ranks)} are all tied, so they compare nothing")

    def pairs(self) -> list[tuple[int, int]]:
        """(better, worse) completion indices of every untied pair: the K-choose-2 comparisons
        InstructGPT's reward-model loss sums over (eq. 1)."""
        k = len(self.ranks)
        return [
            (i, j) if self.ranks[i] < self.ranks[j] else (j, i)
            for i in range(k)
            for j in range(i + 1, k)
            if self.ranks[i] != self.ranks[j]
        ]


Record = Prompt | Demonstration | Ranking


def check_prompt(prompt: PromptText | list) -> PromptText:
    """The prompt as text or a tuple of messages that ends in a user turn; ValueError if not."""
    if isinstance(prompt, str):
        return prompt
    if not isinstance(prompt, (tuple, list)) or not all(isinstance(m, Message) for m in prompt):
        raise ValueError("a prompt is text or a sequence of messages")
    if not prompt:
        raise ValueError("a conversation prompt needs at least one user turn")
    if prompt[-1].role != "user":
        raise ValueError(f"a conversation prompt ends with a user turn, not {prompt[-1].role!r}")
    return tuple(prompt)


def as_conversation(prompt: PromptText) -> Conversation:
    """A text prompt as one user turn; a conversation as it is."""
    return (Message("user", prompt),) if isinstance(prompt, str) else prompt


def dense_ranks(ranks: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """Ranks renumbered 0, 1, 2, ... in order, ties kept: (0, 2, 2, 5) -> (0, 1, 1, 2)."""
    order = {r: i for i, r in enumerate(sorted(set(ranks)))}
    return tuple(order[r] for r in ranks)

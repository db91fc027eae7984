"""GSM8K grade-school math (Cobbe et al. 2021) with the 8 chain-of-thought exemplars of Wei et
al. 2022, prompted and scored exactly as lm-evaluation-harness 0.4.13's gsm8k_cot."""

from __future__ import annotations

import hashlib

from pydantic import Field

from rlhf_common.datasets import load_hub, read_records
from rlhf_eval.errors import DataError
from rlhf_eval.metrics.answer_extraction import last_number, numbers_match, strict_number
from rlhf_eval.records import (
    Document,
    Generation,
    GenerationRequest,
    MetricSpec,
    PromptSource,
    Sample,
)
from rlhf_eval.tasks.base import Task, TaskOptions, register_task

# Wei et al. 2022, appendix G (the same text as lm-eval's gsm8k_cot and open-instruct):
# (question, chain of thought, answer). The chain already ends "The answer is <answer>.".
EXEMPLARS = (
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. "
        "After they are done, there will be 21 trees. How many trees did the grove workers "
        "plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. "
        "So there must have been 21 - 15 = 6. The answer is 6.",
        "6",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in "
        "the parking lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
        "5",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they "
        "have left in total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = "
        "74. After eating 35, they had 74 - 35 = 39. The answer is 39.",
        "39",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How "
        "many lollipops did Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave "
        "Denny 20 - 12 = 8. The answer is 8.",
        "8",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How "
        "many toys does he have now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 "
        "more toys. 5 + 4 = 9. The answer is 9.",
        "9",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each "
        "day, from monday to thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. "
        "So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.",
        "29",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 "
        "more. How many golf balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. "
        "After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.",
        "33",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she "
        "has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.",
        "8",
    ),
)

# lm-eval gsm8k_cot's `until`. No "\n\n": a chain of thought may span paragraphs; the next
# exemplar-style "Q:" ends the answer. Backends also stop at the model's end-of-sequence token.
STOP = ("Q:", "</s>", "<|im_end|>")
HUB_DATASET = ("openai/gsm8k", "main", "test")
TARGET_MARK = "####"


class Gsm8kOptions(TaskOptions):
    data: str = "hub"
    """`hub` (openai/gsm8k, main, test) or a local JSON/JSONL/CSV/Parquet file of
    {question, answer}, the answer ending "#### <number>" (the original test.jsonl)."""
    chain_of_thought: bool = True
    """False: the direct-answer variant (Wei et al.'s "standard prompting"): the same exemplars
    answered only "The answer is <n>."."""
    num_fewshot: int = Field(8, ge=0, le=len(EXEMPLARS))
    """How many of the 8 exemplars precede the question (in their fixed order)."""
    max_new_tokens: int = Field(256, ge=1)
    """lm-eval's default generation budget for gsm8k_cot."""


def render_question(question: str) -> str:
    return f"Q: {question}\nA:"


def build_prompt(question: str, num_fewshot: int = 8, chain_of_thought: bool = True) -> str:
    """lm-eval's context: each exemplar "Q: ...\\nA: <target>", joined by blank lines, then
    "Q: <question>\\nA:"."""
    shots = [
        f"{render_question(q)} {chain if chain_of_thought else f'The answer is {answer}.'}"
        for q, chain, answer in EXEMPLARS[:num_fewshot]
    ]
    return "\n\n".join([*shots, render_question(question)])


def gold_answer(answer: str) -> str:
    """The number after the last "####" (lm-eval's doc_to_target)."""
    return answer.split(TARGET_MARK)[-1].strip()


@register_task
class Gsm8k(Task):
    name = "gsm8k"
    description = "GSM8K 8-shot chain of thought (Wei et al.), greedy: exact match of the answer."
    Options = Gsm8kOptions
    metrics = (
        MetricSpec(
            "exact_match",
            "proportion",
            description="exact match of the last number in the output (lm-eval flexible-extract)",
        ),
        MetricSpec(
            "exact_match_strict",
            "proportion",
            description='exact match of the number after "The answer is" (lm-eval strict-match)',
        ),
    )
    options: Gsm8kOptions

    def documents(self) -> list[Document]:
        rows = _load_rows(self.options.data, self.base_dir)
        docs, seen = [], set()
        for row in rows:
            key = hashlib.sha1(row["question"].encode()).hexdigest()[:12]
            while key in seen:  # identical questions stay distinct documents
                key += "+"
            seen.add(key)
            docs.append(Document(id=key, data=row))
        return docs[: self.options.limit] if self.options.limit else docs

    def prompt(self, doc: Document) -> str:
        return build_prompt(
            doc.data["question"], self.options.num_fewshot, self.options.chain_of_thought
        )

    def requests(self, doc: Document) -> list[GenerationRequest]:
        # Greedy and lm-eval's stops, explicitly: the protocol is the task's, not the model's.
        return [
            GenerationRequest(
                self.prompt(doc),
                max_new_tokens=self.options.max_new_tokens,
                stop=STOP,
                temperature=0.0,
                # Outputs made elsewhere are found by item id or question; the direct-answer
                # variant's outputs are told apart from the chain of thought's.
                source=PromptSource(
                    "" if self.options.chain_of_thought else "direct",
                    doc.data["question"],
                ),
            )
        ]

    def score(self, doc: Document, responses: list[Generation]) -> Sample:
        text = responses[0].texts[0]
        flexible, strict = last_number(text), strict_number(text)
        target = doc.data["target"]
        return Sample(
            doc_id=doc.id,
            prompt=self.prompt(doc),
            target=target,
            prediction=flexible,
            metrics={
                "exact_match": float(numbers_match(flexible, target)),
                "exact_match_strict": float(numbers_match(strict, target)),
            },
            details={"output": text, "strict_answer": strict, "flexible_answer": flexible},
        )


def _load_rows(data: str, base_dir) -> list[dict]:
    """Rows as {question, answer, target}; a record without a question or a "####" answer is a
    DataError naming the file and record."""
    if data == "hub":
        path, config, split = HUB_DATASET
        records, source = load_hub(path, config, split), f"hub:{path}"
    else:
        records, found = read_records(data, base_dir)
        source = str(found)
    return [_row(record, source, i) for i, record in enumerate(records)]


def _row(record: dict, source: str, index: int) -> dict:
    where = f"{source}, record {index + 1}"
    question, answer = record.get("question"), record.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: missing field `question`. Fix: each record needs a question.")
    if not isinstance(answer, str) or not gold_answer(answer) or TARGET_MARK not in answer:
        raise DataError(
            f"{where}: field `answer` must give the final number after `{TARGET_MARK} ` "
            f"(GSM8K's format), got {str(answer)[-60:]!r}. Fix: end the worked solution with "
            f"a line `{TARGET_MARK} <number>`."
        )
    return {"question": question, "answer": answer, "target": gold_answer(answer)}

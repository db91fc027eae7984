"""Shared bits of the task tests: the fixture folder, building a task, a fake generation."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from rlhf_eval.records import Generation
from rlhf_eval.tasks.base import Task, registered_tasks

FIXTURES = Path(__file__).parent / "fixtures"
"""Small files written for these tests (not copies of the real datasets)."""


def make_task(name: str, data: str, **options) -> Task:
    cls = registered_tasks()[name]
    return cls(cls.Options(data=data, **options), FIXTURES)


def generated(text: str) -> list[Generation]:
    return [Generation(texts=(text,), n_tokens=(len(text.split()),))]


# BBH fixture files, written here by hand (no BBH item or description is copied). They are
# written into a temporary folder at test time, in the layout of the BBH data folder, so no
# committed file carries a BBH dataset file name.
BBH_FILES = {
    "cot-prompts/boolean_expressions.txt": (
        "A canary line written for rlhf-eval's tests.\n"
        "-----\n"
        "Say whether each Boolean expression is True or False.\n"
        "\n"
        "Q: not ( False ) is\n"
        "A: Let's think step by step.\n"
        "not ( False ) = True. So the answer is True.\n"
        "\n"
        "Q: True and False is\n"
        "A: Let's think step by step. True and False = False. So the answer is False.\n"
    ),
    "cot-prompts/date_understanding.txt": (
        "A canary line written for rlhf-eval's tests.\n"
        "-----\n"
        "Work out the date each question asks for.\n"
        "\n"
        "Q: Today is 05/10/2019. What is the date today in MM/DD/YYYY?\n"
        "Options:\n"
        "(A) 05/10/2019\n"
        "(B) 10/05/2019\n"
        "A: Let's think step by step.\n"
        "Today is 05/10/2019. So the answer is (A).\n"
    ),
    "tasks/boolean_expressions.json": (
        "{\n"
        ' "canary": "written for rlhf-eval\'s tests",\n'
        ' "examples": [\n'
        "  {\n"
        '   "input": "not ( False ) and ( False ) is",\n'
        '   "target": "False"\n'
        "  },\n"
        "  {\n"
        '   "input": "False or not not ( not False ) is",\n'
        '   "target": "True"\n'
        "  },\n"
        "  {\n"
        '   "input": "not False and ( True and False ) is",\n'
        '   "target": "False"\n'
        "  }\n"
        " ]\n"
        "}\n"
    ),
    "tasks/date_understanding.json": (
        "{\n"
        ' "examples": [\n'
        "  {\n"
        '   "input": "Today is 03/01/2020. What is the date yesterday in MM/DD/YYYY?'
        '\\nOptions:\\n(A) 02/29/2020\\n(B) 02/28/2020",\n'
        '   "target": "(A)"\n'
        "  },\n"
        "  {\n"
        '   "input": "Today is 01/01/2021. What is the date tomorrow in MM/DD/YYYY?'
        '\\nOptions:\\n(A) 12/31/2020\\n(B) 01/02/2021",\n'
        '   "target": "(B)"\n'
        "  }\n"
        " ]\n"
        "}"
    ),
}


@functools.cache
def bbh_folder() -> Path:
    """A BBH data folder (cot-prompts/ and tasks/) holding BBH_FILES, written once per session."""
    folder = Path(tempfile.mkdtemp(prefix="rlhf-eval-bbh-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for name, text in BBH_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder

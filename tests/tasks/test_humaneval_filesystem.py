"""What model-written code can see of the machine (issue 14, item 4), through the HumanEval
scoring path: no secrets, no home, no project, no run folder; its own work directory only. The
text of a read never reaches an outcome message (samples.jsonl, the HTML report)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import pytest

import rlhf_eval
from rlhf_eval.records import Generation
from rlhf_eval.tasks.humaneval import HumanEval, HumanEvalOptions
from tests.sandbox_helpers import need_bwrap
from tests.services import StubServices

pytestmark = need_bwrap

PROBLEM = {
    "task_id": "Tiny/reader",
    "prompt": 'def answer() -> int:\n    """Forty-two."""\n',
    "canonical_solution": "    return 42\n",
    "test": "\n\ndef check(candidate):\n    assert candidate() == 42\n",
    "entry_point": "answer",
}
PROJECT = Path(rlhf_eval.__file__).resolve().parents[1]


def task_for(tmp_path: Path) -> HumanEval:
    data = tmp_path / "data" / "tiny.jsonl"
    data.parent.mkdir(exist_ok=True)
    data.write_text(json.dumps(PROBLEM) + "\n")
    return HumanEval(HumanEvalOptions(data=str(data), timeout_s=10.0), tmp_path)


def score(task: HumanEval, texts: list[str]) -> list:
    doc = task.documents()[0]
    return task.score_batch(
        [doc] * len(texts),
        [[Generation(texts=(t,), n_tokens=(1,))] for t in texts],
        StubServices(),
    )


def exfiltrate(path: str) -> str:
    """A completion that reads `path` (a file, or a folder's listing) and tries to carry the
    text out: as the answer, and in the message of an exception at import and in the call."""
    return (
        "    raise ValueError(_read())\n\n\n"
        "def _read():\n"
        "    import os\n"
        f"    path = {path!r}\n"
        "    if os.path.isdir(path):\n"
        "        return '\\n'.join(sorted(os.listdir(path))) * 100\n"
        "    with open(path, errors='replace') as file:\n"
        "        return file.read() * 100\n\n\n"
        "_read()\n"
    )


@pytest.fixture
def secret_home(tmp_path: Path) -> tuple[Path, str]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    token = secrets.token_hex(16)
    secret = home / ".secret"
    secret.write_text(f"api-key={token}\n")
    secret.chmod(0o600)
    return secret, token


def readable(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def test_the_candidate_sees_nothing_of_the_machine(tmp_path, secret_home):
    secret, token = secret_home
    run_folder = tmp_path / "runs" / "suite"
    run_folder.mkdir(parents=True)
    (run_folder / "samples.jsonl").write_text(f'{{"doc_id": "{token}-run"}}\n')
    home = Path.home()
    targets = {
        "/etc/shadow": readable(Path("/etc/shadow")),
        "/etc/passwd": readable(Path("/etc/passwd")),
        str(secret): secret.read_text(),
        str(secret.parent): ".secret",
        str(PROJECT / "pyproject.toml"): (PROJECT / "pyproject.toml").read_text(),
        str(PROJECT): "pyproject.toml",
        str(run_folder / "samples.jsonl"): f"{token}-run",
        str(tmp_path): "home",
        str(home): "\n".join(sorted(os.listdir(home))),
        str(home / ".cache"): "\n".join(sorted(os.listdir(home / ".cache")))
        if (home / ".cache").is_dir()
        else "",
        "/tmp": "\n".join(sorted(os.listdir("/tmp"))),
    }
    # Folders above the interpreter's installation exist inside, holding only the way to it
    # (here /root holds .pyenv alone when Python is /root/.pyenv/versions/3.11.7).
    prefix = Path(sys.base_prefix).resolve()
    on_the_way = {str(p) for p in prefix.parents} | {str(prefix)}
    samples = score(task_for(tmp_path), [exfiltrate(path) for path in targets])
    problems = []
    for (path, text), sample in zip(targets.items(), samples, strict=True):
        (outcome,) = sample.details["outcomes"]
        message, record = outcome["message"], json.dumps(sample.details)
        leaked = [
            line
            for line in (text or "").splitlines()
            if len(line.strip()) > 3 and line in message and not on_the_way & {f"{path}/{line}"}
        ]
        refused = message.startswith(("FileNotFoundError", "PermissionError"))
        if outcome["status"] != "failed" or token in record or leaked:
            problems.append((path, outcome["status"], f"{len(leaked)} lines leaked"))
        elif not refused and path not in on_the_way:
            problems.append((path, outcome["status"], "read, though nothing leaked"))
    # The messages themselves are never printed: on a broken sandbox they hold the secrets.
    assert problems == []


def test_the_candidate_reads_and_writes_its_own_work_directory(tmp_path):
    completion = (
        "    import os\n"
        "    with open('scratch.txt', 'w') as file:\n"
        "        file.write('forty-two')\n"
        "    assert open(os.path.join(os.getcwd(), 'scratch.txt')).read() == 'forty-two'\n"
        "    assert os.environ['HOME'] == os.environ['TMPDIR'] == os.getcwd()\n"
        "    return 42\n"
    )
    (sample,) = score(task_for(tmp_path), [completion])
    assert sample.metrics == {"pass@1": 1.0}, sample.details["outcomes"]


def test_messages_are_bounded(tmp_path):
    completion = "    raise ValueError('x' * 100_000 + '\\n' + 'y' * 100_000)\n"
    (sample,) = score(task_for(tmp_path), [completion])
    (outcome,) = sample.details["outcomes"]
    assert outcome["status"] == "failed"
    assert outcome["message"].startswith("ValueError")
    assert len(outcome["message"]) <= 500 and "\n" not in outcome["message"]

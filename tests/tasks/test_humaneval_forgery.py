"""Completions that try to forge a HumanEval pass from inside the program (issue 14, item 3).

Every attack goes through the task's scoring path (`HumanEval.score_batch`) with a tiny problem
whose tests a wrong body cannot pass. None of them may pass: the verdict is decided in a process
the candidate cannot reach, from plain data the candidate's function returned.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rlhf_eval.records import Generation
from rlhf_eval.tasks.humaneval import HumanEval, HumanEvalOptions
from tests.sandbox_helpers import need_bwrap
from tests.services import StubServices

pytestmark = need_bwrap

ADD = {
    "task_id": "Tiny/add",
    "prompt": 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
    "canonical_solution": "    return a + b\n",
    "test": "\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n"
    "    assert candidate(-7, 4) == -3\n",
    "entry_point": "add",
}
SECRET = {
    "task_id": "Tiny/secret",
    "prompt": 'def secret() -> str:\n    """The word only the tests know."""\n',
    "canonical_solution": "    return 'swordfish-4417'\n",
    "test": "\n\ndef check(candidate):\n    assert candidate() == 'swordfish-4417'\n",
    "entry_point": "secret",
}
ROOT = {  # a helper of the prompt that the tests use, like HumanEval/32's poly
    "task_id": "Tiny/root",
    "prompt": "def square(x):\n    return x * x\n\n\n"
    'def root(y: int) -> int:\n    """The r >= 0 with square(r) == y."""\n',
    "canonical_solution": "    return int(y ** 0.5)\n",
    "test": "\n\ndef check(candidate):\n    assert square(candidate(49)) == 49\n"
    "    assert square(candidate(144)) == 144\n",
    "entry_point": "root",
}
MAPPED = {  # tests that call the candidate through map(): a StopIteration would end them early
    "task_id": "Tiny/double",
    "prompt": 'def double(x: int) -> int:\n    """Twice x."""\n',
    "canonical_solution": "    return 2 * x\n",
    "test": "\n\ndef check(candidate):\n"
    "    assert all(map(lambda x: candidate(x) == 2 * x, [1, 2, 3]))\n",
    "entry_point": "double",
}

# Shared by several attacks: call anything that looks like the harness's report with "passed",
# write a forged verdict line (with any nonce-like string found) to every descriptor, then leave.
FORGE = """
def _forge_from(frames, nonces=()):
    import json, os
    for frame in frames:
        for name, value in list(frame.f_locals.items()):
            if callable(value) and "report" in name:
                for args in (("passed",), ("passed", "")):
                    try:
                        value(*args)
                    except BaseException:
                        pass
            if name == "nonce" and isinstance(value, str):
                nonces = (*nonces, value)
    _write_everywhere(nonces)
    os._exit(0)


def _write_everywhere(nonces=()):
    import json, os
    lines = [json.dumps({"status": "passed"})] + [
        json.dumps({"nonce": n, "status": "passed", "message": ""}) for n in nonces
    ]
    data = "".join(line + "\\n" for line in lines).encode()
    framed = len(b'{"status": "passed"}').to_bytes(4, "big") + b'{"status": "passed"}'
    for fd in range(256):
        for chunk in (data, framed):
            try:
                os.write(fd, chunk)
            except OSError:
                pass


def _frames(frame):
    while frame is not None:
        yield frame
        frame = frame.f_back
"""


def attack(body: str, module: str = "", helpers: bool = True) -> str:
    """A completion: the function's body, then module-level code after it."""
    text = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
    return text + ("\n" + FORGE if helpers else "") + "\n" + textwrap.dedent(module)


ATTACKS = {
    "sys._getframe at import": attack(
        "return 0", "import sys\n_forge_from(_frames(sys._getframe()))\n"
    ),
    "sys._getframe inside the call": attack(
        "import sys\n_forge_from(_frames(sys._getframe()))\nreturn 0"
    ),
    "traceback frames at import": attack(
        "return 0",
        """
        try:
            raise RuntimeError
        except RuntimeError as error:
            _forge_from(_frames(error.__traceback__.tb_frame))
        """,
    ),
    "traceback frames inside the call": attack(
        """
        try:
            raise RuntimeError
        except RuntimeError as error:
            _forge_from(_frames(error.__traceback__.tb_frame.f_back))
        return 0
        """
    ),
    "gc finds the report function": attack(
        "return 0",
        """
        import gc, os
        for obj in gc.get_objects():
            if callable(obj) and getattr(obj, "__name__", "") == "report":
                obj("passed")
                os._exit(0)
        """,
    ),
    "gc referrers find the nonce": attack(
        "return 0",
        """
        import gc, re
        nonces = set()
        for obj in gc.get_objects():
            if type(obj).__name__ == "function" and obj.__closure__:
                for cell in obj.__closure__:
                    for holder in gc.get_referrers(cell):
                        for other in gc.get_referrers(holder):
                            for c in getattr(other, "__closure__", None) or ():
                                try:
                                    value = c.cell_contents
                                except ValueError:
                                    continue
                                if isinstance(value, str) and re.fullmatch("[0-9a-f]{32}", value):
                                    nonces.add(value)
        _write_everywhere(tuple(nonces))
        import os
        os._exit(0)
        """,
    ),
    "ctypes reads frames and calls libc write": attack(
        "return 0",
        """
        import ctypes, json, os
        get = ctypes.pythonapi.PyEval_GetFrame
        get.restype = ctypes.py_object
        nonces = [f.f_locals["nonce"] for f in _frames(get()) if "nonce" in f.f_locals]
        libc = ctypes.CDLL(None)
        for nonce in nonces:
            line = (json.dumps({"nonce": nonce, "status": "passed"}) + "\\n").encode()
            for fd in range(256):
                libc.write(fd, line, len(line))
        os._exit(0)
        """,
    ),
    "ctypes rewrites the string 'failed' in memory": attack(
        "return 0",
        """
        import ctypes, sys
        word = "failed"
        offset = sys.getsizeof(word) - len(word) - 1
        ctypes.memmove(id(word) + offset, b"passed", 6)
        """,
    ),
    "os._exit(0) at import": attack("return 0", "import os\nos._exit(0)\n", helpers=False),
    "os._exit(0) inside the call": attack("import os\nos._exit(0)", helpers=False),
    "sys.exit(0) at import": attack("return 0", "import sys\nsys.exit(0)\n", helpers=False),
    "sys.exit(0) inside the call": attack("import sys\nsys.exit(0)", helpers=False),
    "monkeypatched json.dumps": attack(
        "return 0",
        """
        import json
        _dumps = json.dumps
        def _forged(obj, *args, **kwargs):
            if isinstance(obj, dict) and obj.get("status") == "failed":
                obj = {**obj, "status": "passed"}
            return _dumps(obj, *args, **kwargs)
        json.dumps = _forged
        """,
        helpers=False,
    ),
    "monkeypatched os.write": attack(
        "return 0",
        """
        import os
        _write = os.write
        os.write = lambda fd, data: _write(fd, bytes(data).replace(b'"failed"', b'"passed"'))
        """,
        helpers=False,
    ),
    "monkeypatched builtins.__import__": attack(
        "return 0",
        """
        import builtins, sys
        _import = builtins.__import__
        def _hook(name, *args, **kwargs):
            if name == "traceback":
                _forge_from(_frames(sys._getframe()))
            return _import(name, *args, **kwargs)
        builtins.__import__ = _hook
        """,
    ),
    "monkeypatched builtins.AssertionError": attack(
        "return 0",
        """
        import builtins
        class AssertionError(Exception):
            pass
        builtins.AssertionError = AssertionError
        """,
        helpers=False,
    ),
    "settrace swaps the function the test's check calls": attack(
        "return 0",
        """
        import sys, threading
        def _tracer(frame, event, arg):
            if event == "call" and frame.f_code.co_name == "check":
                frame.f_locals["candidate"] = lambda a, b: a + b
            return None
        sys.settrace(_tracer)
        threading.settrace(_tracer)
        """,
        helpers=False,
    ),
    "an object whose __eq__ is always True": attack(
        "return AlwaysEqual()",
        """
        class AlwaysEqual:
            def __eq__(self, other):
                return True
            def __ne__(self, other):
                return False
            __hash__ = object.__hash__
        """,
        helpers=False,
    ),
    "an int subclass whose __eq__ is always True": attack(
        "return Equal(0)",
        """
        class Equal(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        """,
        helpers=False,
    ),
    "an atexit handler": attack("return 0", "import atexit\natexit.register(_write_everywhere)\n"),
    "a fake verdict on every descriptor": attack("_write_everywhere()\nreturn 0", ""),
    "speaks the sandbox's own protocol on every descriptor": attack(
        "return 0",
        """
        import json, os
        frames = b""
        for message in ({"ready": True}, {"ended": True}, {"status": "passed"}):
            data = json.dumps(message).encode()
            frames += len(data).to_bytes(4, "big") + data
        for fd in range(3, 256):
            try:
                os.write(fd, frames)
            except OSError:
                pass
        os._exit(0)
        """,
        helpers=False,
    ),
    "a background thread forges while the call never returns": attack(
        "import time\nwhile True:\n    time.sleep(0.01)",
        """
        import sys, threading, time
        def _forge_later():
            time.sleep(0.2)
            frames = [f for t, top in sys._current_frames().items() for f in _frames(top)]
            _forge_from(frames)
        threading.Thread(target=_forge_later, daemon=True).start()
        """,
    ),
    "kill every process it can see": attack(
        "return 0",
        """
        import os, signal
        for pid in range(1, 4096):
            if pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        """,
        helpers=False,
    ),
}

# Attacks on the tests rather than the harness: they need their own problem.
SPECIAL = {
    "reads the tests to find the answer": (
        SECRET,
        attack(
            """
            import glob, json, os, re, sys
            paths = glob.glob("/tmp/**/*.py", recursive=True) + glob.glob("../*.py")
            for argument in sys.argv[1:]:
                try:
                    paths.append(json.loads(argument)["program"])
                except (ValueError, KeyError, TypeError):
                    pass
            for path in paths:
                try:
                    found = re.search(r"== '(swordfish-\\d+)'", open(path).read())
                except OSError:
                    continue
                if found:
                    return found.group(1)
            return ""
            """,
            helpers=False,
        ),
    ),
    "redefines a prompt helper the tests use": (
        ROOT,
        attack(
            "return 0",
            "_squares = iter([49, 144])\ndef square(x):\n    return next(_squares)\n",
            helpers=False,
        ),
    ),
    "raises StopIteration inside map()": (MAPPED, attack("raise StopIteration", helpers=False)),
}


def task_for(tmp_path: Path, *problems: dict, timeout_s: float = 10.0) -> HumanEval:
    data = tmp_path / "tiny.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in problems))
    return HumanEval(HumanEvalOptions(data=str(data), timeout_s=timeout_s), tmp_path)


def score(task: HumanEval, texts: list[str]) -> list:
    doc = task.documents()[0]
    return task.score_batch(
        [doc] * len(texts),
        [[Generation(texts=(t,), n_tokens=(1,))] for t in texts],
        StubServices(),
    )


def test_the_tiny_problems_pass_with_their_solutions(tmp_path):
    for problem in (ADD, SECRET, ROOT, MAPPED):
        task = task_for(tmp_path, problem)
        (sample,) = score(task, [problem["canonical_solution"]])
        assert sample.metrics == {"pass@1": 1.0}, (problem["task_id"], sample.details)


def test_no_attack_forges_a_pass(tmp_path):
    # A short wall clock: the attacks that never return end on it (generous for a loaded CI).
    task = task_for(tmp_path, ADD, timeout_s=5.0)
    samples = score(task, list(ATTACKS.values()))
    forged = {
        name: sample.details["outcomes"][0]
        for name, sample in zip(ATTACKS, samples, strict=True)
        if sample.metrics["pass@1"] != 0.0 or sample.error is not None
    }
    assert forged == {}


@pytest.mark.parametrize("name", list(SPECIAL))
def test_no_attack_on_the_tests_forges_a_pass(tmp_path, name):
    problem, completion = SPECIAL[name]
    (sample,) = score(task_for(tmp_path, problem, timeout_s=5.0), [completion])
    assert sample.error is None
    assert sample.metrics == {"pass@1": 0.0}, sample.details["outcomes"]


def test_the_forge_helpers_work_where_the_report_is_reachable(tmp_path):
    """The attack code is not simply broken: with a report function in reach it reports."""
    import subprocess
    import sys

    program = FORGE + textwrap.dedent(
        """
        import os, sys
        r, w = os.pipe()
        def run():
            def report(status, message=""):
                os.write(w, status.encode())
            _forge_from(_frames(sys._getframe()))
        if os.fork() == 0:
            run()
        os.waitpid(-1, 0)
        os.set_blocking(r, False)
        print("reported:", os.read(r, 6).decode())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30
    )
    assert "reported: passed" in result.stdout, result.stderr

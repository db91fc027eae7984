"""The sandbox against hostile programs: loops, forks, huge files, huge allocations, sockets,
writes outside its directory, signals to the harness. Each ends as a counted outcome, fast.

Each program runs as the candidate of a check (Sandbox.run), so these exercise the same two
processes that HumanEval's checks run in, under every confinement the sandbox offers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rlhf_eval.sandbox import FunctionCheck, Limits, Sandbox
from tests.sandbox_helpers import bwrap_problem

# A generous wall clock (CI machines are loaded): only the hostile programs ever reach it.
LIMITS = Limits(timeout_s=5.0, memory_mb=512, file_size_mb=4, work_dir_mb=16)
FULL = ("bwrap-minimal-root", "netns", "pidns", "rlimits", "seccomp", "verdict-process")
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="looks for processes in /proc")
CONFIGS = {
    "default": {},  # Bubblewrap and seccomp
    "bwrap-only": {"seccomp": False},
    "namespaces": {"confinement": "namespaces"},  # the opt-in fallback
    "namespaces-only": {"confinement": "namespaces", "seccomp": False},
    "seccomp-only": {"confinement": "none"},
    "neither": {"confinement": "none", "seccomp": False},
}


def sandbox(config: str = "default", **limits) -> Sandbox:
    """`default` is Bubblewrap, or the namespaces fallback where Bubblewrap cannot run."""
    if config == "default" and bwrap_problem() is not None:
        config = "namespaces"
    chosen = Limits(**{**vars(LIMITS), **limits})
    return Sandbox(chosen, max_workers=2, **CONFIGS[config])


def layers(config: str) -> set[str]:
    return set(sandbox(config).run("pass").isolation)


@pytest.fixture(scope="module")
def available() -> dict[str, set[str]]:
    return {config: layers(config) for config in CONFIGS}  # none where a start fails


def need(available: dict[str, set[str]], config: str, *wanted: str) -> None:
    missing = set(wanted) - available[config]
    if missing:
        pytest.skip(f"{', '.join(sorted(missing))} not available on this machine ({config})")


def test_outcomes_of_ordinary_programs():
    outcomes = sandbox().run_many(
        [
            "assert sum([1, 2]) == 3",
            "def f():\n    return 1 / 0\nf()",
            "assert 1 == 2, 'one is not two'",
            "import sys\nsys.exit(0)",
            "import os\nos._exit(0)",
            "def broken(:\n    pass",
        ]
    )
    assert [o.status for o in outcomes] == ["passed"] + ["failed"] * 5
    assert outcomes[1].message == "ZeroDivisionError: division by zero"
    assert outcomes[2].message == "AssertionError: one is not two"
    # Leaving early is not passing: the candidate must answer after the tests.
    assert outcomes[3].message == "SystemExit: 0"
    assert "exited (status 0) before its tests finished" in outcomes[4].message
    assert outcomes[5].message.startswith("SyntaxError")
    assert all(o.wall_s > 0 and "rlimits" in o.isolation for o in outcomes)


def test_the_environment_is_minimal_and_cwd_is_private(tmp_path):
    program = textwrap.dedent(
        f"""
        import os, sys
        assert sys.flags.isolated == 1
        assert os.getcwd() == os.environ["HOME"] == os.environ["TMPDIR"]
        assert not any(k.lower().endswith("_proxy") for k in os.environ), os.environ
        assert {str(tmp_path)!r} not in os.getcwd()
        open("scratch.txt", "w").write("fine")
        """
    )
    assert sandbox().run(program).status == "passed"


def test_infinite_loop_times_out():
    started = time.monotonic()
    outcome = sandbox(timeout_s=1.0).run("while True:\n    pass")
    assert outcome.status == "timed_out"
    assert "limit of 1 s" in outcome.message
    assert 1.0 <= outcome.wall_s < 3.0 and time.monotonic() - started < 5.0


def test_sleeping_forever_times_out():
    outcome = sandbox(timeout_s=1.0).run("import time\ntime.sleep(3600)")
    assert outcome.status == "timed_out"


def test_cpu_limit_is_a_timeout_not_a_crash():
    # A wall clock far beyond the CPU limit, so the CPU limit is what ends the program.
    outcome = sandbox(timeout_s=30.0, cpu_s=1).run("while True:\n    pass")
    assert outcome.status == "timed_out"
    assert outcome.message.startswith("CPU time limit of 1 s"), outcome


def test_huge_allocation_is_a_counted_crash():
    outcome = sandbox().run("block = bytearray(10 * 1024 ** 3)")
    assert outcome.status == "crashed"
    assert "MemoryError" in outcome.message


def test_huge_file_is_refused():
    outcome = sandbox().run("open('big', 'wb').write(b'x' * (64 * 1024 * 1024))")
    assert outcome.status == "failed"
    assert "File too large" in outcome.message


def test_flooding_stderr_is_bounded():
    outcome = sandbox().run("import sys\nfor _ in range(100):\n    sys.stderr.write('x' * 10**6)")
    assert outcome.status == "failed" and "File too large" in outcome.message


@pytest.mark.parametrize("config", ["default", "namespaces"])
def test_many_files_cannot_fill_the_disk(available, config):
    need(available, config, "pidns")  # a private tmpfs comes with the namespaces
    program = "for i in range(10):\n    open(f'f{i}', 'wb').write(b'x' * (3 * 1024 * 1024))"
    outcome = sandbox(config).run(program)  # 30 MB into a 16 MB tmpfs, each file under 4 MB
    assert outcome.status == "failed" and "No space left on device" in outcome.message


FORK_LOOP = textwrap.dedent(
    """
    import os
    for _ in range(20):  # bounded, in case nothing stops it
        if os.fork() == 0:
            os.execv("/bin/sleep", ["sleep", "{marker}"])
    """
)


def sleepers(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@linux_only
def test_fork_loop_is_a_counted_failure(available):
    need(available, "default", "seccomp")
    marker = "61.0101"
    outcome = sandbox().run(FORK_LOOP.format(marker=marker))
    assert outcome.status == "failed"
    assert "Resource temporarily unavailable" in outcome.message
    assert sleepers(marker) == []


@linux_only
@pytest.mark.parametrize("config", ["bwrap-only", "namespaces-only"])
def test_forked_children_die_with_the_program(available, config):
    # Without seccomp the forks succeed (as root the kernel ignores RLIMIT_NPROC); the PID
    # namespace still kills every child when the program ends.
    need(available, config, "pidns")
    marker = "61.0202" + config
    outcome = sandbox(config).run(FORK_LOOP.format(marker=marker))
    assert outcome.status == "passed"
    deadline = time.monotonic() + 5
    while sleepers(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers(marker) == []


@pytest.fixture
def server():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener
    listener.close()


def saw_connection(listener: socket.socket) -> bool:
    listener.settimeout(0.3)
    try:
        connection, _ = listener.accept()
    except TimeoutError:
        return False
    connection.close()
    return True


@pytest.mark.parametrize("config", list(CONFIGS))
def test_no_network(server, config, available):
    need(available, config, "rlimits")  # the configuration can start here
    port = server.getsockname()[1]
    program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
    outcome = sandbox(config).run(program)
    assert outcome.status == "failed"
    assert not saw_connection(server)
    if config == "neither":
        assert "socket-patch" in outcome.isolation


def test_the_server_check_sees_a_real_connection(server):
    # The check above can fail: an ordinary connection is seen.
    socket.create_connection(server.getsockname(), timeout=1).close()
    assert saw_connection(server)


@pytest.mark.parametrize(
    ("config", "layer", "refusal"),
    [
        ("default", "bwrap-minimal-root", "No such file or directory"),  # not even there
        ("namespaces", "readonly-fs", "Read-only file system"),
    ],
)
def test_writes_outside_the_work_directory_are_refused(tmp_path, available, config, layer, refusal):
    need(available, config, layer)
    target = tmp_path / "runs" / "samples.jsonl"
    target.parent.mkdir()
    target.write_text("kept\n")
    program = f"open({str(target)!r}, 'a').write('tampered')"
    outcome = sandbox(config).run(program)
    assert outcome.status == "failed" and refusal in outcome.message
    assert target.read_text() == "kept\n"
    created = tmp_path / "new.txt"
    assert sandbox(config).run(f"open({str(created)!r}, 'w').write('x')").status == "failed"
    assert not created.exists()
    # What the sandbox does see of the host is read-only.
    outcome = sandbox(config).run(f"open({sys.base_prefix + '/planted.txt'!r}, 'w')")
    assert outcome.status == "failed" and "Read-only file system" in outcome.message


def test_without_namespaces_absolute_writes_are_not_prevented(tmp_path):
    # The documented limit: without a mount namespace the program writes wherever its user can.
    target = tmp_path / "written.txt"
    outcome = sandbox("neither").run(f"open({str(target)!r}, 'w').write('x')")
    assert outcome.status == "passed" and target.read_text() == "x"


@pytest.fixture
def usr1():
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: received.append(True))
    yield received
    signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize(
    "config", ["default", "bwrap-only", "namespaces", "namespaces-only", "seccomp-only"]
)
def test_signals_cannot_reach_the_harness(config, usr1, available):
    need(available, config, *({"seccomp-only": ["seccomp"]}.get(config, ["pidns"])))
    program = textwrap.dedent(
        f"""
        import os, signal
        try:
            os.kill({os.getpid()}, signal.SIGUSR1)
        finally:
            os.kill(os.getppid(), signal.SIGKILL)
        """
    )
    outcome = sandbox(config).run(program)
    time.sleep(0.1)
    assert usr1 == []
    # Without seccomp the program can kill its parent, the sandbox's bootstrap (under the
    # fallback, kill(getppid() = 0) signals its own process group): this run crashes, or fails
    # when the program's error reaches the tests before it dies with its bootstrap.
    expected = {"failed", "crashed"} if "seccomp" in CONFIGS[config] else {"failed"}
    assert outcome.status in expected, outcome


def test_the_signal_check_sees_a_real_signal(usr1):
    # Without namespaces and seccomp the program can signal the harness (a documented limit),
    # which also shows the check above can fail.
    sandbox("neither").run(f"import os, signal\nos.kill({os.getpid()}, signal.SIGUSR1)")
    time.sleep(0.1)
    assert usr1 == [True]


@linux_only
def test_sandbox_dies_with_the_harness(tmp_path):
    marker = "73.0303"
    harness = tmp_path / "harness.py"
    confinement = sandbox().confinement
    harness.write_text(
        "from rlhf_eval.sandbox import Sandbox, Limits\n"
        f"Sandbox(Limits(timeout_s=60), confinement={confinement!r}).run("
        f'\'import os\\nos.execv("/bin/sleep", ["sleep", "{marker}"])\')\n'
    )
    process = subprocess.Popen([sys.executable, str(harness)], cwd=Path.cwd())
    try:
        deadline = time.monotonic() + 20
        while not sleepers(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sleepers(marker), "the sandboxed program never started"
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 5
    while sleepers(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers(marker) == []


def test_a_sandbox_that_cannot_start_is_an_error_not_a_failure(tmp_path, monkeypatch):
    outcome = Sandbox(LIMITS, python=str(tmp_path / "no-python")).run("pass")
    assert outcome.status == "error"
    assert "cannot start" in outcome.message
    # Without Bubblewrap the default sandbox does not fall back: every run is an error.
    monkeypatch.setenv("PATH", str(tmp_path))
    outcome = Sandbox(LIMITS).run("pass")
    assert outcome.status == "error"
    assert "bwrap" in outcome.message and "apt-get install bubblewrap" in outcome.message


def test_run_many_keeps_order_and_reports_isolation(available):
    programs = ["pass", "raise ValueError('x')", "while True:\n    pass", "pass"]
    outcomes = sandbox(timeout_s=1.0).run_many(programs)
    assert [o.status for o in outcomes] == ["passed", "failed", "timed_out", "passed"]
    assert set(outcomes[0].isolation) == available["default"]
    if sys.platform == "linux" and set(FULL) <= available["default"]:
        assert outcomes[0].notes == ()


# ---- checks: the tests run in their own process against plain data ------------------------

CHECKS = {
    "a builtin exception is raised as its class in the tests": (
        "def f(x):\n    raise ValueError('bad ' + x)\n",
        "try:\n    f('x')\nexcept ValueError as error:\n    assert str(error) == 'bad x'\n"
        "else:\n    raise AssertionError('no error')\n",
        "passed",
        "",
    ),
    "a custom exception is raised as its nearest builtin class": (
        "class Mine(LookupError):\n    pass\ndef f():\n    raise Mine('m')\n",
        "f()\n",
        "failed",
        "Mine: m",
    ),
    "StopIteration cannot end a test's map() early": (
        "def f(x):\n    raise StopIteration\n",
        "assert all(map(f, [1, 2]))\n",
        "failed",
        "StopIteration",
    ),
    "SystemExit in a call is not an Exception the tests can catch": (
        "def f():\n    raise SystemExit(0)\n",
        "try:\n    f()\nexcept Exception:\n    pass\n",
        "failed",
        "SystemExit: 0",
    ),
    "a fault swallowed by a bare except still fails": (
        "class Odd:\n    pass\ndef f():\n    return Odd()\n",
        "try:\n    f()\nexcept:\n    pass\n",
        "failed",
        "not plain data",
    ),
    "a value of the candidate's crosses back and forth": (
        "def f(x=None):\n    if x is None:\n        x = []\n        for _ in range(60):\n"
        "            x = [x]\n    return x\n",
        "assert f(f()) == f()\n",
        "passed",
        "",
    ),
    "arguments the candidate mutates are not sent back": (
        "def f(xs):\n    xs.append(1)\n    return len(xs)\n",
        "xs = [0]\nassert f(xs) == 2 and xs == [0]\n",
        "passed",
        "",
    ),
    "types survive: tuple, set, dict, None, floats exactly": (
        "def f(t, s, d, n, x):\n    return (t, s, d, n, x, 0.1 + 0.2)\n",
        "assert f((1,), {2}, {'a': [3]}, None, 1e-300) == ((1,), {2}, {'a': [3]}, None, 1e-300, "
        "0.1 + 0.2)\nassert type(f((1,), set(), {}, None, 0.0)[0]) is tuple\n",
        "passed",
        "",
    ),
    "a value the tests cannot send is the sandbox's error, not a failure": (
        "def f(g):\n    return g(1)\n",
        "f(lambda x: x)\n",
        "error",
        "cannot send",
    ),
    "the problem's own broken setup is an error": (
        "def f():\n    return 1\n",
        "f()\n",
        "error",
        "the problem's own code fails",
    ),
    "a missing entry point fails": ("def g():\n    return 1\n", "f()\n", "failed", "NameError"),
    "the test process is not dumpable": (
        "def f():\n    return 1\n",
        "import ctypes\nassert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE\n",
        "passed",
        "",
    ),
}


def test_checks_decide_in_the_test_process():
    checks = [
        FunctionCheck(
            candidate, "f", tests, setup="raise RuntimeError('setup')\n" if "setup" in name else ""
        )
        for name, (candidate, tests, _, _) in CHECKS.items()
    ]
    outcomes = sandbox().check_many(checks)
    got = {name: (o.status, o.message) for name, o in zip(CHECKS, outcomes, strict=True)}
    for name, (_, _, status, fragment) in CHECKS.items():
        assert got[name][0] == status and fragment in got[name][1], (name, got[name])


@pytest.mark.parametrize("config", ["default", "bwrap-only"])
def test_the_candidate_cannot_inspect_its_bootstrap_or_see_the_tests_process(config, available):
    need(available, config, "bwrap-minimal-root")
    program = textwrap.dedent(
        """
        import os
        parent = os.getppid()
        for path in (f"/proc/{parent}/mem", f"/proc/{parent}/environ"):
            try:
                open(path, "rb").read(1)
            except PermissionError:
                pass
            else:
                raise AssertionError(path + " was readable")
        # Its status pipe, say: the numbers may be listed, but none of them opens.
        for fd in os.listdir(f"/proc/{parent}/fd"):
            try:
                open(f"/proc/{parent}/fd/{fd}", "wb")
            except PermissionError:
                pass
            else:
                raise AssertionError(f"the bootstrap's descriptor {fd} was opened")
        # Bubblewrap's init, the bootstrap and this process: nothing of the tests' sandbox.
        assert len([p for p in os.listdir("/proc") if p.isdigit()]) <= 3, os.listdir("/proc")
        """
    )
    outcome = sandbox(config).run(program)
    assert outcome.status == "passed", outcome

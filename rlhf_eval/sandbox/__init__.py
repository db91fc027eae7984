"""Run untrusted, model-written Python against trusted tests, and say how it ended.

A check (FunctionCheck) runs as two processes, each in its own sandbox:
  candidate  untrusted: runs the model's module (HumanEval: prompt + completion), then answers
             calls to its entry point over a pair of pipes: arguments in, a return value or an
             exception's class name and message out, all as plain data (inside/wire.py)
  verdict    trusted code only: runs the problem's setup (the prompt, for helpers such as
             HumanEval/32's `poly`) and its tests, with the entry point bound to a proxy of the
             candidate; it alone decides passed or failed, and tells the harness on a pipe the
             candidate does not hold
The harness (this process) takes `passed` from the test process's report only; how the two
processes ended decides the rest (timeouts, limits, crashes, a candidate that left early).

Why two processes: a verdict decided inside the candidate's interpreter is forgeable by
construction, because whatever trusted code can emit there (a report function, a nonce in
memory), the candidate's code can reach too (frames, gc, ctypes, monkeypatching). Here the
candidate holds no verdict and no tests (it cannot read them), and only data it sends can reach
the tests: new builtin objects decoded from JSON, so no forged `__eq__` ever runs there. Its
exceptions are raised there as their builtin class, except those that would stop a test's loop
early (StopIteration) and those that leave (SystemExit): the test process cannot catch them as
success. The candidate must answer a last message after the tests, so one that ended early
(`os._exit(0)`, `sys.exit(0)`, at import or inside a call) never passes.

Layers around each process, recorded in Outcome.isolation (the candidate's, plus
`verdict-process` when the tests ran in their own):
  bwrap-minimal-root  Bubblewrap (the default): a filesystem of read-only /usr and the
                interpreter's installation (sys.base_prefix), a fresh /proc and /dev, the
                sandbox's own code read-only, and a size-limited private tmpfs as the working
                directory. No /etc, no home, no host /tmp, no run, cache or project folder.
                New user (uid 1000, no capabilities), network, PID, IPC and UTS namespaces,
                its own session, killed with the harness
  netns         no network at all, not even loopback
  pidns         no other process is visible or reachable; when the sandbox ends, the kernel
                kills everything it left behind. The two processes are in different ones
  readonly-fs   (fallback only) the host's filesystem read-only, a private tmpfs to write
  rlimits       CPU seconds, address space, processes, file size, open files, no core files
  seccomp       (x86-64, arm64) no new processes (threads are allowed), no sockets, no
                signals to other processes, no ptrace, process_vm_readv/writev or io_uring
  socket-patch  only when neither netns nor seccomp is there: socket creation raises in Python
Each bootstrap (the parent that reports how its child ended) and the test process are not
dumpable: no /proc access to their memory or descriptors. Always: a fresh interpreter in
isolated mode (-I), cwd, HOME and TMPDIR in the private work directory, a minimal environment
(no proxies, no path of the run or the project), stdout discarded, stderr kept to a
size-limited file, and one wall-clock timeout that kills both processes.

Without Bubblewrap (not installed, or a kernel that forbids user namespaces) the `bwrap`
confinement does not fall back: every run is an `error`, and HumanEval refuses to build. The
explicit opt-in `namespaces` is the former sandbox (its own user, network, PID and mount
namespaces via unshare(2), everything read-only), which can READ every file the harness's user
can; `none` keeps rlimits and seccomp only.

Honest limits: this is not a VM. The kernel is shared (a kernel exploit escapes). Inside
Bubblewrap the candidate reads /usr and the interpreter's installation (site-packages
included), which hold no secrets on an ordinary machine; when the harness runs as root, the
sandbox's user is the host's root without capabilities, so root-owned files there with mode
0600 are readable. A pass means the candidate's function returned the right plain data for the
tests' arguments: it sees those arguments, so it can special-case them (as any HumanEval
solution can), and arguments it mutates are not sent back. Return values other than plain data
(a generator, a numpy scalar that is no int or float subclass) fail. A candidate cannot make
its run an `error` (which drops a problem from the metric): errors come only from the sandbox
and the problem's own code. Under `namespaces` the candidate reads the whole machine, and
where a private /proc cannot be mounted (noted) it sees the host's processes and can open the
memory of its user's dumpable ones, the harness's included; under `none` it runs as the
harness's user in the harness's namespaces, and as root that reaches every process's memory.
Verdicts there are only as trustworthy as the code. `Sandbox.run(program)` only says that a
program ran to its end, which the program itself can forge. Run untrusted models' code on a
machine you can lose.

The code under `inside/` runs in the sandbox and imports only the standard library.
"""

from rlhf_eval.sandbox.harness import FunctionCheck, Sandbox, SandboxSettings
from rlhf_eval.sandbox.launch import Confinement, bwrap_problem
from rlhf_eval.sandbox.outcome import Limits, Outcome, Status

__all__ = [
    "Confinement",
    "FunctionCheck",
    "Limits",
    "Outcome",
    "Sandbox",
    "SandboxSettings",
    "Status",
    "bwrap_problem",
]

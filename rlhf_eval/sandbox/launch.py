"""Start one confined process: in Bubblewrap's minimal root, or (opt-in fallback) in namespaces
of its own over the host's whole filesystem, or (last resort) with no namespaces at all."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rlhf_eval.sandbox.outcome import Limits

Confinement = Literal["bwrap", "namespaces", "none"]
"""`bwrap`: the default, a filesystem of /usr and the interpreter only. `namespaces`: today's
fallback (no Bubblewrap): the process's own user, network, PID and mount namespaces, with the
host's filesystem read-only but readable. `none`: rlimits and seccomp only (where even user
namespaces are forbidden)."""

INSIDE = Path(__file__).parent / "inside"
CODE_INSIDE, WORK_INSIDE = "/sandbox", "/work"
INNER_ID = "1000"
"""The user and group id inside Bubblewrap's user namespace: not 0, no capabilities."""
BOOT = "import sys; sys.path.insert(0, {code!r}); from inside.main import main; main()"
BWRAP_LAYERS = ["bwrap-minimal-root", "netns", "pidns"]
INSTALL_HINT = "apt-get install bubblewrap"


@dataclass(frozen=True)
class Confined:
    """A started process: its Popen, the read end of its bootstrap's status pipe, its stderr."""

    process: subprocess.Popen
    status: int
    stderr: Path


def copy_inside(folder: Path) -> Path:
    """The code that runs inside, copied so that no sandbox ever sees the project's tree."""
    code = folder / "code"
    shutil.copytree(INSIDE, code / "inside", ignore=shutil.ignore_patterns("__pycache__"))
    return code


def interpreter(python: str) -> tuple[str, str]:
    """The interpreter's real path and the installation it needs (sys.base_prefix when it is
    this interpreter's, else the folder above its bin/)."""
    real = os.path.realpath(python)
    for prefix in (sys.base_prefix, sys.prefix):
        root = os.path.realpath(prefix)
        if real.startswith(root.rstrip("/") + "/"):
            return real, root
    return real, str(Path(real).parent.parent)


def bwrap_arguments(python: str, code: str, work_mb: int) -> list[str]:
    """Bubblewrap's command line up to the program: read-only /usr and the interpreter's
    installation, fresh /proc and /dev, the inside code read-only, a size-limited tmpfs work
    directory; no /etc, no home, no host /tmp, no run or cache folder, no project."""
    _, prefix = interpreter(python)
    arguments = ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
    arguments += ["--cap-drop", "ALL", "--uid", INNER_ID, "--gid", INNER_ID]
    arguments += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):  # merged /usr: the usual symlinks
            arguments += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            arguments += ["--ro-bind", top, top]
    if not (prefix + "/").startswith("/usr/"):
        arguments += ["--ro-bind", prefix, prefix]
    arguments += ["--proc", "/proc", "--dev", "/dev", "--ro-bind", code, CODE_INSIDE]
    arguments += ["--size", str(work_mb * 1024 * 1024), "--perms", "0700", "--tmpfs", WORK_INSIDE]
    return [*arguments, "--remount-ro", "/", "--chdir", WORK_INSIDE, "--"]


def bwrap_problem(python: str = sys.executable) -> str | None:
    """Why the default sandbox cannot run here, or None when it can."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "Bubblewrap (`bwrap`) is not installed"
    return _probe(bwrap, os.path.realpath(python))


@functools.lru_cache(maxsize=8)
def _probe(bwrap: str, python: str) -> str | None:
    """One real start (an empty program); cached per bwrap and interpreter, as it is a fact
    about this machine."""
    with tempfile.TemporaryDirectory(prefix="rlhf-eval-bwrap-probe-") as folder:
        command = [bwrap, *bwrap_arguments(python, folder, 1), python, "-I", "-S", "-c", "pass"]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=60, env=_environment("/")
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"`bwrap` cannot start a sandbox here ({error})"
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        return f"`bwrap` cannot start a sandbox here ({detail})"
    return None


def start(
    role: str,
    folder: Path,
    config: dict,
    channel_fds: tuple[int, ...],
    confinement: Confinement,
    python: str,
    limits: Limits,
) -> Confined:
    """Start `role`'s bootstrap with `config` on its stdin and `channel_fds` inherited.
    OSError when the process cannot start at all."""
    real_python, _ = interpreter(python)
    code = folder / "code"
    if confinement == "bwrap":
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise OSError(f"Bubblewrap (`bwrap`) is not installed; {INSTALL_HINT}")
        work, layers = WORK_INSIDE, BWRAP_LAYERS
        boot = [real_python, "-I", "-S", "-B", "-c", BOOT.format(code=CODE_INSIDE)]
        command = [bwrap, *bwrap_arguments(python, str(code), limits.work_dir_mb), *boot]
    else:
        work, layers = str(folder / f"{role}-work"), []
        os.mkdir(work, 0o700)
        command = [python, "-I", "-S", "-B", "-c", BOOT.format(code=str(code))]
    status_r, status_w = os.pipe()
    config = {
        **config,
        "role": role,
        "status_fd": status_w,
        "channel_fds": list(channel_fds),
        "work": work,
        "parent_pid": None if confinement == "bwrap" else os.getpid(),
        "namespaces": confinement == "namespaces",
        "layers": layers,
        "limits": vars(limits),
    }
    stderr = folder / f"{role}.stderr"
    try:
        with open(stderr, "wb") as sink:
            process = subprocess.Popen(
                command,
                cwd=work if confinement != "bwrap" else folder,
                env=_environment(work),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=sink,
                pass_fds=(status_w, *channel_fds),
                start_new_session=True,
            )
    except OSError:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
    try:
        process.stdin.write(json.dumps(config).encode() + b"\n")
        process.stdin.close()
    except OSError:
        pass  # the process is already gone; its status says why
    return Confined(process, status_r, stderr)


def _environment(work: str) -> dict[str, str]:
    """A minimal environment: no proxies, no paths of the run or the project."""
    return {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8"}

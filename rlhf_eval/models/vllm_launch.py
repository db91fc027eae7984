"""How a vLLM engine is started and watched: its environment, its share of the node's GPUs or
CPU cores when each process of a data-parallel run (torchrun, accelerate) holds its own engine,
its extra arguments checked, and a watch for its core process dying."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rlhf_eval.errors import ModelLoadError


@dataclass(frozen=True)
class EngineOptions:
    """What the suite says about the engine (a `backend: vllm` entry's engine fields)."""

    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    enforce_eager: bool = False
    enable_prefix_caching: bool = True
    engine_kwargs: tuple[tuple[str, Any], ...] = ()
    """Passed to `vllm.LLM` as they are (after the options above)."""


@dataclass(frozen=True)
class EngineProcess:
    """This process's place in a data-parallel run (1 of 1 when there is none)."""

    local_rank: int = 0
    local_world_size: int = 1
    world_size: int = 1

    @classmethod
    def from_environment(cls) -> EngineProcess:
        """From the variables torchrun (and accelerate launch) set."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
            world_size=world,
        )

    @property
    def in_process(self) -> bool:
        """Whether the engine core runs inside this process (vLLM's
        VLLM_ENABLE_V1_MULTIPROCESSING=0), not in a child process of its own."""
        return self.world_size == 1 and os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"


def prepare_environment(process: EngineProcess, options: EngineOptions) -> None:
    """Set what vLLM reads from the environment before its engine starts.

    - No usage statistics are sent (vLLM sends them unless told not to), and, unless the
      engine runs on Ray across nodes, vLLM does not look up an outside address for itself.
    - In a data-parallel run this process belongs to rlhf-eval's torch.distributed group, so
      the engine core runs in a process of its own (a one-process engine here would join that
      group); it gets this process's share of the node: GPUs local_rank * (tp * pp) onwards, or
      on a CPU an equal share of the cores (unless VLLM_CPU_OMP_THREADS_BIND says otherwise).
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    if dict(options.engine_kwargs).get("distributed_executor_backend") != "ray":
        os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
    if process.world_size == 1:
        return
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1"
    per_engine = options.tensor_parallel_size * options.pipeline_parallel_size
    import torch

    if torch.cuda.is_available():
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(
            _my_share(_visible_gpus(torch.cuda.device_count()), process, per_engine, "GPUs")
        )
    elif "VLLM_CPU_OMP_THREADS_BIND" not in os.environ and per_engine == 1:
        cores = [str(c) for c in sorted(os.sched_getaffinity(0))]
        share = max(1, len(cores) // process.local_world_size)
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(
            _my_share(cores, process, share, "CPU cores")
        )


def _visible_gpus(count: int) -> list[str]:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [g.strip() for g in listed.split(",") if g.strip()]
    return [str(i) for i in range(count)]


def _my_share(devices: list[str], process: EngineProcess, per_engine: int, what: str) -> list[str]:
    start = process.local_rank * per_engine
    mine = devices[start : start + per_engine]
    if len(mine) < per_engine:
        raise ModelLoadError(
            f"process {process.local_rank} of {process.local_world_size} on this node needs "
            f"{per_engine} {what} for its vLLM engine (tensor_parallel_size x "
            f"pipeline_parallel_size), but the node has {len(devices)}. Fix: start fewer "
            "processes per node (--nproc_per_node) or lower the parallel sizes."
        )
    return mine


def check_engine_kwargs(name: str, extra: dict[str, Any]) -> None:
    """Unknown `engine_kwargs` are refused before the engine loads, with the nearest names."""
    from vllm import LLM
    from vllm.engine.arg_utils import EngineArgs

    known = {f.name for f in dataclasses.fields(EngineArgs)}
    known |= set(inspect.signature(LLM.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(extra) - known)
    if unknown:
        hints = [difflib.get_close_matches(key, known, n=1) for key in unknown]
        shown = ", ".join(
            f"'{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
            for key, hint in zip(unknown, hints, strict=True)
        )
        raise ModelLoadError(
            f"model '{name}': `engine_kwargs` names {shown}, not an argument of vLLM's engine. "
            "Fix: use the names of vllm.EngineArgs (`python -m vllm.entrypoints.openai."
            "api_server --help` lists them with dashes)."
        )


@contextmanager
def woken_on_engine_death(llm) -> Iterator[None]:
    """While the engine runs: if its core process dies, wake the waiting call with vLLM's
    EngineDeadError.

    vLLM 0.32's offline client notices a dead engine-core process (its monitor sets
    `engine_dead` and shuts the client down) but leaves `LLM.generate` waiting for outputs
    forever. This thread puts the error where that call waits. Without those internals (another
    vLLM version) it does nothing.
    """
    client = getattr(llm.llm_engine, "engine_core", None)
    resources = getattr(client, "resources", None)
    outputs = getattr(client, "outputs_queue", None)
    if resources is None or outputs is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.5):
            if getattr(resources, "engine_dead", False):
                from vllm.v1.engine.exceptions import EngineDeadError

                outputs.put_nowait(EngineDeadError())
                return

    threading.Thread(target=watch, daemon=True, name="rlhf-eval-engine-watch").start()
    try:
        yield
    finally:
        finished.set()

"""Data-parallel runs: the processes `torchrun` or `accelerate launch` start split the work.

Each process evaluates every `world_size`-th pending document of each task (the same split in
every process, computed from the same files), appends its samples to the run's shared sample
files under a lock, and process 0 alone writes the manifest and the results. Results do not
depend on which process scored which document: aggregation sorts samples into document order
first, so a 2-process run gives the same results.json numbers as a 1-process run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

BARRIER_TIMEOUT = timedelta(hours=6)
"""How long a process waits for the others (one model on one shard can take hours)."""


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, items: list) -> list:
        """This process's share: every world_size-th item, starting at its rank."""
        return items[self.rank :: self.world_size]

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value`, in rank order (just [value] in a single process)."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def device(self, requested: str) -> str:
        """A model's device here: with GPUs, `auto` means this process's own GPU."""
        if requested != "auto" or not self.distributed:
            return requested
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"


def start_processes() -> Processes:
    """Join the process group the launcher set up (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*);
    a plain single process when there is none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Processes()
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend, timeout=BARRIER_TIMEOUT)
    return Processes(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def stop_processes(processes: Processes) -> None:
    if processes.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

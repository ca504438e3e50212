"""Several processes (torchrun) splitting the images of each stage.

Under `torchrun --nproc-per-node K -m precompute run ...` every rank takes the chunks
i with i % K == rank, writes them as part files, and rank 0 merges them once a barrier says all
are done. Ranks share the cache directory (one machine, or a shared file system). Only rank 0
writes the manifest. Without torchrun this is a one-process no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    """This process's place among the ranks."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, chunk: int) -> bool:
        """Whether this rank computes chunk number `chunk`."""
        return chunk % self.world_size == self.rank

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def device_for(self, requested: str) -> str:
        """With several GPUs on one machine, rank r uses cuda:local_rank."""
        if self.world_size > 1 and requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return requested

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed() -> DistContext:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else a single rank.

    Coordination uses the gloo backend (only barriers cross processes: the data goes through
    the cache directory), so it works on CPU-only machines and beside NCCL-less GPUs alike.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=timedelta(hours=6))
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

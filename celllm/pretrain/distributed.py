"""Data parallelism for pretraining through torch.distributed.

Every rank builds the same global batch and its views, embeds its own shard,
and the contrastive loss is taken over the embeddings gathered from all
ranks, so `--batch-size` is the global batch and the result matches one
process with that batch. Gradients are summed across ranks after the step.
Launch with `torchrun --nproc-per-node N -m celllm pretrain ...`.
"""

from __future__ import annotations

import os
import signal
import sys

import torch
import torch.distributed as dist


class SingleProcess:
    """The trivial group: one process, nothing to communicate."""

    rank, world_size = 0, 1

    def gather(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        return value

    def sum_gradients(self, model: torch.nn.Module) -> None:
        pass

    def barrier(self) -> None:
        pass


class DataParallelGroup(SingleProcess):
    """All ranks of the default torch.distributed process group."""

    def __init__(self):
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    def gather(self, z: torch.Tensor) -> torch.Tensor:
        """Every rank's embeddings, in rank order (no gradient flows through)."""
        parts = [torch.empty_like(z) for _ in range(self.world_size)]
        dist.all_gather(parts, z.contiguous())
        return torch.cat(parts)

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        value = value.clone()
        dist.all_reduce(value)
        return value

    def sum_gradients(self, model: torch.nn.Module) -> None:
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])  # one collective instead of one per tensor
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def barrier(self) -> None:
        dist.barrier()


def group_from_environment() -> SingleProcess:
    """Join the process group torchrun describes in the environment, if any."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return SingleProcess()
    if "TORCHELASTIC_RUN_ID" in os.environ:
        die_with_parent()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return DataParallelGroup()


def die_with_parent() -> None:
    """Have Linux kill this rank when its torchrun dies. torchrun starts each rank in a session of its own, so
    a torchrun killed outright (a job killed, a power cut in a test) would leave its ranks training on, and
    writing the checkpoint that the resumed job writes too."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def device_for(group: SingleProcess) -> str:
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', group.rank))}"
    return "cpu"

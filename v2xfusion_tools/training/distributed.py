"""One or many training processes: the device of this process, torchrun's process group, reductions.

A plain `v2xfusion train` is one process on the CPU or one GPU. Started by torchrun (WORLD_SIZE > 1 in
the environment) each process joins the group: NCCL on GPUs (one per process, LOCAL_RANK), gloo on CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from v2xfusion_perception.errors import V2XError

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ProcessContext:
    """rank / world_size: this process among the training processes; device: where it computes."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """The process that writes checkpoints, logs and validation results."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def choose_device(device: str, local_rank: int = 0) -> torch.device:
    """The torch device for --device (auto: the GPU of local_rank when torch sees one, else the CPU)."""
    if device not in DEVICES:
        raise V2XError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise V2XError("--device cuda: no CUDA GPU is visible to torch (torch.cuda.is_available() is False)")
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if local_rank >= torch.cuda.device_count():
            raise V2XError(f"LOCAL_RANK {local_rank}: only {torch.cuda.device_count()} GPU(s) visible")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_processes(device: str = "auto") -> ProcessContext:
    """This process's context; joins torchrun's group when started by torchrun with several processes."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = choose_device(device, local_rank if world_size > 1 else 0)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return ProcessContext(rank=rank, world_size=world_size, device=chosen)


def close_processes(context: ProcessContext) -> None:
    """Leave the process group (a no-op for one process)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: ProcessContext) -> None:
    if context.distributed:
        dist.barrier()


def mean_over_processes(values: dict[str, float], context: ProcessContext) -> dict[str, float]:
    """The mean of each value over the processes (every process gets the same dict, same key order)."""
    if not context.distributed:
        return dict(values)
    names = sorted(values)
    tensor = torch.tensor([values[name] for name in names], dtype=torch.float64,
                          device=context.device if context.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    return {name: float(value) / context.world_size for name, value in zip(names, tensor.tolist())}


"""Training on several processes with PyTorch's own engine: torchrun + DDP.

`torchrun --nproc-per-node N -m charrnn train ...` starts N copies of charrnn
with RANK / WORLD_SIZE / LOCAL_RANK in their environment. Each copy joins one
process group (NCCL on CUDA, gloo on CPU), wraps the model in
DistributedDataParallel, trains on its own streams of the corpus and keeps its
own carried hidden state. Rank 0 alone writes checkpoints and metrics and talks
to the terminal. Nothing here runs in a single process run.
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


SINGLE = Dist()


def is_peer_error(e: BaseException) -> bool:
    """Did a collective fail because another process of the run has gone?"""
    if isinstance(e, dist.DistError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(s in text for s in ("Connection closed by peer", "Connection reset by peer", "NCCL error"))


def launched() -> bool:
    """Started by torchrun (or another launcher that sets the same variables)?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_from_env() -> int:
    return int(os.environ.get("RANK", "0"))


def init(device: str) -> Dist:
    """Join the process group torchrun set up; SINGLE when not launched that way."""
    if not launched():
        return SINGLE
    if dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "mps":
        raise ConfigError("distributed training runs on CUDA (NCCL) or CPU (gloo); use --device cuda or cpu.")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA GPU is available here; use --device cpu for gloo.")
        check_gpus(int(os.environ.get("LOCAL_WORLD_SIZE", local + 1)), torch.cuda.device_count())
        torch.cuda.set_device(local)
    # A generous timeout: a rank that dies is noticed by torchrun, which ends the others.
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=10))
    return Dist(dist.get_rank(), dist.get_world_size(), local)


def check_gpus(procs: int, gpus: int) -> None:
    """One process a GPU: more processes on this machine than GPUs is a one-line error
    (every rank raises it, rank 0 prints it) instead of rank N's 'invalid device ordinal'."""
    if procs > gpus:
        raise ConfigError(
            f"torchrun started {procs} processes on this machine but it has {gpus} CUDA GPU{'s' if gpus != 1 else ''}: "
            f"run --nproc-per-node {gpus}, or add --device cpu to train on the CPU with gloo."
        )


def shutdown(clean: bool = True) -> None:
    """Leave the process group; after a clean run, wait for every rank first (gloo
    aborts a process that tears down while a peer still talks to it)."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # DDP's reducer must go before its process group does
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def sum_(d: Dist, values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all ranks (in place, and returned)."""
    if d.active:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def any_(d: Dist, flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on any: ranks must agree to stop."""
    if not d.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_rows(d: Dist, t: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Concatenate every rank's tensor along `dim` (rank order), on every rank."""
    if not d.active:
        return t
    parts = [torch.empty_like(t) for _ in range(d.world)]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=dim)


def wrap(model: torch.nn.Module, d: Dist, device: torch.device) -> torch.nn.Module:
    if not d.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def broadcast(d: Dist, obj):  # type: ignore[no-untyped-def]
    """Rank 0's value of a small picklable object, on every rank."""
    if not d.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]

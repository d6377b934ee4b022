"""Multi-process training: what ``torchrun`` + DistributedDataParallel need, in one place.

``torchrun --nproc-per-node N -m soundgen codec train ...`` starts N processes and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each. The training loops call :func:`session`, which
initialises the default process group from that environment (gloo on CPU, NCCL on CUDA with one GPU per local
rank) and tears it down at the end; outside torchrun it does nothing and every helper here is a no-op
(rank 0 of a world of 1), so single-process training is unchanged.

Every rank trains on its own batches (:func:`rank_seed`); gradients are averaged by DDP
(:func:`wrap_ddp`), codebook statistics by the quantizer (:func:`all_reduce_sum`, :func:`broadcast`), and only
rank 0 (:func:`is_main`) writes checkpoints, logs and progress bars.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

_ENV = ("RANK", "WORLD_SIZE")


def launched() -> bool:
    """Whether this process was started by torchrun (``RANK`` and ``WORLD_SIZE`` are set)."""
    return all(name in os.environ for name in _ENV)


def is_distributed() -> bool:
    """Whether a default process group is initialised (in this process)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return torch.distributed.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``; 0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Whether this process writes checkpoints, logs and progress bars (rank 0, or the only process)."""
    return rank() == 0


def device_for_rank(device: torch.device) -> torch.device:
    """Under torchrun, ``cuda`` without an index becomes ``cuda:LOCAL_RANK`` (one GPU per local rank)."""
    if launched() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank())
    return device


def init(device: torch.device) -> bool:
    """Initialise the default process group from torchrun's environment.

    gloo when ``device`` is a CPU, NCCL when it is a GPU (which becomes this process's current device).

    Returns:
        True when this call initialised the group (the caller then owns it: :func:`cleanup`); False outside
        torchrun or when a group is already initialised (e.g. by a test).
    """
    if not launched() or is_distributed():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl", device_id=device)
    else:
        torch.distributed.init_process_group("gloo")
    return True


def cleanup() -> None:
    """Destroy the default process group (a no-op when there is none)."""
    if is_distributed():
        torch.distributed.destroy_process_group()


@contextlib.contextmanager
def session(device: torch.device) -> Iterator[None]:
    """Run the body inside a process group when started by torchrun; destroy the group afterwards if this
    session created it. Outside torchrun it does nothing."""
    started = init(device)
    try:
        yield
    finally:
        if started:
            cleanup()


def barrier() -> None:
    """Wait for every rank (a no-op outside a process group)."""
    if is_distributed():
        torch.distributed.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks in place and return it (unchanged outside a process group)."""
    if is_distributed():
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
    return t


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``t`` on every rank with rank ``src``'s ``t`` (in place) and return it."""
    if is_distributed():
        torch.distributed.broadcast(t, src=src)
    return t


def rank_seed(seed: int, step: int, rank_: int | None = None) -> int:
    """The RNG seed of ``rank_`` (default: this rank) at ``step``: batches depend on (seed, step, rank) only.

    Rank 0 keeps the single-process seed ``seed + step``, so a run outside torchrun is unchanged.
    """
    r = rank() if rank_ is None else rank_
    if r == 0:
        return seed + step
    return int(np.random.SeedSequence([seed, step, r]).generate_state(1, np.uint32)[0])


def wrap_ddp(module: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``module`` in DistributedDataParallel when a process group is initialised; ``module`` itself otherwise.

    Buffers are synchronised at construction but not on every forward: the only trained buffers, the
    codebooks, are kept identical by the quantizer itself. Modules without trainable parameters are returned
    unwrapped.
    """
    if not is_distributed() or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    # torch >= 2.13 names the per-forward buffer sync ``forward_sync_buffers`` (``broadcast_buffers`` warns).
    no_sync = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    options: dict[str, Any] = {"forward_sync_buffers": False} if no_sync else {"broadcast_buffers": False}
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters, **options)

"""Data-parallel training under ``torchrun`` (one process per GPU, or per CPU worker with gloo).

Launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), :func:`init_distributed`
joins the process group (``nccl`` for CUDA, ``gloo`` for CPU) and every helper here talks to
the other processes. Otherwise the context is a single process (``world_size`` 1) and every
helper is a no-op, so plain ``python -m magnet train`` behaves exactly as before.

What is sharded: each global BPR batch of ``batch_size`` pairs, split into ``world_size``
equal contiguous slices of one permutation shared by all ranks (see :func:`pad_to_multiple`
and :func:`shard`). Gradients are averaged by :class:`~torch.nn.parallel.DistributedDataParallel`.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .errors import ConfigError

TIMEOUT = timedelta(minutes=30)  # rank 0 evaluates and writes while the others wait


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run. ``owns_group``: this context created the process
    group and :func:`cleanup` destroys it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs, evaluates and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def launch_env() -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) from a ``torchrun`` launch, or None outside one (or when
    it started a single process)."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    world_size, rank = _env_int("WORLD_SIZE"), _env_int("RANK")
    local_rank = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    if world_size <= 1:
        return None
    if not 0 <= rank < world_size:
        raise ConfigError(f"RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size})")
    return rank, world_size, local_rank


def is_main_process() -> bool:
    """True outside ``torchrun`` and on its rank 0 (the process that reports and writes)."""
    env = launch_env()
    return env is None or env[0] == 0


def _wants_cuda(device_name: str) -> bool:
    if device_name == "auto":
        return torch.cuda.is_available()
    if device_name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but no CUDA device is available")
        return True
    if device_name != "cpu":
        raise ConfigError(f"device {device_name!r} cannot be used for distributed training (cpu or cuda)")
    return False


def init_distributed(device_name: str) -> DistContext:
    """Join the ``torchrun`` process group, or return a single-process context.

    ``device_name`` is the run's device (auto/cpu/cuda): CUDA runs use ``nccl`` and device
    ``cuda:<LOCAL_RANK>``, CPU runs ``gloo``. An already initialised group is reused (and left
    alone by :func:`cleanup`)."""
    env = launch_env()
    if env is None:
        return DistContext()
    rank, world_size, local_rank = env
    if _wants_cuda(device_name):
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA "
                              "device(s) are visible; start at most that many processes per node")
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, timeout=TIMEOUT)
    elif dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise ConfigError("an initialised process group disagrees with RANK/WORLD_SIZE")
    return DistContext(rank, world_size, local_rank, device, backend if owns else dist.get_backend(), owns)


def pad_to_multiple(indices: torch.Tensor, world_size: int) -> torch.Tensor:
    """Repeat the first entries of ``indices`` [n] so its length is a multiple of
    ``world_size`` → [n'] (n' ≥ n), as :class:`~torch.utils.data.DistributedSampler` does."""
    extra = (-len(indices)) % world_size
    if extra == 0:
        return indices
    reps = -(-extra // max(len(indices), 1))
    return torch.cat([indices, indices.repeat(reps)[:extra]])


def shard(indices: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's contiguous slice of ``indices`` [n] → [n / world_size].

    ``n`` must be divisible by ``world_size`` so that all shards are equal (then the mean of
    per-rank means is the mean over the whole batch)."""
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is outside 0..{world_size - 1}")
    if len(indices) % world_size:
        raise ConfigError(f"{len(indices)} indices cannot be split evenly over {world_size} processes")
    size = len(indices) // world_size
    return indices[rank * size:(rank + 1) * size]


def check_divisible_batch(batch_size: int, world_size: int) -> None:
    """Each global batch must split into equal per-rank shards."""
    if batch_size % world_size:
        raise ConfigError(f"train.batch_size {batch_size} is not divisible by the {world_size} "
                          "processes of this launch (WORLD_SIZE); pick a multiple")


def rank_seed(seed: int, rank: int, epoch: int, stream: int = 0) -> int:
    """Seed of random stream ``stream`` (e.g. 0 negatives, 1 logit noise) of ``rank`` in ``epoch``:
    distinct per rank, and a function of the epoch so a resumed run draws the same numbers."""
    return int(np.random.SeedSequence([seed, rank, epoch, stream]).generate_state(1)[0])


def all_reduce_mean(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean over ranks of ``values`` (any shape, floating); the input itself when single-process."""
    if not ctx.enabled:
        return values
    out = values.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / ctx.world_size


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (picklable objects, e.g. a metrics dict)."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.rank == src else None]
    dist.broadcast_object_list(box, src=src, device=ctx.device if ctx.backend == "nccl" else None)
    return box[0]


def barrier(ctx: DistContext) -> None:
    """Wait until every rank gets here (no-op when single-process)."""
    if not ctx.enabled:
        return
    if ctx.backend == "nccl":
        dist.barrier(device_ids=[ctx.local_rank])
    else:
        dist.barrier()


def wrap_ddp(module: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """``module`` wrapped in DistributedDataParallel (rank 0's weights are broadcast to all), or
    ``module`` itself when single-process. Buffers are not re-broadcast on every forward."""
    if not ctx.enabled:
        return module
    device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
    ddp = torch.nn.parallel.DistributedDataParallel
    # Newer torch renamed broadcast_buffers (buffers are identical at init here either way).
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
               else {"broadcast_buffers": False})
    return ddp(module, device_ids=device_ids, **no_sync)


def cleanup(ctx: DistContext) -> None:
    """Destroy the process group if ``ctx`` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["DistContext", "all_reduce_mean", "barrier", "broadcast_object", "check_divisible_batch", "cleanup",
           "init_distributed", "is_main_process", "launch_env", "pad_to_multiple", "rank_seed", "shard", "wrap_ddp"]

"""Training past one process with PyTorch's own `torch.distributed` (DDP), started by torchrun.

`torchrun --standalone --nproc-per-node 2 -m movierec train ...` starts two processes with
WORLD_SIZE=2 and RANK/LOCAL_RANK 0 and 1 in their environment. A torch model's fit then
(with `RuntimeOptions.distributed` "auto" or True):

* joins the process group (gloo on the CPU, NCCL on CUDA, with a timeout so a rank that
  never arrives ends the run with an error instead of a hang; `MOVIEREC_DIST_TIMEOUT`
  seconds, default 300);
* trains on its shard of the training ratings: rows r with r % WORLD_SIZE == RANK, cut to
  the same length on every rank (at most WORLD_SIZE - 1 rows are left out) so that every
  rank runs the same number of optimiser steps (DDP's collectives must pair up);
* averages gradients across ranks (the network wrapped in `DistributedDataParallel`, or,
  for networks whose loss does not go through `forward`, an explicit all-reduce of the
  gradients after each backward) and averages each epoch's validation value, so early
  stopping takes the same decision on every rank;
* before training, checks that every rank read the same number of ratings and got a
  non-empty shard; otherwise every rank raises the same one-sentence error.

The front ends (the CLI) print and write from rank 0 only (`is_main_process`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Iterable

import numpy as np

from movierec.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    import torch

    from movierec.training.options import RuntimeOptions

#: seconds a collective waits for the other ranks before failing (env MOVIEREC_DIST_TIMEOUT)
DEFAULT_TIMEOUT_S = 300.0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"The environment variable {name} must be a whole number, got {value!r}.") from None


def world_size() -> int:
    """Processes in the run as torchrun set them (WORLD_SIZE; 1 when not under torchrun)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def rank() -> int:
    """This process's rank (RANK; 0 when not under torchrun)."""
    return _env_int("RANK", 0)


def launched() -> bool:
    """Whether this process is one of several started by torchrun."""
    return world_size() > 1


def is_main_process() -> bool:
    """Rank 0 (or a single process): the one that prints and writes."""
    return rank() == 0


def timeout_seconds() -> float:
    """How long a collective waits for the other ranks (env MOVIEREC_DIST_TIMEOUT, default 300 s)."""
    value = os.environ.get("MOVIEREC_DIST_TIMEOUT")
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise ConfigError(f"MOVIEREC_DIST_TIMEOUT must be a positive number of seconds, got {value!r}.")
    return seconds


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly one-process) training run.

    Attributes:
        world_size: processes training together (1: no distribution).
        rank: this process's rank, 0 .. world_size - 1.
        local_rank: its rank on this machine (the CUDA device it uses).
        backend: "gloo" or "nccl" when distributed, else None.
    """

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- data ------------------------------------------------------------------------
    def shard_rows(self, n: int) -> np.ndarray:
        """Rows (of n, in order) this rank trains on: r % world_size == rank, all ranks cut
        to n // world_size rows so they take the same number of steps. Shape (n // world,)."""
        if not self.active:
            return np.arange(n, dtype=np.int64)
        per_rank = n // self.world_size
        return np.arange(self.rank, per_rank * self.world_size, self.world_size, dtype=np.int64)

    def check_shards(self, n_total: int, n_shard: int, what: str = "ratings") -> None:
        """Raise the same sentence on every rank when the ranks read different data or a
        shard is empty (a collective: every rank must call it)."""
        if not self.active:
            return
        import torch
        import torch.distributed as dist

        lo = torch.tensor([n_total, n_shard], dtype=torch.int64)
        hi = torch.tensor([n_total], dtype=torch.int64)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        least, most, smallest = int(lo[0]), int(hi[0]), int(lo[1])
        if least != most:
            raise DatasetError(f"The {self.world_size} training processes read different data ({least:,} to {most:,} "
                               f"{what}); every rank must read the same ratings (is a data file missing on one "
                               f"machine?).")
        if smallest == 0:
            raise ConfigError(f"Only {least:,} {what} for {self.world_size} training processes: a rank would get "
                              f"none; start fewer torchrun processes or train on more data.")

    # -- collectives -----------------------------------------------------------------
    def mean(self, value: float) -> float:
        """The mean of `value` over the ranks (a collective); `value` itself when alone."""
        if not self.active:
            return float(value)
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Average the gradients of `parameters` over the ranks, one flat all-reduce (what
        DDP does, for networks whose loss does not go through `forward`)."""
        if not self.active:
            return
        import torch
        import torch.distributed as dist

        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        if any(g.is_sparse for g in grads):
            raise ConfigError("Distributed training of this model needs dense gradients; use a dense optimizer.")
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """`module` in DistributedDataParallel (itself when alone). Buffers are not
        re-broadcast on every forward: the networks' buffers are constants set at build."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        import inspect

        ids = [device.index] if device.type == "cuda" and device.index is not None else None
        # newer torch renames broadcast_buffers (buffers are still synced once, at wrap time)
        takes = inspect.signature(DistributedDataParallel.__init__).parameters
        no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in takes else {"broadcast_buffers": False}
        return DistributedDataParallel(module, device_ids=ids, **no_sync)

    def _collective_device(self) -> torch.device:
        import torch

        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


SINGLE = DistributedContext()


def shutdown(timeout_s: float = 30.0) -> None:
    """Leave the process group cleanly at the end of a command, success or failure.

    The ranks meet at a barrier first, so none closes its connections while another still
    uses them (gloo aborts a process whose peer vanished mid-exchange: SIGABRT instead of the
    command's exit code). A rank that never arrives (it failed alone) ends the wait after
    `timeout_s`. Does nothing when no group was joined (and never imports torch for that).
    """
    import sys

    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=timeout_s))
        else:
            dist.barrier()
    except Exception:  # a rank that failed alone: leave anyway
        pass
    try:
        dist.destroy_process_group()
    except Exception:
        pass


def context(runtime: RuntimeOptions, device: torch.device) -> DistributedContext:
    """The run this fit belongs to; joins torchrun's process group on first use.

    Args:
        runtime: the fit's runtime options (`distributed`: True, False or "auto").
        device: the training device (chooses NCCL for CUDA, gloo for the CPU).

    Raises:
        ConfigError: distributed=True without torchrun, or a process group that cannot start.
    """
    mode = runtime.distributed
    size = world_size()
    if mode is False or size <= 1:
        if mode is True:
            raise ConfigError("distributed=True needs several processes started by torchrun, e.g. "
                              "torchrun --standalone --nproc-per-node 2 -m movierec train ...; "
                              "use distributed='auto' to train alone otherwise.")
        return SINGLE
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_available():
        raise ConfigError("This torch build has no torch.distributed; install a torch with distributed support.")
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_seconds()))
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"Could not join the torchrun process group ({backend}): {exc}.") from None
    else:
        backend = dist.get_backend()
    return DistributedContext(world_size=dist.get_world_size(), rank=dist.get_rank(),
                              local_rank=_env_int("LOCAL_RANK", 0), backend=backend)


def training_device(device: torch.device) -> torch.device:
    """Under torchrun on a CUDA machine, the GPU of this process's LOCAL_RANK when `device`
    names no index; `device` otherwise."""
    import torch

    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", _env_int("LOCAL_RANK", 0) % max(torch.cuda.device_count(), 1))
    return device


__all__ = ["DistributedContext", "SINGLE", "context", "training_device", "world_size", "rank", "launched",
           "is_main_process", "timeout_seconds", "DEFAULT_TIMEOUT_S"]

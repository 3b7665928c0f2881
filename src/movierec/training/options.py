"""Runtime options shared by every PyTorch model, with one meaning each.

Every torch model (mf, mf-rank, neumf, autorec) takes the same four runtime parameters,
with the same names and defaults (`RUNTIME_DEFAULTS`):

* ``seed`` (42): seeds initialisation, shuffling, negative sampling and any internal
  hold-out; on the CPU the same seed gives bit-identical weights. On a GPU, scatter-add
  kernels (embedding gradients) sum in a varying order, so refits agree only up to
  float rounding (mf's u1 RMSE agreed with the CPU's to 4 decimals on an H200).
* ``device`` ("auto"): "auto" is the CUDA GPU when one is present, else the CPU; "cpu";
  "cuda" or "cuda:N" (a `ConfigError` sentence when that GPU is not there).
* ``num_threads`` (1): torch CPU threads while training, restored afterwards (even when
  training fails). Small models train fastest on one thread: OpenMP's synchronisation
  costs more than the parallel work saves. None (or 0) leaves torch's setting alone.
* ``progress`` (False): a tqdm bar on stderr that advances once per epoch, drawn only when
  nothing else listens to the epochs (the CLI shows its own bars and lines through
  `movierec.training.progress`). It only displays; results are the same with or without it.

Runtime options never change what a model learns on a given device, so they are not
part of any search space.
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used, so loading a saved model needs no torch
    import torch

from movierec.errors import ConfigError

#: names and defaults of the runtime parameters of every torch model
RUNTIME_DEFAULTS: dict[str, Any] = {"seed": 42, "device": "auto", "num_threads": 1, "progress": False}

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(device: str = "auto", cuda_devices: int | None = None) -> torch.device:
    """The torch device a `device` option names.

    Args:
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N".
        cuda_devices: how many CUDA GPUs there are; None asks torch (a parameter so the
            rule can be checked for machines with and without a GPU).

    Raises:
        ConfigError: for an unknown name, or a GPU this machine does not have.
    """
    if not isinstance(device, str) or not _DEVICE.match(device.strip().lower()):
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
    import torch

    device = device.strip().lower()
    if cuda_devices is None:
        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "auto":
        return torch.device("cuda" if cuda_devices > 0 else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if cuda_devices == 0:
        raise ConfigError(f"device={device!r} was asked for but this machine has no CUDA GPU; "
                          "use device='auto' or 'cpu'.")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= cuda_devices:
        raise ConfigError(f"device={device!r} was asked for but this machine has only {cuda_devices} CUDA "
                          f"GPU(s) (cuda:0 to cuda:{cuda_devices - 1}).")
    return torch.device(device)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch.Generator (CPU) for shuffling."""
    import torch

    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def check_runtime_options(seed: Any, device: Any, num_threads: Any, progress: Any) -> None:
    """Raise a ConfigError sentence for a runtime option out of range (see the module doc)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}.")
    resolve_device(device)
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer))
                                    or num_threads < 0):
        raise ConfigError(f"num_threads must be a whole number >= 1, or None to keep torch's setting; "
                          f"got {num_threads!r}.")
    if not isinstance(progress, (bool, np.bool_)):
        raise ConfigError(f"progress must be True or False, got {progress!r}.")


class torch_threads:
    """Context manager: torch ops run on `n` CPU threads inside, the previous setting after.

    The setting is restored even when the body raises. `None` or 0 leaves it alone.
    """

    def __init__(self, n: int | None):
        self.n = None if n is None or int(n) == 0 else max(1, int(n))
        self.previous: int | None = None

    def __enter__(self) -> "torch_threads":
        import torch

        if self.n is not None:
            self.previous = torch.get_num_threads()
            if self.previous != self.n:
                torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        if self.previous is not None and torch.get_num_threads() != self.previous:
            torch.set_num_threads(self.previous)


__all__ = ["RUNTIME_DEFAULTS", "resolve_device", "seed_everything", "check_runtime_options", "torch_threads"]

"""Runtime options of the PyTorch models: how a model trains, never what it learns.

`RuntimeOptions` is given at fit time (`model.fit(train, runtime=RuntimeOptions(...))`),
not to the constructor: the constructor takes hyperparameters only, so `get_params()`,
search spaces, tuned configs and bundles never hold a device or a thread count.

* ``seed`` (42): seeds initialisation, shuffling, negative sampling and any internal
  hold-out; on the CPU the same seed gives bit-identical weights. On a GPU, scatter-add
  kernels (embedding gradients) sum in a varying order, so refits agree only up to
  float rounding (mf's u1 RMSE agreed with the CPU's to 4 decimals on an H200).
* ``device`` ("auto"): "auto" is the CUDA GPU when one is present, else the CPU; "cpu";
  "cuda" or "cuda:N" (a `ConfigError` sentence when that GPU is not there). Under
  torchrun, "auto" on a CUDA machine is the GPU of the process's LOCAL_RANK.
* ``num_threads`` (1): torch CPU threads while training, restored afterwards (even when
  training fails). Small models train fastest on one thread: OpenMP's synchronisation
  costs more than the parallel work saves. None (or 0) leaves torch's setting alone.
* ``progress`` (False): a tqdm bar on stderr that advances once per epoch, drawn only when
  nothing else listens to the epochs (the CLI shows its own bars and lines through
  `movierec.training.progress`). It only displays; results are the same with or without it.
* ``distributed`` ("auto"): train with `torch.distributed` DDP when the process was
  started by torchrun (WORLD_SIZE > 1); True requires torchrun, False trains alone
  even under torchrun (see `movierec.training.distributed`).

Models that are not torch models take `runtime=` too and ignore it (their own seeds stay
hyperparameters, e.g. ALS's `random_state`).
"""

from __future__ import annotations

import random
import re
import warnings
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used, so loading a saved model needs no torch
    import torch

from movierec.errors import ConfigError

#: the keys older movierec versions kept among a torch model's hyperparameters (old bundles,
#: tuned configs and scripts may still carry them; see `without_runtime_params`)
LEGACY_RUNTIME_KEYS: tuple[str, ...] = ("seed", "device", "num_threads", "progress")

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


def check_runtime_options(seed: Any, device: Any, num_threads: Any, progress: Any,
                          distributed: Any = "auto") -> None:
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
    if distributed not in (True, False, "auto") or isinstance(distributed, np.bool_):
        raise ConfigError(f"distributed must be True, False or 'auto', got {distributed!r}.")


@dataclass(frozen=True)
class RuntimeOptions:
    """How a torch model trains (see the module doc); given to `Recommender.fit`.

    Attributes:
        seed: seed of initialisation, shuffling, sampling and internal hold-outs (>= 0).
        device: "auto", "cpu", "cuda" or "cuda:N".
        num_threads: torch CPU threads while training; None or 0 keeps torch's setting.
        progress: a tqdm bar per fit when no progress reporter is installed.
        distributed: True, False or "auto" (DDP when started by torchrun).
    """

    seed: int = 42
    device: str = "auto"
    num_threads: int | None = 1
    progress: bool = False
    distributed: bool | Literal["auto"] = "auto"

    def checked(self) -> "RuntimeOptions":
        """self, after raising a ConfigError sentence for an option out of range."""
        check_runtime_options(self.seed, self.device, self.num_threads, self.progress, self.distributed)
        return self

    def with_seed(self, seed: int | None) -> "RuntimeOptions":
        """A copy with another seed (None: unchanged)."""
        return self if seed is None else replace(self, seed=int(seed))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for reports)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def runtime_options(runtime: RuntimeOptions | None = None, seed: int | None = None) -> RuntimeOptions:
    """`runtime` (default options when None) with `seed` applied when given."""
    return (runtime if runtime is not None else RuntimeOptions()).with_seed(seed)


def without_runtime_params(params: dict[str, Any], takes: dict[str, Any]) -> dict[str, Any]:
    """`params` less the legacy runtime keys (`LEGACY_RUNTIME_KEYS`) a model no longer takes.

    Old bundles and tuned configs of torch models list seed/device/num_threads/progress
    among their hyperparameters; those keys are dropped (with no error) so they still
    load. Models that really take such a parameter (e.g. BPR's `num_threads`) keep it.

    Args:
        params: hyperparameters as saved.
        takes: the model's constructor parameters (`Recommender.default_params()`).
    """
    return {k: v for k, v in params.items() if k in takes or k not in LEGACY_RUNTIME_KEYS}


def legacy_runtime_kwargs(model: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Runtime options given to a torch model's constructor the old way: warned, returned.

    Raises:
        TypeError: for a keyword that is neither a hyperparameter nor a runtime option
            (what Python says for any unknown keyword argument).
    """
    unknown = sorted(set(kwargs) - set(LEGACY_RUNTIME_KEYS))
    if unknown:
        raise TypeError(f"{model}() got an unexpected keyword argument {unknown[0]!r}")
    if kwargs:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        warnings.warn(f"{model}({given}): runtime options are no longer hyperparameters; pass them at fit time: "
                      f"model.fit(train, runtime=RuntimeOptions({given})). They are used for this model's fits "
                      f"when fit() gets no runtime=.", DeprecationWarning, stacklevel=3)
    return dict(kwargs)


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


__all__ = ["LEGACY_RUNTIME_KEYS", "RuntimeOptions", "runtime_options", "without_runtime_params",
           "legacy_runtime_kwargs", "resolve_device", "seed_everything", "check_runtime_options", "torch_threads"]

"""`TorchRecommender`: the base class of the PyTorch models, which owns their epoch loop.

A torch model (mf, mf-rank, neumf, two-tower, autorec) declares only what is its own:

* `_check_params()`: its hyperparameters' ranges;
* `_fit_epochs(train, shard, validation)`: which early-stopping policy it runs
  (`movierec.training.early_stopping`) and, for each network trained, how to build the
  network, its optimiser, its batches, its loss and its validation value, handed to
  `_run_epochs(...)`; it stores the learned arrays and returns the policy's result.

The base class does the rest, once for every model: it checks the fit's runtime options
(`self.runtime_`, see `movierec.training.options`), chooses the device (`_device`), runs
under the asked number of torch threads, joins a torchrun run and gives the model its
shard of the ratings (`movierec.training.distributed`), runs the `Trainer` (early
stopping, best-weights restore, progress), wraps the network for DDP and averages the
validation value across processes, and keeps the history (`history_`, `best_epoch_`),
saved with the model.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable

from movierec.data.dataset import Dataset
from movierec.models.base import Recommender
from movierec.training import distributed
from movierec.training.early_stopping import EarlyStopResult
from movierec.training.options import RuntimeOptions, legacy_runtime_kwargs, resolve_device, torch_threads
from movierec.training.trainer import Batch, History, Trainer

if TYPE_CHECKING:
    import torch


class TorchRecommender(Recommender):
    """A Recommender trained in epochs with PyTorch (see the module doc).

    Fitted attributes beyond the base class's: `history_` (the early-stopping run's
    per-epoch History) and `best_epoch_` (the epoch count kept).
    """

    #: True when the loss reaches every trained parameter through the network's `forward`
    #: (then DDP wraps the network); False when it calls other methods (e.g. `score_items`),
    #: which DDP would not see: the gradients are then averaged after each backward instead
    ddp_forward: ClassVar[bool] = True

    # -- runtime ------------------------------------------------------------------------
    def _take_legacy_runtime(self, kwargs: dict[str, Any]) -> None:
        """Keep runtime options given to the constructor the old way (with a DeprecationWarning)."""
        self._legacy_runtime = legacy_runtime_kwargs(type(self).__name__, kwargs)

    def _default_runtime(self) -> RuntimeOptions:
        return RuntimeOptions(**getattr(self, "_legacy_runtime", {}))

    @property
    def _seed(self) -> int:
        """The fit's seed (`runtime_.seed`)."""
        return int((self.runtime_ or RuntimeOptions()).seed)

    @property
    def _device(self) -> torch.device:
        """The fit's training device (under torchrun on CUDA, this process's GPU)."""
        return distributed.training_device(resolve_device((self.runtime_ or RuntimeOptions()).device))

    # -- the fit ------------------------------------------------------------------------
    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        runtime = (self.runtime_ or RuntimeOptions()).checked()
        self._check_params()
        with torch_threads(runtime.num_threads):
            self._dist = distributed.context(runtime, self._device)
            rows = self._dist.shard_rows(train.n_ratings)
            self._dist.check_shards(train.n_ratings, len(rows))
            shard = train if not self._dist.active else train.subset(rows, name=f"{train.name}:rank{self._dist.rank}")
            result = self._fit_epochs(train, shard, validation)
        self.history_ = result.history
        self.best_epoch_ = int(result.best_epoch)

    def _check_params(self) -> None:
        """Raise a ConfigError sentence for a hyperparameter out of range."""

    @abstractmethod
    def _fit_epochs(self, train: Dataset, shard: Dataset, validation: Dataset | None) -> EarlyStopResult:
        """Train (on `shard`: this process's share of `train`, all of it when alone), store
        the learned state and return the early-stopping policy's result.

        Args:
            train: all the training data (for statistics every process must agree on,
                e.g. the mean rating).
            shard: the rows this process trains on.
            validation: the given validation set, or None.
        """

    def _run_epochs(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        batches: Callable[[], Iterable[Batch]],
        loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor],
        validate: Callable[[torch.nn.Module], float] | None = None,
        *,
        epochs: int,
        mode: str,
        epoch_metrics: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    ) -> History:
        """Train `module` in place for at most `epochs` epochs and return its History.

        The network, optimiser (None: `loss_fn` applies its own update and returns the
        loss, as mf's closed-form Adam step does), batches (this process's shard), loss and
        validation value are the model's; early stopping (`patience`, `mode` "min" or "max"), best-weights
        restore, progress and the distributed run's synchronisation are done here.
        """
        runtime = self.runtime_ or RuntimeOptions()
        dist_ctx: distributed.DistributedContext = getattr(self, "_dist", distributed.SINGLE)
        train_module, after_backward = module, None
        if dist_ctx.active:
            if self.ddp_forward:
                train_module = dist_ctx.wrap(module, next(module.parameters()).device)
            else:
                params = [p for p in module.parameters() if p.requires_grad]

                def after_backward() -> None:
                    dist_ctx.average_gradients(params)

            if validate is not None:
                local_validate = validate

                def validate(m: torch.nn.Module) -> float:
                    return dist_ctx.mean(local_validate(m))

        trainer = Trainer(max_epochs=int(epochs), patience=max(int(getattr(self, "patience", 1)), 1), mode=mode,
                          progress=bool(runtime.progress) and dist_ctx.is_main, desc=self.name,
                          world_size=dist_ctx.world_size)
        return trainer.fit(module, optimizer, batches, loss_fn, validate, epoch_metrics=epoch_metrics,
                           train_module=train_module, after_backward=after_backward)

    # -- saved with the model -------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        """The best epoch and the early-stopping history (JSON values)."""
        meta: dict[str, Any] = {"best_epoch": self.best_epoch_}
        if self.history_ is not None:
            meta["history"] = self.history_.to_dict()
        return meta

    def _set_meta(self, meta: dict[str, Any]) -> None:
        self.best_epoch_ = meta.get("best_epoch")
        self.history_ = History.from_dict(meta["history"]) if meta.get("history") else None


__all__ = ["TorchRecommender"]

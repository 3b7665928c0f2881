"""Trainer: the epoch loop shared by every PyTorch model.

It owns fast in-memory batching, the epoch loop, early stopping with best-weights
restore, per-epoch history (for learning curves) and progress: every epoch is reported
as a step of a `movierec.training.progress` task (loss, validation value), which a front
end installed with `reporting` shows (the CLI's bars and log lines); with no front end
and `progress=True`, a tqdm bar on stderr.
Runtime options (device, seed, threads) live in `movierec.training.options`, the
early-stop-then-refit policy in `movierec.training.early_stopping`, the losses in
`movierec.training.losses`. Models stay small `nn.Module`s that know nothing about training.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from movierec.training.progress import current_reporter, start_task

if TYPE_CHECKING:  # torch is imported where it is used, so loading a saved model needs no torch
    import torch

Batch = tuple["torch.Tensor", ...]


def tensor_batches(tensors: Sequence[torch.Tensor], batch_size: int, generator: torch.Generator | None = None,
                   shuffle: bool = True) -> Iterator[Batch]:
    """Yield aligned slices of `tensors` (same first dimension), shuffled by `generator`.

    Indexing preloaded tensors is far faster than a DataLoader for small rows.
    """
    import torch

    n = tensors[0].shape[0]
    if shuffle:
        order = torch.randperm(n, generator=generator).to(tensors[0].device)
        # one gather per tensor and epoch, then contiguous slices: the same batches as
        # gathering order[start:stop] per batch, with far fewer small kernel calls
        shuffled = [t.index_select(0, order) for t in tensors]
        for start in range(0, n, batch_size):
            yield tuple(t[start : start + batch_size] for t in shuffled)
    else:
        for start in range(0, n, batch_size):
            yield tuple(t[start : start + batch_size] for t in tensors)


@dataclass
class History:
    """Per-epoch records plus the best epoch.

    Each record has "epoch", "train_loss", "seconds" and "ratings_per_s" (training rows
    per second of the epoch's optimiser steps, over all processes of a distributed run:
    ratings for mf, interactions or positives for the ranking models, movies for autorec),
    "val" when validated, and whatever `epoch_metrics` adds.
    """

    records: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False

    def column(self, key: str) -> list:
        return [r.get(key) for r in self.records]

    def to_dict(self) -> dict:
        """JSON-serialisable form (numbers as plain floats), for a model's `_meta()`."""
        records = [{k: (v if isinstance(v, (int, str)) or v is None else float(v)) for k, v in r.items()}
                   for r in self.records]
        return {
            "records": records,
            "best_epoch": self.best_epoch,
            "best_value": None if self.best_value is None else float(self.best_value),
            "stopped_early": bool(self.stopped_early),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """The inverse of `to_dict`."""
        return cls(records=list(d.get("records", [])), best_epoch=d.get("best_epoch"),
                   best_value=d.get("best_value"), stopped_early=bool(d.get("stopped_early", False)))


class Trainer:
    """Runs epochs of `loss_fn` over batches, validates, stops early, restores the best weights.

    Args:
        max_epochs: upper bound on epochs.
        patience: epochs without improvement of the validation value before stopping
            (ignored without a validate function; 0 never stops early).
        mode: "min" when lower validation values are better (RMSE), "max" otherwise (NDCG).
        min_delta: improvement smaller than this does not count.
        progress: draw a tqdm bar on stderr when no progress reporter is installed (see
            `movierec.training.progress`; an installed one gets every epoch either way).
        callback: called with each epoch's record.
        desc: what is trained, e.g. "mf"; the progress task is "training <desc>".
        world_size: processes training together (their rows count in "ratings_per_s").
    """

    def __init__(self, max_epochs: int = 50, patience: int = 5, mode: str = "min", min_delta: float = 0.0,
                 progress: bool = False, callback: Callable[[dict], None] | None = None, desc: str = "training",
                 world_size: int = 1):
        if max_epochs < 1:
            raise ValueError("max_epochs must be at least 1")
        if mode not in ("min", "max"):
            raise ValueError("mode must be 'min' or 'max'")
        self.max_epochs = max_epochs
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self.progress = progress
        self.callback = callback
        self.desc = desc
        self.world_size = max(1, int(world_size))

    def _better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta

    def fit(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        batches: Callable[[], Iterable[Batch]],
        loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor],
        validate: Callable[[torch.nn.Module], float] | None = None,
        epoch_metrics: Callable[[torch.nn.Module], dict[str, float]] | None = None,
        train_module: torch.nn.Module | None = None,
        after_backward: Callable[[], None] | None = None,
    ) -> History:
        """Train `module` in place and return its History.

        Args:
            optimizer: updates the parameters after each backward pass; None when `loss_fn`
                takes the whole step itself (computes the gradient in closed form and updates
                the parameters, e.g. mf's `_AdamStep`): then nothing is backpropagated.
            batches: called once per epoch, returns that epoch's batches.
            loss_fn: (module, batch) -> scalar loss to minimise (regularisation included);
                with no optimizer, the loss of the step it just took.
            validate: module -> validation value, computed in eval mode without gradients.
            epoch_metrics: optional module -> {name: value} computed the same way after
                each epoch and added to its record (e.g. training RMSE for learning curves).
        """
        import torch

        if optimizer is None and after_backward is not None:
            raise ValueError("after_backward needs an optimizer: with none, loss_fn takes the whole step")
        train_module = module if train_module is None else train_module
        history = History()
        best_state = None
        bad_epochs = 0
        bar = None
        if self.progress and current_reporter() is None:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_epochs, desc=self.desc, unit="epoch", leave=False)
        task = start_task(self.desc if self.desc.startswith("training") else f"training {self.desc}",
                          total=self.max_epochs, unit="epoch")
        try:
            for epoch in range(1, self.max_epochs + 1):
                start = time.perf_counter()
                train_module.train()
                total, count = None, 0
                for batch in batches():
                    if optimizer is None:
                        loss = loss_fn(train_module, batch)
                    else:
                        optimizer.zero_grad(set_to_none=True)
                        loss = loss_fn(train_module, batch)
                        loss.backward()
                        if after_backward is not None:
                            after_backward()
                        optimizer.step()
                    size = batch[0].shape[0]
                    # summed on the device, read once per epoch (no host sync per step)
                    weighted = loss.detach() * size
                    total = weighted if total is None else total + weighted
                    count += size
                train_seconds = time.perf_counter() - start
                record = {"epoch": epoch, "train_loss": (float(total) if total is not None else 0.0) / max(count, 1),
                          "ratings_per_s": count * self.world_size / max(train_seconds, 1e-9)}
                if epoch_metrics is not None:
                    module.eval()
                    with torch.no_grad():
                        record.update({k: float(v) for k, v in epoch_metrics(module).items()})
                if validate is not None:
                    module.eval()
                    with torch.no_grad():
                        value = float(validate(module))
                    record["val"] = value
                    if self._better(value, history.best_value):
                        history.best_value, history.best_epoch = value, epoch
                        best_state = copy.deepcopy(module.state_dict())
                        bad_epochs = 0
                    else:
                        bad_epochs += 1
                record["seconds"] = time.perf_counter() - start
                history.records.append(record)
                if self.callback:
                    self.callback(record)
                task.advance(loss=record["train_loss"], validation=record.get("val"))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in ("train_loss", "val")})
                if validate is not None and self.patience > 0 and bad_epochs >= self.patience:
                    history.stopped_early = True
                    break
        finally:
            task.finish()
            if bar is not None:
                bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
        elif validate is None:
            history.best_epoch = len(history.records)
        module.eval()
        return history

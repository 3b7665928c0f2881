"""The one early-stop-then-refit policy of the PyTorch models.

`early_stop_then_refit` decides, for every torch model alike:

(a) a validation set was given -> train on all of `train`, stop early on the validation
    value and keep the best epoch's weights;
(b) no validation set -> carve a hold-out out of the training data (the model says how:
    a seeded random share of the ratings for rating models, `random_holdout`; each user's
    latest interaction for ranking models, `_ranking_common.holdout_last`), stop early on
    it, and with `refit=True` train a fresh network on *all* the training data for the
    best number of epochs (else keep the early-stopped network);
(c) `patience=0`, or nothing could be held out -> train `epochs` epochs on all the data.

The models keep what is theirs (how one network is trained, what the validation value
is); the policy only sequences the runs, so it has one implementation and one test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

import numpy as np

from movierec.data.dataset import Dataset
from movierec.training.trainer import History

D = TypeVar("D")  # what a network trains on (a Dataset, index arrays, ...)
V = TypeVar("V")  # what it validates on (a Dataset, a ranking validator, ...)
M = TypeVar("M")  # the trained network

#: trains one fresh network: (data, validation or None, max epochs, refitting) -> (network, history).
#: With a validation it stops early and restores the best epoch's weights (the `Trainer` does).
TrainFn = Callable[[D, "V | None", int, bool], tuple[M, History]]


@dataclass
class EarlyStopResult(Generic[M]):
    """What `early_stop_then_refit` trained.

    Attributes:
        module: the network to keep (the refit one when a refit ran).
        history: the early-stopping run's per-epoch history (the learning curve).
        best_epoch: the epoch count chosen (best validation epoch, or all epochs run).
        holdout: "validation" (given), "internal" (carved from train) or "none".
        refitted: whether `module` was retrained on all the data for `best_epoch` epochs.
    """

    module: M
    history: History
    best_epoch: int
    holdout: str
    refitted: bool


def early_stop_then_refit(
    train: TrainFn,
    data: D,
    validation: V | None,
    holdout: Callable[[D], tuple[D, V] | None],
    *,
    epochs: int,
    patience: int,
    refit: bool,
) -> EarlyStopResult:
    """Run the policy of the module doc.

    Args:
        train: trains one fresh network (see `TrainFn`); called once, or twice with a refit.
        data: all the training data.
        validation: the given validation set, already in the form `train` takes, or None.
        holdout: data -> (data to fit, held-out validation), or None when nothing can be
            held out; called only without a validation set.
        epochs: most epochs of the early-stopping run.
        patience: epochs without improvement before stopping; 0 turns early stopping off.
        refit: after an internal hold-out, retrain on all the data for the best epoch count.
    """
    epochs = int(epochs)
    if patience > 0 and validation is None:
        carved = holdout(data)
        if carved is not None:
            fit_part, held = carved
            module, history = train(fit_part, held, epochs, False)
            best = int(history.best_epoch or len(history.records))
            if refit:
                module, _ = train(data, None, best, True)
            return EarlyStopResult(module, history, best, "internal", bool(refit))
    if patience > 0 and validation is not None:
        module, history = train(data, validation, epochs, False)
        return EarlyStopResult(module, history, int(history.best_epoch or len(history.records)), "validation", False)
    module, history = train(data, None, epochs, False)
    return EarlyStopResult(module, history, len(history.records), "none", False)


def random_holdout(train: Dataset, fraction: float, seed: int, min_ratings: int = 20) -> tuple[Dataset, Dataset] | None:
    """A seeded random share of the ratings held out, for rating models: (rest, held out).

    Returns None when `fraction` is 0 or `train` has fewer than `min_ratings` ratings.
    """
    n = train.n_ratings
    if fraction <= 0 or n < min_ratings:
        return None
    rng = np.random.default_rng(int(seed))
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[: max(1, int(round(n * fraction)))]] = True
    return train.subset(~held, name=f"{train.name}:fit"), train.subset(held, name=f"{train.name}:holdout")


__all__ = ["EarlyStopResult", "TrainFn", "early_stop_then_refit", "random_holdout"]

"""Rating prediction accuracy of a model under a protocol: fit per fold, RMSE/MAE on test."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from movierec.data.dataset import Dataset
from movierec.data.split import Split
from movierec.errors import CapabilityError
from movierec.experiments.models import build_model, model_class
from movierec.training.options import RuntimeOptions, runtime_options


@dataclass
class RatingEvaluation:
    """What `evaluate_ratings` found.

    Attributes:
        model: registered model name.
        params: the model's full constructor arguments (defaults included).
        dataset: dataset name.
        protocol: protocol name.
        folds: one dict per split: fold, rmse, mae, n_test, fit_seconds, n_train,
            test_ratings_unseen_user, test_ratings_unseen_movie.
        info: extra facts recorded with the result (seed, holdout, config file ...).
    """

    model: str
    params: dict[str, Any]
    dataset: str | None
    protocol: str | None
    folds: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)

    def _mean(self, key: str) -> float:
        return float(np.mean([f[key] for f in self.folds]))

    @property
    def rmse(self) -> float:
        """Mean RMSE over the folds."""
        return self._mean("rmse")

    @property
    def mae(self) -> float:
        """Mean MAE over the folds."""
        return self._mean("mae")

    @property
    def rmse_std(self) -> float | None:
        """Standard deviation (ddof 1) of the fold RMSEs; None for a single fold."""
        return float(np.std([f["rmse"] for f in self.folds], ddof=1)) if len(self.folds) > 1 else None

    def to_json(self) -> dict[str, Any]:
        """One JSON-ready object: model, params, dataset, protocol, the means, folds."""
        doc: dict[str, Any] = {
            "model": self.model, "params": self.params, "dataset": self.dataset, "protocol": self.protocol,
            "rmse": self.rmse, "mae": self.mae, "fit_seconds": self._mean("fit_seconds"),
            "n_test": int(sum(f["n_test"] for f in self.folds)),
        }
        doc.update(self.info)
        if self.rmse_std is not None:
            doc["rmse_std"] = self.rmse_std
        doc["folds"] = self.folds
        return doc


def _unseen_counts(split: Split) -> dict[str, int]:
    seen_u = split.train.user_counts() > 0
    seen_i = split.train.item_counts() > 0
    return {
        "test_ratings_unseen_user": int((~seen_u[split.test.user_idx]).sum()),
        "test_ratings_unseen_movie": int((~seen_i[split.test.item_idx]).sum()),
    }


def rating_splits(ds: Dataset | None, protocol: str = "random", holdout: float | None = None, seed: int = 42,
                  files: tuple[str | Path, str | Path] | None = None) -> list[Split]:
    """The splits rating evaluation uses: no validation part (training keeps it) and
    unseen test users/movies kept (rating models answer them from biases)."""
    from movierec.evaluation.protocols import build_splits

    return build_splits(ds, protocol, holdout, seed, validation=False, drop_unseen_test=False, files=files)


def evaluate_ratings(
    model_name: str,
    splits: Sequence[Split] | Split,
    params: dict[str, Any] | None = None,
    seed: int | None = 42,
    progress: Callable[[str], None] | None = None,
    info: dict[str, Any] | None = None,
    runtime: RuntimeOptions | None = None,
) -> RatingEvaluation:
    """Fit a fresh model per split on its train part and measure RMSE/MAE on its test part.

    Args:
        model_name: a registered model that predicts ratings.
        splits: one Split or several (e.g. the five ML-100K folds).
        params: hyperparameters (checked against the model's constructor).
        seed: the fits' seed (replaces `runtime.seed`), and the seed of models that take
            one as a hyperparameter unless `params` sets it.
        progress: called with a line before each fit.
        info: extra facts recorded in the result (protocol options, config file ...).
        runtime: how to train (device, threads, ...; see `movierec.training.options`).

    Raises:
        CapabilityError: the model does not predict ratings.
    """
    from movierec.evaluation.runner import evaluate_ratings as score_ratings

    cls = model_class(model_name)
    if not cls.capabilities.predicts_ratings:
        raise CapabilityError(f"Model {model_name!r} ranks movies and does not predict ratings, so RMSE does not apply.")
    splits = [splits] if isinstance(splits, Split) else list(splits)
    probe = build_model(model_name, params, seed)
    folds = []
    for split in splits:
        model = build_model(model_name, params, seed)
        if progress is not None:
            progress(f"fitting {model_name} on {split.train.name} ({split.train.n_ratings:,} ratings)")
        start = time.perf_counter()
        model.fit(split.train, runtime=runtime_options(runtime, seed))
        seconds = time.perf_counter() - start
        scores = score_ratings(model, split.test)
        folds.append({"fold": split.info.get("fold", split.info.get("protocol")), "rmse": scores["rmse"],
                      "mae": scores["mae"], "n_test": scores["n"], "fit_seconds": seconds,
                      "n_train": int(split.train.n_ratings), **_unseen_counts(split)})
    first = splits[0]
    return RatingEvaluation(model=model_name, params=probe.get_params(), dataset=first.train.name.split(":")[0],
                            protocol=first.info.get("protocol"), folds=folds, info=dict(info or {}))


__all__ = ["RatingEvaluation", "evaluate_ratings", "rating_splits"]

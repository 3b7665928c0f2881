"""Fit one model on a whole dataset and describe the fit (the model before it is bundled)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from movierec.data.dataset import Dataset
from movierec.experiments.data import dataset_name
from movierec.experiments.models import build_model
from movierec.models.base import Recommender
from movierec.training.options import RuntimeOptions, runtime_options


@dataclass
class TrainResult:
    """A fitted model and what its fit measured.

    Attributes:
        model: the fitted Recommender.
        metrics: fit_seconds, n_ratings, dataset; train_rmse for rating models;
            best_epoch, best_validation, epochs_run for models with a training history.
        seconds: wall-clock seconds of the fit.
    """

    model: Recommender
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def history_summary(model: Recommender) -> dict[str, Any]:
    """best_epoch, best_validation, epochs_run and ratings_per_s (the mean of the epochs')
    of a model's training history (`history_`), or {} when it has none."""
    history = model.history_
    if history is None:
        return {}
    speeds = [r["ratings_per_s"] for r in history.records if r.get("ratings_per_s")]
    out = {"best_epoch": history.best_epoch, "best_validation": history.best_value,
           "epochs_run": len(history.records), "ratings_per_s": sum(speeds) / len(speeds) if speeds else None}
    return {k: v for k, v in out.items() if v is not None}


def fit_model(model_name: str, dataset: Dataset, params: dict[str, Any] | None = None, seed: int | None = None,
              progress: Callable[[str], None] | None = None, runtime: RuntimeOptions | None = None) -> TrainResult:
    """Fit a registered model on every rating of `dataset`.

    Args:
        model_name: registry name.
        dataset: the training data (all of it).
        params: hyperparameters (checked against the model's constructor).
        seed: the fit's seed (replaces `runtime.seed`), and the seed of models that take
            one as a hyperparameter unless `params` sets it.
        progress: called with a line before the fit.
        runtime: how to train (device, threads, ...; see `movierec.training.options`).
    """
    from movierec.evaluation.runner import evaluate_ratings

    model = build_model(model_name, params, seed)
    if progress is not None:
        progress(f"training {model_name} on {dataset.name} ({dataset.n_ratings:,} ratings)")
    start = time.perf_counter()
    model.fit(dataset, runtime=runtime_options(runtime, seed))
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"fit_seconds": seconds, "n_ratings": int(dataset.n_ratings),
                               "dataset": dataset_name(dataset)}
    if model.capabilities.predicts_ratings:
        metrics["train_rmse"] = evaluate_ratings(model, dataset)["rmse"]
    metrics.update(history_summary(model))
    return TrainResult(model=model, metrics=metrics, seconds=seconds)


__all__ = ["TrainResult", "fit_model", "history_summary"]

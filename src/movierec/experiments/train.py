"""Fit one model on a whole dataset and describe the fit (the model before it is bundled)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from movierec.data.dataset import Dataset
from movierec.experiments.data import dataset_name
from movierec.experiments.models import build_model
from movierec.models.base import Recommender


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
    """best_epoch, best_validation, epochs_run of a model's training history (`history_`,
    an object or its dict), or {} when it has none."""
    history = getattr(model, "history_", None)
    if history is None:
        return {}
    get = history.get if isinstance(history, dict) else (lambda key, default=None: getattr(history, key, default))
    records = get("records", None) or []
    out = {"best_epoch": get("best_epoch", None), "best_validation": get("best_value", None),
           "epochs_run": len(records)}
    return {k: v for k, v in out.items() if v is not None}


def fit_model(model_name: str, dataset: Dataset, params: dict[str, Any] | None = None, seed: int | None = None,
              progress: Callable[[str], None] | None = None) -> TrainResult:
    """Fit a registered model on every rating of `dataset`.

    Args:
        model_name: registry name.
        dataset: the training data (all of it).
        params: hyperparameters (checked against the model's constructor).
        seed: applied to models that take a seed, unless `params` sets one.
        progress: called with a line before the fit.
    """
    from movierec.evaluation.runner import evaluate_ratings

    model = build_model(model_name, params, seed)
    if progress is not None:
        progress(f"training {model_name} on {dataset.name} ({dataset.n_ratings:,} ratings)")
    start = time.perf_counter()
    model.fit(dataset)
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"fit_seconds": seconds, "n_ratings": int(dataset.n_ratings),
                               "dataset": dataset_name(dataset)}
    if model.capabilities.predicts_ratings:
        metrics["train_rmse"] = evaluate_ratings(model, dataset)["rmse"]
    metrics.update(history_summary(model))
    return TrainResult(model=model, metrics=metrics, seconds=seconds)


__all__ = ["TrainResult", "fit_model", "history_summary"]

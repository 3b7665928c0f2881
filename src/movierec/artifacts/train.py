"""`train(...) -> Bundle`: fit a registered model on a whole dataset and bundle it."""

from __future__ import annotations

from typing import Any, Callable

from movierec.artifacts.bundle import Bundle
from movierec.data.dataset import Dataset
from movierec.training.options import RuntimeOptions


def train(model_name: str, dataset: Dataset, params: dict[str, Any] | None = None, seed: int | None = None,
          progress: Callable[[str], None] | None = None, runtime: RuntimeOptions | None = None) -> Bundle:
    """Fit `model_name` on every rating of `dataset` (see `movierec.experiments.fit_model`)
    and bundle it with the dataset's catalog, fingerprint and the fit's metrics
    (fit_seconds, train_rmse for rating models, best_epoch ... for models with a history).
    `runtime` says how a torch model trains (seed, device, threads ...; `seed`, when
    given, replaces its seed). Save it with `save_bundle` or `ModelRegistry.add`."""
    from movierec.experiments.train import fit_model

    result = fit_model(model_name, dataset, params=params, seed=seed, progress=progress, runtime=runtime)
    return Bundle.from_model(result.model, dataset, metrics=result.metrics)


__all__ = ["train"]

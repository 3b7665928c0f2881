"""Pure metric functions. They never see a model: only predictions, rankings and truths."""

from __future__ import annotations

import numpy as np


def rmse(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error of rating predictions, shapes (n,)."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    if predicted.shape != truth.shape or predicted.size == 0:
        raise ValueError("predicted and truth must be non-empty and of the same shape")
    return float(np.sqrt(np.mean((predicted - truth) ** 2)))


def mae(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error of rating predictions, shapes (n,)."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    if predicted.shape != truth.shape or predicted.size == 0:
        raise ValueError("predicted and truth must be non-empty and of the same shape")
    return float(np.mean(np.abs(predicted - truth)))

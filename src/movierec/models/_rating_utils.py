"""Small helpers shared by the explicit-rating models (AutoRec, BPMF, item-kNN, blend).

Everything here works on index space (user/item indices of the training Dataset's IdMaps).
"""

from __future__ import annotations

import numpy as np

# the one validation carving (kept importable here for the models that used it)
from movierec.data.split import carve_validation  # noqa: F401


def fit_biases(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    rating: np.ndarray,
    n_users: int,
    n_items: int,
    reg_user: float = 5.0,
    reg_item: float = 5.0,
    iterations: int = 10,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Regularised user and item biases by alternating least squares.

    Model: r_ui ~ mu + b_u + c_i, penalty reg_user * |b|^2 + reg_item * |c|^2.

    Args:
        user_idx, item_idx: indices, shape (n,).
        rating: ratings, shape (n,).
        n_users, n_items: sizes of the ID spaces.

    Returns:
        (mu, user_bias (n_users,), item_bias (n_items,)) as float64; users/items without
        ratings get bias 0.
    """
    r = np.asarray(rating, dtype=np.float64)
    mu = float(r.mean()) if len(r) else 0.0
    bu = np.zeros(n_users)
    bi = np.zeros(n_items)
    nu = np.bincount(user_idx, minlength=n_users).astype(np.float64)
    ni = np.bincount(item_idx, minlength=n_items).astype(np.float64)
    for _ in range(iterations):
        bi = np.bincount(item_idx, weights=r - mu - bu[user_idx], minlength=n_items) / (ni + reg_item)
        bu = np.bincount(user_idx, weights=r - mu - bi[item_idx], minlength=n_users) / (nu + reg_user)
    return mu, bu, bi


def clip_ratings(pred: np.ndarray, scale: tuple[float, float] | None) -> np.ndarray:
    """Clip predictions to the rating scale (no-op without a scale)."""
    if scale is None:
        return pred
    return np.clip(pred, scale[0], scale[1])

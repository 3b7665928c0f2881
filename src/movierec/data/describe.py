"""Summary statistics of a Dataset, as one JSON-ready dict."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from movierec.data.dataset import Dataset

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)


def _quantiles(values: np.ndarray) -> dict[str, float]:
    qs = np.quantile(values, QUANTILES) if len(values) else [float("nan")] * len(QUANTILES)
    out = {f"p{int(q * 100)}": float(v) for q, v in zip(QUANTILES, qs)}
    out["mean"] = float(values.mean()) if len(values) else float("nan")
    return out


def long_tail_share(item_counts: np.ndarray, top: float = 0.2) -> float:
    """Share of interactions on the most popular `top` fraction of rated items."""
    counts = np.sort(item_counts[item_counts > 0])[::-1]
    if counts.sum() == 0:
        return float("nan")
    n_top = max(1, int(np.ceil(len(counts) * top)))
    return float(counts[:n_top].sum() / counts.sum())


def describe(ds: Dataset) -> dict:
    """Sizes, density, rating distribution, activity quantiles, long tail and time span.

    Users and items count those with at least one interaction.
    """
    user_counts = ds.user_counts()
    item_counts = ds.item_counts()
    n_users = int((user_counts > 0).sum())
    n_items = int((item_counts > 0).sum())
    values, counts = np.unique(ds.rating, return_counts=True)
    stats = {
        "name": ds.name,
        "n_ratings": int(ds.n_ratings),
        "n_users": n_users,
        "n_items": n_items,
        "density": float(ds.n_ratings / (n_users * n_items)) if n_users and n_items else 0.0,
        "rating_min": float(ds.rating.min()) if ds.n_ratings else None,
        "rating_max": float(ds.rating.max()) if ds.n_ratings else None,
        "rating_mean": float(ds.rating.mean()) if ds.n_ratings else None,
        "rating_histogram": {f"{v:g}": int(c) for v, c in zip(values, counts)} if len(values) <= 50 else None,
        "ratings_per_user": _quantiles(user_counts[user_counts > 0]),
        "ratings_per_item": _quantiles(item_counts[item_counts > 0]),
        "long_tail_share_top20": long_tail_share(item_counts),
        "has_timestamps": bool(ds.has_timestamps),
    }
    if ds.has_timestamps and ds.n_ratings:
        first, last = int(ds.timestamp.min()), int(ds.timestamp.max())
        stats["time_first"] = datetime.fromtimestamp(first, tz=timezone.utc).isoformat()
        stats["time_last"] = datetime.fromtimestamp(last, tz=timezone.utc).isoformat()
        stats["time_span_days"] = round((last - first) / 86400, 1)
    if ds.catalog is not None and ds.catalog.genre_names:
        stats["n_genres"] = len(ds.catalog.genre_names)
    if ds.user_features is not None:
        stats["user_features"] = list(ds.user_features.columns)
    return stats

"""Plots written as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from movierec.data.dataset import Dataset  # noqa: E402


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_rating_distribution(ds: Dataset, path: Path) -> Path:
    values, counts = np.unique(ds.rating, return_counts=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = float(np.min(np.diff(values))) * 0.8 if len(values) > 1 else 0.8
    ax.bar(values, counts, width=width, color="#4C72B0")
    ax.set_xlabel("rating")
    ax.set_ylabel("number of ratings")
    ax.set_title(f"{ds.name}: rating distribution")
    return _save(fig, path)


def plot_long_tail(ds: Dataset, path: Path) -> Path:
    counts = np.sort(ds.item_counts())[::-1]
    counts = counts[counts > 0]
    ranks = np.arange(1, len(counts) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.loglog(ranks, counts, color="#C44E52")
    top = max(1, int(np.ceil(len(counts) * 0.2)))
    share = counts[:top].sum() / counts.sum()
    ax.axvline(top, color="grey", ls="--", lw=1)
    ax.text(top, counts.max(), f" top 20% of items: {share:.0%} of ratings", va="top", fontsize=8)
    ax.set_xlabel("item popularity rank")
    ax.set_ylabel("ratings per item")
    ax.set_title(f"{ds.name}: popularity long tail (log-log)")
    return _save(fig, path)


def plot_ratings_over_time(ds: Dataset, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if ds.has_timestamps and ds.n_ratings:
        months = ds.timestamp.astype("datetime64[s]").astype("datetime64[M]")
        uniq, counts = np.unique(months, return_counts=True)
        ax.plot(uniq.astype("datetime64[D]").astype(object), counts, marker=".", color="#55A868")
        fig.autofmt_xdate()
    else:
        ax.text(0.5, 0.5, "no timestamps", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("ratings per month")
    ax.set_title(f"{ds.name}: ratings over time")
    return _save(fig, path)


def plot_dataset(ds: Dataset, folder: Path) -> list[Path]:
    """The three describe plots into `folder`."""
    folder = Path(folder)
    return [
        plot_rating_distribution(ds, folder / "rating_distribution.png"),
        plot_long_tail(ds, folder / "long_tail.png"),
        plot_ratings_over_time(ds, folder / "ratings_over_time.png"),
    ]

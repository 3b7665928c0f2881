"""Plots written as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from movierec.data.dataset import Catalog, Dataset  # noqa: E402


def save_figure(fig, path: Path) -> Path:
    """Save a figure as PNG atomically (temp file, then rename) and close it."""
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
    return save_figure(fig, path)


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
    return save_figure(fig, path)


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
    return save_figure(fig, path)


def plot_dataset(ds: Dataset, folder: Path) -> list[Path]:
    """The three describe plots into `folder`."""
    folder = Path(folder)
    return [
        plot_rating_distribution(ds, folder / "rating_distribution.png"),
        plot_long_tail(ds, folder / "long_tail.png"),
        plot_ratings_over_time(ds, folder / "ratings_over_time.png"),
    ]


# -- models: learning curves and embedding maps ----------------------------------------

#: distinctive genres first, so a movie's "primary" genre is its most telling one
GENRE_PRIORITY = (
    "Animation", "Children's", "Children", "Documentary", "Horror", "Musical", "Western", "Film-Noir",
    "Sci-Fi", "War", "Romance", "Mystery", "Crime", "Thriller", "Fantasy", "Comedy", "Adventure",
    "Action", "Drama", "IMAX", "unknown", "(no genres listed)",
)


def _records(history) -> list[dict]:
    """History object, its to_dict(), or a list of epoch records -> list of records."""
    if hasattr(history, "records"):
        return list(history.records)
    if isinstance(history, dict):
        return list(history.get("records", []))
    return list(history or [])


def plot_learning_curve(history, path: Path, title: str = "learning curve") -> Path:
    """Training and validation RMSE (or loss) per epoch, best epoch marked.

    Args:
        history: a training History (e.g. `model.history_`), its dict, or its records.
        path: the PNG to write.
    """
    records = _records(history)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if not records:
        ax.text(0.5, 0.5, "no training history", ha="center", va="center", transform=ax.transAxes)
        return save_figure(fig, path)
    epochs = [r["epoch"] for r in records]
    if all("train_rmse" in r for r in records):
        ax.plot(epochs, [r["train_rmse"] for r in records], marker=".", label="train RMSE", color="#4C72B0")
        ylabel = "RMSE"
    else:
        ax.plot(epochs, [r["train_loss"] for r in records], marker=".", label="train loss", color="#4C72B0")
        ylabel = "loss / validation"
    vals = [r.get("val") for r in records]
    if any(v is not None for v in vals):
        ax.plot(epochs, vals, marker=".", label="validation RMSE", color="#C44E52")
        finite = [(e, v) for e, v in zip(epochs, vals) if v is not None]
        best_e, best_v = min(finite, key=lambda t: t[1])
        ax.axvline(best_e, color="grey", ls="--", lw=1)
        ax.text(best_e, best_v, f" best epoch {best_e}: {best_v:.4f}", va="bottom", fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return save_figure(fig, path)


def primary_genres(genres: list[list[str]]) -> list[str]:
    """Each movie's most distinctive genre (see GENRE_PRIORITY), or "unknown"."""
    rank = {g: i for i, g in enumerate(GENRE_PRIORITY)}
    return [min(gl, key=lambda g: rank.get(g, len(rank))) if gl else "unknown" for gl in genres]


def item_embedding_map(model, catalog: Catalog, min_ratings: int = 50, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """2-D t-SNE coordinates of the movie vectors of movies with >= min_ratings ratings.

    Args:
        model: a fitted model declaring `similar_items` (vectors it compares) or
            `embeddings` (the item side).
        catalog: titles/genres in the model's item index order (e.g. `bundle.catalog`).

    Returns:
        (coordinates shape (n, 2), item indices shape (n,), primary genre per movie).
    """
    from sklearn.manifold import TSNE

    from movierec.errors import CapabilityError, ConfigError
    from movierec.evaluation.runner import item_vectors

    model._check_fitted()
    emb = item_vectors(model)
    if emb is None:
        raise CapabilityError(f"Model {model.name!r} has no movie vectors to map.")
    if len(catalog.genres) != model.n_items_:
        raise ConfigError("The catalog does not match the model's movies.")
    counts = np.asarray(model.seen_.sum(axis=0)).ravel()
    keep = np.flatnonzero(counts >= min_ratings)
    if len(keep) < 10:
        raise ConfigError(f"Only {len(keep)} movies have {min_ratings}+ ratings; lower the minimum.")
    e = np.asarray(emb, dtype=np.float32)[keep]
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    # one thread: for a few hundred points threading gains little, and on a busy machine
    # OpenMP oversubscription made t-SNE 30x slower in our measurements
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        coords = TSNE(n_components=2, perplexity=min(30.0, (len(keep) - 1) / 3), metric="cosine",
                      init="pca", random_state=seed, n_jobs=1).fit_transform(e)
    genres = primary_genres([catalog.genres[i] for i in keep])
    return coords, keep, genres


def plot_item_embedding_map(model, catalog: Catalog, path: Path, min_ratings: int = 50, seed: int = 0,
                            n_genres: int = 9) -> Path:
    """t-SNE map of movie vectors coloured by primary genre (the `n_genres` most common; others grey)."""
    coords, _, genres = item_embedding_map(model, catalog, min_ratings=min_ratings, seed=seed)
    names, counts = np.unique(genres, return_counts=True)
    shown = [n for n, _ in sorted(zip(names, counts), key=lambda t: -t[1])[:n_genres]]
    fig, ax = plt.subplots(figsize=(7, 6))
    labels = np.array(genres, dtype=object)
    other = ~np.isin(labels, shown)
    if other.any():
        ax.scatter(coords[other, 0], coords[other, 1], s=8, color="lightgrey", label="other")
    cmap = plt.get_cmap("tab10")
    for j, g in enumerate(shown):
        sel = labels == g
        ax.scatter(coords[sel, 0], coords[sel, 1], s=10, color=cmap(j % 10), label=g)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"t-SNE of {type(model).__name__} movie embeddings ({len(labels)} movies, {min_ratings}+ ratings)")
    ax.legend(fontsize=7, markerscale=1.5, loc="best")
    return save_figure(fig, path)

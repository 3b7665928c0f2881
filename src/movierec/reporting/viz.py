"""Plots written as PNG files (matplotlib, no display needed).

Every title names what the plot is about: the dataset, and for results the evaluation
protocol (`plot_title`). Each plot has a `*_figure` function that builds the figure (for
tests and notebooks) and a `plot_*` function that writes it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from movierec.data.dataset import Catalog, Dataset  # noqa: E402


def plot_title(main: str, dataset: str | None = None, protocol: str | None = None,
               subtitle: str | None = None) -> str:
    """`main` plus a second line naming the dataset, the protocol and any subtitle:
    ("Coverage vs accuracy", "ml-100k", "leave-last") -> "Coverage vs accuracy\nml-100k, leave-last"."""
    context = ", ".join(str(part) for part in (dataset, protocol, subtitle) if part)
    return f"{main}\n{context}" if context else main


def protocol_label(protocol: str | None, split: dict | None = None) -> str | None:
    """A protocol name with its test amount, for titles: "leave-last (last item per user)",
    "leave-last (last 20% per user)", "temporal (test 20%)"; from a split summary (its
    "holdout", else the split's own amounts). The registered protocol's `label`
    (`movierec.evaluation.protocols.protocol_label`), the wording the CLI and reports use."""
    from movierec.evaluation.protocols import protocol_label as label_of

    return label_of(protocol, split)


def place_labels(ax, xs, ys, labels, fontsize: float = 9) -> list:
    """Annotate points so that no label overlaps another label or a point, and every
    label lies inside the axes: each label tries positions around its point, nearest
    first, and keeps the first that fits (else the least-overlapping one).

    Returns:
        The annotation artists, one per label (NaN points are skipped).
    """
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    pts = [(x, y) for x, y in zip(xs, ys) if np.isfinite(x) and np.isfinite(y)]
    # points as small boxes in display coordinates (a marker is about 8 px across)
    from matplotlib.transforms import Bbox

    disp = ax.transData.transform(np.array(pts, dtype=float)) if pts else np.zeros((0, 2))
    taken = [Bbox.from_extents(px - 5, py - 5, px + 5, py + 5) for px, py in disp]
    directions = [(1, 1, "left", "bottom"), (1, -1, "left", "top"), (-1, 1, "right", "bottom"),
                  (-1, -1, "right", "top"), (0, 1, "center", "bottom"), (0, -1, "center", "top"),
                  (1, 0, "left", "center"), (-1, 0, "right", "center")]
    artists = []
    for x, y, label in zip(xs, ys, labels):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        best, best_cost = None, None
        for dist in (6, 12, 20, 30, 42):
            for dx, dy, ha, va in directions:
                ann = ax.annotate(label, (x, y), xytext=(dx * dist, dy * dist), textcoords="offset points",
                                  ha=ha, va=va, fontsize=fontsize)
                box = ann.get_window_extent(renderer).expanded(1.06, 1.15)
                outside = not (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0
                               and box.y1 <= inside.y1)
                cost = 100 * outside + sum(box.overlaps(t) for t in taken)
                if best_cost is None or cost < best_cost:
                    if best is not None:
                        best.remove()
                    best, best_cost, best_box = ann, cost, box
                else:
                    ann.remove()
                if best_cost == 0:
                    break
            if best_cost == 0:
                break
        taken.append(best_box)
        artists.append(best)
    return artists


def save_figure(fig, path: Path) -> Path:
    """Save a figure as PNG atomically (temp file, then rename) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def rating_distribution_figure(ds: Dataset, subtitle: str | None = None):
    """Bars of how many ratings each rating value has."""
    values, counts = np.unique(ds.rating, return_counts=True)
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    width = float(np.min(np.diff(values))) * 0.8 if len(values) > 1 else 0.8
    ax.bar(values, counts, width=width, color="#4C72B0")
    ax.set_xlabel("rating")
    ax.set_ylabel("number of ratings")
    ax.set_title(plot_title("Rating distribution", ds.name, subtitle=subtitle))
    return fig


def plot_rating_distribution(ds: Dataset, path: Path, subtitle: str | None = None) -> Path:
    return save_figure(rating_distribution_figure(ds, subtitle), path)


def long_tail_figure(ds: Dataset, subtitle: str | None = None):
    """Ratings per movie against popularity rank (log-log), the top 20% marked."""
    counts = np.sort(ds.item_counts())[::-1]
    counts = counts[counts > 0]
    ranks = np.arange(1, len(counts) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.loglog(ranks, counts, color="#C44E52")
    top = max(1, int(np.ceil(len(counts) * 0.2)))
    share = counts[:top].sum() / counts.sum()
    ax.axvline(top, color="grey", ls="--", lw=1)
    # bottom left: below the curve (which falls from the top left) and left of the line
    ax.text(0.03, 0.05, f"top 20% of movies (left of the\ndashed line): {share:.0%} of the ratings", ha="left",
            va="bottom", fontsize=8, transform=ax.transAxes)
    ax.set_xlabel("movie popularity rank")
    ax.set_ylabel("ratings per movie")
    ax.set_title(plot_title("Popularity long tail (log-log)", ds.name, subtitle=subtitle))
    return fig


def plot_long_tail(ds: Dataset, path: Path, subtitle: str | None = None) -> Path:
    return save_figure(long_tail_figure(ds, subtitle), path)


def ratings_over_time_figure(ds: Dataset, subtitle: str | None = None):
    """Ratings per calendar month; the count axis starts at zero."""
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    if ds.has_timestamps and ds.n_ratings:
        months = ds.timestamp.astype("datetime64[s]").astype("datetime64[M]")
        uniq, counts = np.unique(months, return_counts=True)
        ax.plot(uniq.astype("datetime64[D]").astype(object), counts, marker=".", color="#55A868")
        fig.autofmt_xdate()
    else:
        ax.text(0.5, 0.5, "no timestamps", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("ratings per month")
    ax.set_title(plot_title("Ratings over time", ds.name, subtitle=subtitle))
    return fig


def plot_ratings_over_time(ds: Dataset, path: Path, subtitle: str | None = None) -> Path:
    return save_figure(ratings_over_time_figure(ds, subtitle), path)


def plot_dataset(ds: Dataset, folder: Path, subtitle: str | None = None) -> list[Path]:
    """The three describe plots into `folder`."""
    folder = Path(folder)
    return [
        plot_rating_distribution(ds, folder / "rating_distribution.png", subtitle),
        plot_long_tail(ds, folder / "long_tail.png", subtitle),
        plot_ratings_over_time(ds, folder / "ratings_over_time.png", subtitle),
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


def learning_curve_figure(history, title: str = "Learning curve", dataset: str | None = None,
                          subtitle: str | None = None):
    """Training and validation RMSE (or loss) per epoch, best epoch marked (see `plot_learning_curve`)."""
    records = _records(history)
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.set_title(plot_title(title, dataset, subtitle=subtitle))
    if not records:
        ax.text(0.5, 0.5, "no training history", ha="center", va="center", transform=ax.transAxes)
        return fig
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
    ax.legend()
    return fig


def plot_learning_curve(history, path: Path, title: str = "Learning curve", dataset: str | None = None,
                        subtitle: str | None = None) -> Path:
    """Training and validation RMSE (or loss) per epoch, best epoch marked.

    Args:
        history: a training History (e.g. `model.history_`), its dict, or its records.
        path: the PNG to write.
        title: the first title line; `dataset` and `subtitle` make the second.
    """
    return save_figure(learning_curve_figure(history, title, dataset, subtitle), path)


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

    model.check_is_fitted()
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


def item_embedding_map_figure(coords: np.ndarray, genres: list[str], model_name: str, min_ratings: int,
                              n_genres: int = 9, dataset: str | None = None, subtitle: str | None = None):
    """The t-SNE scatter of `item_embedding_map`'s output; the title counts exactly the points drawn."""
    names, counts = np.unique(genres, return_counts=True)
    shown = [n for n, _ in sorted(zip(names, counts), key=lambda t: -t[1])[:n_genres]]
    fig, ax = plt.subplots(figsize=(7, 6), layout="constrained")
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
    ax.set_title(plot_title(f"t-SNE of {model_name} movie vectors: {len(coords)} movies with {min_ratings}+ ratings",
                            dataset, subtitle=subtitle))
    ax.legend(fontsize=7, markerscale=1.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="primary genre",
              title_fontsize=7)
    return fig


def plot_item_embedding_map(model, catalog: Catalog, path: Path, min_ratings: int = 50, seed: int = 0,
                            n_genres: int = 9, dataset: str | None = None, subtitle: str | None = None) -> Path:
    """t-SNE map of movie vectors coloured by primary genre (the `n_genres` most common; others grey).

    The title states how many movies are drawn (those with `min_ratings`+ training ratings).
    """
    coords, _, genres = item_embedding_map(model, catalog, min_ratings=min_ratings, seed=seed)
    fig = item_embedding_map_figure(coords, genres, model.name, min_ratings, n_genres, dataset, subtitle)
    return save_figure(fig, path)

"""The docs' illustrations that no page's code draws (run by `scripts/docs.py figures`).

* `mf_factorisation.png`: a real corner of ML-100K (the 12 most active users × the 16 most
  rated movies, some ratings hidden) as the product of a thin user matrix and a thin movie
  matrix, fitted here by a few sweeps of alternating least squares;
* `decision_chart.png`: which movierec model to start from (explicit / implicit feedback,
  order, latency), the seed's flowchart redrawn for the models movierec has.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402


def _save(fig, path: Path) -> Path:
    from movierec.reporting.viz import save_figure

    return save_figure(fig, path)


def factorisation_example(n_users: int = 12, n_items: int = 16, dim: int = 3, hide: float = 0.3, seed: int = 0):
    """(R with NaN for unknown, P (n_users, dim), Q (n_items, dim), titles) from ML-100K.

    The densest corner of the rating matrix, with a seeded `hide` share of its known
    ratings removed, factorised by ridge-regularised alternating least squares with biases
    folded into the mean (R ≈ μ + P Qᵀ on the known cells).
    """
    from movierec.data import load_movielens

    ds = load_movielens("ml-100k")
    users = np.argsort(-ds.user_counts(), kind="stable")[:n_users]
    items = np.argsort(-ds.item_counts(), kind="stable")[:n_items]
    R = np.full((n_users, n_items), np.nan)
    upos = {u: k for k, u in enumerate(users)}
    ipos = {i: k for k, i in enumerate(items)}
    for u, i, r in zip(ds.user_idx, ds.item_idx, ds.rating):
        if u in upos and i in ipos:
            R[upos[u], ipos[i]] = r
    rng = np.random.default_rng(seed)
    known = np.argwhere(~np.isnan(R))
    drop = known[rng.random(len(known)) < hide]
    R[drop[:, 0], drop[:, 1]] = np.nan
    mu = np.nanmean(R)
    P = rng.normal(0, 0.1, (n_users, dim))
    Q = rng.normal(0, 0.1, (n_items, dim))
    mask = ~np.isnan(R)
    X = np.where(mask, R - mu, 0.0)
    lam = 0.5
    for _ in range(30):
        for u in range(n_users):
            Qm = Q[mask[u]]
            P[u] = np.linalg.solve(Qm.T @ Qm + lam * np.eye(dim), Qm.T @ X[u, mask[u]])
        for i in range(n_items):
            Pm = P[mask[:, i]]
            Q[i] = np.linalg.solve(Pm.T @ Pm + lam * np.eye(dim), Pm.T @ X[mask[:, i], i])
    titles = [ds.catalog.titles[i] for i in items]
    return R, P, Q, mu, titles


def factorisation_figure():
    R, P, Q, mu, titles = factorisation_example()
    full = np.clip(mu + P @ Q.T, 1, 5)
    fig = plt.figure(figsize=(11, 3.6))
    grid = fig.add_gridspec(1, 7, width_ratios=[16, 1.2, 3, 1.2, 16, 1.2, 16], wspace=0.08)
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="#eeeeee")

    def heat(ax, M, title, vmin=1, vmax=5, cm=cmap, annotate=False):
        ax.imshow(np.ma.masked_invalid(M), cmap=cm, vmin=vmin, vmax=vmax, aspect="equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
        if annotate:
            for (a, b), v in np.ndenumerate(M):
                ax.text(b, a, "?" if np.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=6)

    def symbol(ax, s):
        ax.axis("off")
        ax.text(0.5, 0.5, s, ha="center", va="center", fontsize=18)

    heat(fig.add_subplot(grid[0]), R, "known ratings R\n(12 users × 16 movies, ? = unknown)", annotate=True)
    symbol(fig.add_subplot(grid[1]), "≈")
    lim = float(np.abs(P).max())
    heat(fig.add_subplot(grid[2]), P, "users P\n(12 × 3)", -lim, lim, plt.get_cmap("PuOr"))
    symbol(fig.add_subplot(grid[3]), "×")
    lim = float(np.abs(Q).max())
    heat(fig.add_subplot(grid[4]), Q.T, "movies Qᵀ (3 × 16)", -lim, lim, plt.get_cmap("PuOr"))
    symbol(fig.add_subplot(grid[5]), "=")
    heat(fig.add_subplot(grid[6]), full, "predicted R̂ = μ + P Qᵀ\n(every cell filled)", annotate=True)
    fig.suptitle("Matrix factorisation: the rating matrix as the product of two thin matrices "
                 "(ML-100K's 12 most active users, 16 most rated movies)", fontsize=10)
    return fig


def _box(ax, xy, text, color, width=2.6, height=0.8, fontsize=8.5):
    x, y = xy
    patch = FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.08",
                           facecolor=color, edgecolor="#333333", linewidth=1)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, a, b, label=None, label_at=0.5, offset=(0.12, 0.0)):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color="#333333", linewidth=1))
    if label:
        x = a[0] + (b[0] - a[0]) * label_at + offset[0]
        y = a[1] + (b[1] - a[1]) * label_at + offset[1]
        ax.text(x, y, label, fontsize=8, color="#333333", ha="left", va="center", style="italic")


def decision_chart_figure():
    """Which model to start from: the questions, left to right, and movierec's answers."""
    question, model, index = "#dbe9f6", "#d9f2d9", "#fde9c9"
    fig, ax = plt.subplots(figsize=(10.5, 6.2))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 8.2)
    ax.axis("off")
    _box(ax, (2.0, 7.4), "What feedback do you have?", question, width=3.2)
    _box(ax, (2.0, 5.6), "Explicit ratings:\ndo you need the\npredicted stars?", question, height=1.1)
    _box(ax, (8.5, 7.4), "Implicit (clicks, views, 'watched'),\nor ratings used only to rank:\ndoes the order of a history matter?",
         question, width=4.2, height=1.1)
    _box(ax, (2.75, 3.6), "most accurate stars:\nblend (slow), bpmf, autorec", model, width=3.1, height=0.9)
    _box(ax, (2.0, 1.9), "fast, explainable, embeddings,\nnew users by fold-in: mf", model, width=3.1, height=0.9)
    _box(ax, (6.6, 5.3), "sessions / next movie:\nseq-ease", model, width=2.6)
    _box(ax, (10.4, 5.3), "catalog ≤ ~20k movies:\nease\nlarger: als (or bpr)", model, width=2.8, height=1.1)
    _box(ax, (8.5, 3.4), "Need answers in < 10 ms over a large\ncatalog, or a candidate stage?", question,
         width=4.2, height=0.9)
    _box(ax, (8.5, 1.5), "an embedding model (mf, als, mf-rank, two-tower)\n+ a FAISS index (movierec.retrieval)",
         index, width=4.8, height=0.9)
    _arrow(ax, (2.0, 6.95), (2.0, 6.2), "ratings")
    _arrow(ax, (3.65, 7.4), (6.35, 7.4), "implicit", offset=(-0.4, 0.2))
    _arrow(ax, (3.35, 5.6), (6.35, 7.1), "no: rank only", label_at=0.35, offset=(0.1, 0.25))
    _arrow(ax, (2.75, 5.05), (2.75, 4.1), "yes, accuracy first", offset=(0.12, 0.0))
    _arrow(ax, (0.95, 5.05), (0.95, 2.4), "yes, speed", label_at=0.15, offset=(-0.9, 0.0))
    _arrow(ax, (7.6, 6.85), (6.8, 5.9), "yes", offset=(-0.5, 0.1))
    _arrow(ax, (9.4, 6.85), (10.2, 5.9), "no", offset=(0.1, 0.1))
    _arrow(ax, (6.6, 4.75), (7.6, 3.85))
    _arrow(ax, (10.4, 4.75), (9.4, 3.85))
    _arrow(ax, (3.6, 1.9), (6.35, 3.2), "embeddings ready", label_at=0.3, offset=(-0.1, 0.45))
    _arrow(ax, (8.5, 2.95), (8.5, 2.0), "yes", offset=(0.12, 0.0))
    ax.text(11.0, 2.6, "no: score the whole\ncatalog (recommend)", fontsize=8, style="italic", color="#333333")
    ax.set_title("Choosing a model in movierec: start at the top left", fontsize=11)
    return fig


def draw_all(out: Path) -> list[Path]:
    """Write every illustration into `out`; returns their paths."""
    return [
        _save(factorisation_figure(), Path(out) / "mf_factorisation.png"),
        _save(decision_chart_figure(), Path(out) / "decision_chart.png"),
    ]


if __name__ == "__main__":
    import sys

    for p in draw_all(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images")):
        print(p)

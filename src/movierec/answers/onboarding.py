"""Taste groups for a first visit, in the spirit of MovieLens' own onboarding.

The most-rated movies are clustered (k-means, seeded) on the model's movie vectors:
its embeddings where it declares them, else co-occurrence vectors (a truncated SVD of
which users watched which movies, from the model's own seen matrix), else genres. Each
group is shown by its most representative popular movies and the genres that set it
apart. Picking groups gives a new person a first list: the groups' movies are folded
in as movies they like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data.dataset import Catalog
from movierec.models.base import Recommender

#: the most-rated movies that are clustered
CANDIDATES = 400
#: movies shown per group
PER_GROUP = 6


@dataclass(frozen=True)
class TasteGroup:
    """One taste group.

    Attributes:
        group_id: 0..n_groups-1, most popular group first.
        label: a short name, from its top genres (and its best-known movie when two
            groups would share a name).
        genres: up to three genres that set its most representative movies apart.
        movie_idx: item indices of its representative movies, best first.
    """

    group_id: int
    label: str
    genres: list[str]
    movie_idx: np.ndarray


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def movie_vectors(model: Recommender, catalog: Catalog, *, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, str]:
    """Vectors that place similar movies near each other, shape (n_items, d), and their kind.

    Kinds: "embeddings" (the model's), "co-occurrence" (SVD of the seen matrix), "genres".
    """
    if model.capabilities.embeddings:
        return model.embeddings().items, "embeddings"
    seen = model.seen_.T.tocsr().astype(np.float32)  # items x users
    n_items, n_users = seen.shape
    if seen.nnz and min(n_items, n_users) > 2:
        from sklearn.decomposition import TruncatedSVD

        rows = np.sqrt(np.asarray(seen.sum(axis=1)).ravel())
        seen = seen.multiply(1.0 / np.maximum(rows, 1.0)[:, None]).tocsr()
        svd = TruncatedSVD(n_components=min(dim, min(n_items, n_users) - 1), random_state=seed)
        return svd.fit_transform(seen).astype(np.float32), "co-occurrence"
    return np.asarray(catalog.genre_matrix, dtype=np.float32), "genres"


def _top_genres(catalog: Catalog, members: np.ndarray, overall: np.ndarray, limit: int = 3) -> list[str]:
    if catalog.genre_matrix.shape[1] == 0 or len(members) == 0:
        return []
    share = catalog.genre_matrix[members].mean(axis=0).astype(np.float64)
    lift = share / np.maximum(overall, 1e-9)
    score = share * lift
    order = [int(j) for j in np.argsort(-score, kind="stable") if share[j] >= 0.2]
    return [catalog.genre_names[j] for j in order[:limit]]


def taste_groups(model: Recommender, catalog: Catalog, counts: np.ndarray, n_groups: int = 8, *,
                 vectors: np.ndarray | None = None, candidates: int = CANDIDATES, per_group: int = PER_GROUP,
                 seed: int = 0) -> list[TasteGroup]:
    """Cluster the `candidates` most-rated movies into `n_groups` taste groups.

    Args:
        model: the fitted model (its movie vectors, see `movie_vectors`).
        catalog: titles and genres in item index order.
        counts: ratings per item index, shape (n_items,).
        n_groups: how many groups (at most the number of candidate movies).
        vectors: movie vectors to cluster, shape (n_items, d) (default: `movie_vectors`).
        candidates: how many of the most-rated movies are clustered.
        per_group: representative movies kept per group.
        seed: k-means seed (same model, same seed, same groups).
    """
    from sklearn.cluster import KMeans

    counts = np.asarray(counts, dtype=np.int64)
    if vectors is None:
        vectors, _ = movie_vectors(model, catalog, seed=seed)
    pool = np.argsort(-counts, kind="stable")[: min(candidates, len(counts))]
    n_groups = max(1, min(int(n_groups), len(pool)))
    x = _unit(vectors[pool])
    labels = KMeans(n_clusters=n_groups, n_init=4, random_state=seed).fit_predict(x)
    popularity = np.log1p(counts[pool].astype(np.float64))
    popularity /= max(popularity.max(), 1e-12)
    overall = catalog.genre_matrix[pool].mean(axis=0).astype(np.float64) if catalog.genre_matrix.shape[1] else None
    found = []
    for g in range(n_groups):
        members = np.flatnonzero(labels == g)
        if len(members) == 0:
            continue
        centre = _unit(x[members].mean(axis=0, keepdims=True))[0]
        fit = x[members] @ centre + 0.5 * popularity[members]
        order = members[np.argsort(-fit, kind="stable")]
        core = pool[order[: 2 * per_group]]  # the group's most representative movies name it
        genres = _top_genres(catalog, core, overall) if overall is not None else []
        found.append((int(counts[pool[members]].sum()), pool[order[:per_group]], genres))
    found.sort(key=lambda f: -f[0])
    groups: list[TasteGroup] = []
    named: set[frozenset] = set()
    for gid, (_, movies, genres) in enumerate(found):
        label = " & ".join(genres[:2]) or "Mixed"
        if frozenset(genres[:2]) in named:  # "Action & Adventure" twice: tell them apart by a movie
            label = f"{label}, like {catalog.titles[movies[0]] or catalog.label(int(movies[0]))}"
        named.add(frozenset(genres[:2]))
        groups.append(TasteGroup(group_id=gid, label=label, genres=genres, movie_idx=np.asarray(movies, dtype=np.int64)))
    return groups


__all__ = ["TasteGroup", "taste_groups", "movie_vectors", "CANDIDATES", "PER_GROUP"]

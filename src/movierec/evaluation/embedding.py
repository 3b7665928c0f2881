"""Do item embeddings mean something? Genre agreement among nearest neighbours.

For each movie, take its k nearest neighbours by the model's own movie-to-movie
similarity (`similar_items`; cosine of item embeddings for embedding models) and count the share that have at least one genre in common with it. The same
number with the genre lists shuffled across movies is the chance baseline: the gap
between the two is how much the embeddings cluster by genre.
"""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Catalog
from movierec.errors import CapabilityError, ConfigError


def _neighbour_agreement(neighbours: np.ndarray, genre_matrix: np.ndarray) -> float:
    """Mean over movies of the share of their neighbours sharing a genre, shapes (n, k), (n, g)."""
    g = genre_matrix.astype(np.float32)
    shared = np.einsum("ng,nkg->nk", g, g[neighbours]) > 0
    return float(shared.mean())


def genre_agreement(model, catalog: Catalog, k: int = 10, seed: int = 0, min_ratings: int = 20) -> dict:
    """Genre agreement of each movie's k most similar movies, against a shuffled baseline.

    Args:
        model: a fitted model that declares `similar_items` (its own movie-to-movie
            similarity is used, so item-kNN and embedding models are judged alike).
        catalog: genres in the model's item index order (e.g. `bundle.catalog` or the
            training Dataset's catalog); models hold no display data.
        k: neighbours per movie.
        seed: seeds the genre shuffle.
        min_ratings: only movies with at least this many training ratings take part
            (rarely rated movies keep embeddings close to their random start).

    Returns:
        {"agreement": share of neighbours sharing a genre, "shuffled": the same with
        genres permuted across the movies, "k", "n_movies", "min_ratings"}.

    Raises:
        CapabilityError: the model does not declare similar_items.
    """
    model.check_is_fitted()
    if not model.capabilities.similar_items:
        raise CapabilityError(f"Model {model.name!r} cannot find similar movies, so genre agreement does not apply.")
    genres = np.asarray(catalog.genre_matrix)
    if genres.shape[0] != model.n_items_:
        raise ConfigError("The catalog does not match the model's movies.")
    if genres.shape[1] == 0:
        raise ConfigError("The catalog has no genres, so genre agreement cannot be computed.")
    counts = np.asarray(model.seen_.sum(axis=0)).ravel()
    keep = np.flatnonzero((counts >= min_ratings) & (genres.sum(axis=1) > 0))
    if len(keep) <= k:
        raise ConfigError(f"Only {len(keep)} movies have {min_ratings}+ ratings and a genre; lower min_ratings or k.")
    sims = np.asarray(model.item_similarities(keep, among=keep), dtype=np.float32)
    np.fill_diagonal(sims, -np.inf)
    neighbours = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    g = genres[keep]
    shuffled = g[np.random.default_rng(seed).permutation(len(keep))]
    return {
        "agreement": _neighbour_agreement(neighbours, g),
        "shuffled": _neighbour_agreement(neighbours, shuffled),
        "k": int(k),
        "n_movies": int(len(keep)),
        "min_ratings": int(min_ratings),
    }

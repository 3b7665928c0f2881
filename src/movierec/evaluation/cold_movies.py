"""The cold-movie protocol: rank movies that no model has seen a single rating of.

`cold_movie_split` holds a seeded share of the movies out of training entirely: every
rating of a cold movie goes to the test part, no other rating does. The parts keep the
parent Dataset's IdMaps, so the cold movies are still known to every model by ID (their
metadata sits in the shared catalog), only with zero training interactions.

Evaluation ranks ONLY the cold movies for each test user (`cold_candidates`, a boolean
mask over movie indices; what the registered protocol's `candidates` gives `compare` and
`tune`), through the standard runner (`evaluation.runner`): recall@K,
NDCG@K and HR@K of the cold movies a user rated >= the relevance threshold. A test user
is a user with a training history and at least one relevant rating of a cold movie.

With ``validation=True`` a second, disjoint share of movies is carved from the training
movies as validation cold movies (their ratings form ``split.validation``): tune on
``split.train`` -> ``split.validation`` with `validation_candidates`, never on the test
movies. ``split.train_full()`` (train + validation) is what a model is refit on.
"""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Dataset
from movierec.data.split import Split, drop_unseen
from movierec.errors import ConfigError

#: the name the cold-movies protocol is registered under (`evaluation.protocols.ColdMovies`,
#: which splits and picks candidates through this module) and the default cold share
PROTOCOL = "cold-movies"
DEFAULT_FRACTION = 0.1


def _pick_movies(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(pool, size=n, replace=False))


def cold_movie_split(ds: Dataset, fraction: float = DEFAULT_FRACTION, seed: int = 0, *,
                     validation: bool = False, drop_unseen_users: bool = True) -> Split:
    """Hold a seeded share of the movies out of training entirely.

    Args:
        ds: the full Dataset.
        fraction: share of the rated movies that are cold (test), in (0, 0.5).
        seed: seed of the movie draw; equal seeds give equal splits.
        validation: also carve as many validation cold movies from the others
            (disjoint from the test ones), whose ratings form ``split.validation``.
        drop_unseen_users: drop test/validation ratings of users with no training
            interaction (they have no history to rank for); counted in
            ``info["dropped"]``. Cold movies themselves are never dropped.

    Returns:
        Split sharing `ds`'s IdMaps; ``info`` holds "protocol" ("cold-movies"),
        "fraction", "seed", "cold_items" (raw movie IDs of the test cold movies,
        sorted by index) and, with validation, "validation_cold_items".

    Raises:
        ConfigError: a fraction outside (0, 0.5) or too few rated movies to split.
    """
    if not 0 < float(fraction) < 0.5:
        raise ConfigError(f"The cold movies are a share of the movies in (0, 0.5), got {fraction!r}.")
    rated = np.flatnonzero(ds.item_counts())
    if len(rated) < (3 if validation else 2):
        raise ConfigError(f"{ds.name} has too few rated movies to hold some out as cold movies.")
    rng = np.random.default_rng(seed)
    n_cold = max(1, int(round(len(rated) * fraction)))
    cold = _pick_movies(rated, n_cold, rng)
    val_cold = np.empty(0, dtype=np.int64)
    if validation:
        val_cold = _pick_movies(np.setdiff1d(rated, cold), n_cold, rng)
    labels = np.zeros(ds.n_ratings, dtype=np.int8)
    labels[np.isin(ds.item_idx, val_cold)] = 1
    labels[np.isin(ds.item_idx, cold)] = 2
    train = ds.subset(labels == 0, name=f"{ds.name}:train")
    if train.n_ratings == 0:
        raise ConfigError(f"Holding out {fraction:g} of {ds.name}'s movies leaves no training ratings; use a smaller share.")
    info = {"protocol": PROTOCOL, "fraction": float(fraction), "seed": int(seed), "holdout": float(fraction),
            "n_cold_items": int(len(cold)), "cold_items": ds.items.raw(cold).tolist()}
    if validation:
        info["n_validation_cold_items"] = int(len(val_cold))
        info["validation_cold_items"] = ds.items.raw(val_cold).tolist()
    split = Split(train=train, test=ds.subset(labels == 2, name=f"{ds.name}:test"),
                  validation=ds.subset(labels == 1, name=f"{ds.name}:validation") if validation else None, info=info)
    return drop_unseen(split, users=True, items=False) if drop_unseen_users else split


def _mask(split: Split, key: str) -> np.ndarray:
    if key not in split.info:
        raise ConfigError(f"This split has no {key.replace('_', ' ')}; make it with cold_movie_split.")
    mask = np.zeros(split.train.n_items, dtype=bool)
    mask[split.train.items.lookup(np.asarray(split.info[key]))] = True
    return mask


def is_cold_movie_split(split: Split) -> bool:
    """Whether `split` was made by `cold_movie_split` (it carries its cold movies)."""
    return "cold_items" in split.info


def cold_candidates(split: Split) -> np.ndarray:
    """Boolean mask over movie indices, shape (n_items,): True for the test cold movies
    (the candidates every test user's ranking is restricted to)."""
    return _mask(split, "cold_items")


def validation_candidates(split: Split) -> np.ndarray:
    """Boolean mask over movie indices, shape (n_items,): True for the validation cold
    movies (the candidates when tuning on ``split.validation``)."""
    return _mask(split, "validation_cold_items")


def evaluate_cold(model, split: Split, ks=(20,), metrics=("recall", "ndcg", "hr"),
                  relevance_threshold: float | None = 4.0, part: str = "test"):
    """Rank only the cold movies of `part` for its users (see module docstring).

    Args:
        model: a fitted Recommender, fitted on ``split.train`` (part "validation") or
            ``split.train_full()`` (part "test").
        split: from `cold_movie_split`.
        ks: cut-offs.
        metrics: accuracy metric names of the runner.
        relevance_threshold: ratings >= this are relevant (None: every rating).
        part: "test" or "validation".

    Returns:
        `evaluation.runner.RankingResult` (per-user frame with raw user IDs, summary).
    """
    from movierec.evaluation.runner import evaluate_ranking

    if part == "test":
        history, target, mask = split.train_full(), split.test, cold_candidates(split)
    elif part == "validation" and split.validation is not None:
        history, target, mask = split.train, split.validation, validation_candidates(split)
    else:
        raise ConfigError(f"part is 'test' or 'validation' (of a split made with validation=True), got {part!r}.")
    return evaluate_ranking(model, history, target, ks=ks, metrics=metrics, relevance_threshold=relevance_threshold,
                            candidates=mask)


__all__ = ["DEFAULT_FRACTION", "PROTOCOL", "cold_candidates", "cold_movie_split", "evaluate_cold",
           "is_cold_movie_split", "validation_candidates"]

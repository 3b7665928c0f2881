"""Non-personalised baselines every model must beat: random, ID order, most popular,
popular lately.

All follow the Recommender contract (see `movierec.models.base`): hyperparameters in
`__init__`, `fit(train) -> self`, scores for every item from `_score`, state hooks. The
popularity models also serve a new person (`fold_in`): the same popular movies, minus
the ones the person gave.
"""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models._memory import base_fit_bytes
from movierec.models.base import Capabilities, Recommender


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fast, well-mixed 64-bit hash (SplitMix64 finaliser), elementwise on uint64."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


class RandomRecommender(Recommender):
    """Ranks movies uniformly at random (the floor every model must clear).

    The score of (user, item) is a hash of (seed, user index, item index), so a user's
    ranking is the same however users are batched, and changes with `seed`.

    Args:
        seed: random seed.
    """

    name = "random"

    def __init__(self, seed: int = 42):
        self.seed = seed

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """Only what every fit keeps (scores are hashed at query time)."""
        return base_fit_bytes(n_users, n_ratings)

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        self.n_items_fit_ = train.n_items

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        u = np.asarray(user_idx, dtype=np.uint64)[:, None]
        i = np.arange(len(self.items_), dtype=np.uint64)[None, :]
        with np.errstate(over="ignore"):
            key = _splitmix64(np.uint64(self.seed & 0xFFFFFFFF) * np.uint64(0x100000001B3)
                              + u * np.uint64(0x1000003) + _splitmix64(i))
        # top 24 bits -> exact float32 uniform in [0, 1)
        return ((key >> np.uint64(40)).astype(np.float32)) * np.float32(1.0 / (1 << 24))

    def _state(self) -> dict[str, np.ndarray]:
        return {"n_items": np.array([len(self.items_)], dtype=np.int64)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.n_items_fit_ = int(state["n_items"][0])


class IdOrderRecommender(Recommender):
    """Ranks movies by raw movie ID, lowest first: the same list for everyone, learned from nothing.

    Item indices follow the sorted raw IDs (`movierec.data.idmap.IdMap`), so the score of
    item index i is ``n_items - i``. This is the order `pop` falls back to among movies with
    equal counts and equal mean ratings, e.g. among movies nobody has rated yet (the
    `cold-movies` protocol). MovieLens numbered older, better-known movies first, so the
    order carries information a new movie's own data would not: a model that ranks new
    movies should be compared with this list, not mistaken for having beaten popularity.
    """

    name = "id-order"

    def __init__(self) -> None:
        pass

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """Only what every fit keeps (the order is the item index)."""
        return base_fit_bytes(n_users, n_ratings)

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        self.n_items_fit_ = train.n_items

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        n = int(self.n_items_fit_)
        # exact in float32 for fewer than 2**24 movies
        order = np.arange(n, 0, -1, dtype=np.float32)
        return np.broadcast_to(order, (len(user_idx), n)).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"n_items": np.array([self.n_items_fit_], dtype=np.int64)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.n_items_fit_ = int(state["n_items"][0])


def _popularity(train: Dataset, min_rating: float | None) -> np.ndarray:
    keep = np.ones(train.n_ratings, dtype=bool) if min_rating is None else train.rating >= min_rating
    return np.bincount(train.item_idx[keep], minlength=train.n_items).astype(np.float64)


def _with_tiebreak(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """primary + secondary scaled into [0, 0.5): ties on primary are broken by secondary,
    and remaining ties by the lower item index (so rankings are deterministic)."""
    n = len(primary)
    sec = secondary / (2.0 * (secondary.max() + 1.0)) if n else secondary
    idx = np.arange(n, dtype=np.float64)
    return primary + sec + (1.0 - idx / max(n, 1)) * 1e-9


class PopularRecommender(Recommender):
    """Most popular movies first: score = number of training interactions of the movie
    (with rating >= `min_rating` when given); ties go to the higher mean rating.

    Movies still tied (equal count and mean, e.g. every movie with no training
    interaction) keep raw-ID order, lowest first: that is the `id-order` baseline. Among
    new movies (the `cold-movies` protocol) this model's list *is* `id-order`'s, so its
    figure there measures MovieLens's numbering, not popularity.

    Args:
        min_rating: only count interactions rated at least this (None: count all).
    """

    name = "pop"
    capabilities = Capabilities(fold_in=True)

    def __init__(self, min_rating: float | None = None):
        self.min_rating = min_rating

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps, a keep-mask per rating and a few float64 counts per movie."""
        return base_fit_bytes(n_users, n_ratings) + n_ratings + 6 * 8 * n_items

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        counts = _popularity(train, self.min_rating)
        sums = np.bincount(train.item_idx, weights=train.rating, minlength=train.n_items)
        all_counts = np.bincount(train.item_idx, minlength=train.n_items)
        mean = np.divide(sums, all_counts, out=np.zeros(train.n_items), where=all_counts > 0)
        self.popularity_ = counts
        self.scores_ = _with_tiebreak(counts, mean - mean.min() if len(mean) else mean).astype(np.float64)
        self._rank_cache = None

    def _ranks(self) -> np.ndarray:
        """Popularity ranks as scores, shape (n_items,): n_items for the most popular ... 1.

        float32 could not tell apart counts that differ only in the tie-break term, so
        ranks (exact in float32) stand in for the raw scores.
        """
        if getattr(self, "_rank_cache", None) is None or len(self._rank_cache) != len(self.scores_):
            ranks = np.empty(len(self.scores_), dtype=np.float32)
            ranks[np.argsort(-self.scores_, kind="stable")] = np.arange(len(ranks), 0, -1, dtype=np.float32)
            self._rank_cache = ranks
        return self._rank_cache

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        ranks = self._ranks()
        return np.broadcast_to(ranks, (len(user_idx), len(ranks))).copy()

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, None]:
        """A new person gets the popularity scores (the base leaves out the movies given).

        No `dislikes`: the list is the same for everyone, so a disliked movie has nothing
        to change; it is dropped like every movie the person gives.
        """
        return self._ranks().copy(), None

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_, "scores": self.scores_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.popularity_ = np.asarray(state["popularity"], dtype=np.float64)
        self.scores_ = np.asarray(state["scores"], dtype=np.float64)
        self._rank_cache = None


class PopularInWindow(PopularRecommender):
    """Most popular within the last `window_days` of the training data (trends, not
    classics): score = interactions in the window; ties (and movies with none in the
    window) fall back to all-time popularity. Without timestamps it is plain popularity.

    Args:
        window_days: length of the window that ends at the latest training interaction.
        min_rating: only count interactions rated at least this (None: count all).
    """

    name = "pop-recent"

    def __init__(self, window_days: float = 30.0, min_rating: float | None = None):
        self.window_days = window_days
        self.min_rating = min_rating

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """`pop`'s, plus the window's copy of the interactions (user, movie, rating, time)."""
        return super().memory_estimate(n_users, n_items, n_ratings) + 32 * n_ratings

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        if not self.window_days or self.window_days <= 0:
            raise ConfigError(f"window_days must be positive, got {self.window_days!r}.")
        overall = _popularity(train, self.min_rating)
        if train.has_timestamps and train.n_ratings:
            start = int(train.timestamp.max()) - int(self.window_days * 86400)
            recent_train = train.subset(train.timestamp >= start)
            recent = _popularity(recent_train, self.min_rating)
        else:
            recent = overall
        self.popularity_ = recent
        self.scores_ = _with_tiebreak(recent, overall)
        self._rank_cache = None


__all__ = ["RandomRecommender", "IdOrderRecommender", "PopularRecommender", "PopularInWindow"]

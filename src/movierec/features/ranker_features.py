"""Context features of the two-stage ranker's second stage, fitted on one history.

`RankerFeatures.fit(history)` reads only the interactions it is given (the generators'
training data), so the features of a candidate never see the ratings it is labelled by:

* movie: log popularity, its recent trend (share of the latest `recent_share` of the
  history's interactions against its overall share), log recent popularity, mean rating
  (shrunk to the global mean), age in years (the history's last year minus the release
  year; NaN when unknown) and days since its first rating here (NaN when never rated);
* person: log activity, mean rating, days since their last rating (all NaN without
  history) and a genre profile (the unit-normalised sum of their movies' genres);
* pair: the cosine between the person's genre profile and the movie's genres.

"Now" is the latest timestamp of the history. Everything is kept as numeric arrays
(`state()` / `from_state()`), so a model saves the features with its own state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data.dataset import Dataset

#: names of the columns `RankerFeatures.pairs` returns, in order
CONTEXT_FEATURES: tuple[str, ...] = (
    "movie_log_pop", "movie_trend", "movie_log_recent_pop", "movie_mean_rating", "movie_age_years",
    "movie_days_since_first", "user_log_activity", "user_mean_rating", "user_days_since_last",
    "genre_match",
)

_DAY = 86400.0


@dataclass
class RankerFeatures:
    """Per-movie and per-person statistics of one history, in index order.

    Attributes:
        item_stats: float32, shape (n_items, 6): the movie columns of `CONTEXT_FEATURES`.
        user_stats: float32, shape (n_users, 3): the person columns.
        item_genres: float32, shape (n_items, n_genres), unit-normalised rows (zeros
            for a movie without genres).
        user_genres: float32, shape (n_users, n_genres), unit-normalised rows.
    """

    item_stats: np.ndarray
    user_stats: np.ndarray
    item_genres: np.ndarray
    user_genres: np.ndarray

    @classmethod
    def fit(cls, history: Dataset, recent_share: float = 0.1, shrinkage: float = 10.0) -> "RankerFeatures":
        """The features of `history` (the interactions the generators were fitted on).

        Args:
            history: training interactions; its IdMaps define the index spaces.
            recent_share: the latest share of interactions that counts as recent.
            shrinkage: pseudo-ratings at the global mean added to every movie's mean.
        """
        n_users, n_items = history.n_users, history.n_items
        ts = history.timestamp.astype(np.float64)
        now = float(ts.max()) if history.n_ratings else 0.0
        counts = np.bincount(history.item_idx, minlength=n_items).astype(np.float64)
        n_recent = max(1, int(round(history.n_ratings * recent_share)))
        recent = np.argsort(ts, kind="stable")[-n_recent:]
        recent_counts = np.bincount(history.item_idx[recent], minlength=n_items).astype(np.float64)
        share = n_recent / max(history.n_ratings, 1)
        trend = np.log((recent_counts + 1.0) / (counts * share + 1.0))
        rating = history.rating.astype(np.float64)
        global_mean = float(rating.mean()) if history.n_ratings else 0.0
        rating_sums = np.bincount(history.item_idx, weights=rating, minlength=n_items)
        item_mean = (rating_sums + shrinkage * global_mean) / (counts + shrinkage)
        years = history.catalog.years.astype(np.float64)
        now_year = float(np.datetime64(int(now), "s").astype("datetime64[Y]").astype(int) + 1970)
        age = np.where(years > 0, now_year - years, np.nan)
        first = np.full(n_items, np.inf)
        np.minimum.at(first, history.item_idx, ts)
        days_first = np.where(np.isfinite(first), (now - first) / _DAY, np.nan)
        item_stats = np.stack([np.log1p(counts), trend, np.log1p(recent_counts), item_mean, age, days_first], axis=1)

        ucounts = np.bincount(history.user_idx, minlength=n_users).astype(np.float64)
        usum = np.bincount(history.user_idx, weights=rating, minlength=n_users)
        with np.errstate(invalid="ignore", divide="ignore"):
            umean = np.where(ucounts > 0, usum / ucounts, np.nan)
        last = np.full(n_users, -np.inf)
        np.maximum.at(last, history.user_idx, ts)
        days_last = np.where(np.isfinite(last), (now - last) / _DAY, np.nan)
        user_stats = np.stack([np.where(ucounts > 0, np.log1p(ucounts), np.nan), umean, days_last], axis=1)

        genres = history.catalog.genre_matrix.astype(np.float64)
        item_genres = _unit_rows(genres)
        user_genres = np.zeros((n_users, genres.shape[1]))
        if genres.shape[1]:
            np.add.at(user_genres, history.user_idx, genres[history.item_idx])
        return cls(item_stats=item_stats.astype(np.float32), user_stats=user_stats.astype(np.float32),
                   item_genres=item_genres.astype(np.float32), user_genres=_unit_rows(user_genres).astype(np.float32))

    def pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """The context features of (person, movie) index pairs, float32, shape (n, 10),
        columns as `CONTEXT_FEATURES`."""
        u = np.asarray(user_idx, dtype=np.int64)
        i = np.asarray(item_idx, dtype=np.int64)
        if self.item_genres.shape[1]:
            match = np.einsum("ij,ij->i", self.user_genres[u], self.item_genres[i])
        else:
            match = np.full(len(u), np.nan, dtype=np.float32)
        return np.concatenate([self.item_stats[i], self.user_stats[u], match[:, None]], axis=1).astype(np.float32)

    def new_person_pairs(self, given_idx: np.ndarray, ratings: np.ndarray | None,
                         item_idx: np.ndarray) -> np.ndarray:
        """The context features of a new person (not in the history) with movies `item_idx`,
        float32, shape (n, 10), columns as `CONTEXT_FEATURES`.

        The person's columns come from what they gave, as `fit` computes them for a known
        person: log activity from the number of movies, mean rating from `ratings` (NaN
        when only liked movies are known), 0 days since their last rating (they rate now),
        and the genre profile of the movies given.

        Args:
            given_idx: item indices of the movies the person gave, shape (g,).
            ratings: their ratings, shape (g,), or None.
            item_idx: the candidate movies' item indices, shape (n,).
        """
        given = np.asarray(given_idx, dtype=np.int64)
        i = np.asarray(item_idx, dtype=np.int64)
        mean = float(np.mean(ratings)) if ratings is not None and len(given) else np.nan
        stats = np.array([np.log1p(len(given)) if len(given) else np.nan, mean, 0.0], dtype=np.float32)
        if self.item_genres.shape[1]:
            # item_genres rows are unit-normalised; the history's profile sums the raw genre flags
            flags = (self.item_genres[given] > 0).astype(np.float64).sum(axis=0, keepdims=True)
            match = self.item_genres[i] @ _unit_rows(flags)[0].astype(np.float32)
        else:
            match = np.full(len(i), np.nan, dtype=np.float32)
        return np.concatenate([self.item_stats[i], np.broadcast_to(stats, (len(i), 3)), match[:, None]],
                              axis=1).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """The arrays to save (see `from_state`)."""
        return {"item_stats": self.item_stats, "user_stats": self.user_stats,
                "item_genres": self.item_genres, "user_genres": self.user_genres}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> "RankerFeatures":
        """The features saved by `state()`."""
        return cls(**{key: np.asarray(state[key], dtype=np.float32)
                      for key in ("item_stats", "user_stats", "item_genres", "user_genres")})


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


__all__ = ["CONTEXT_FEATURES", "RankerFeatures"]

"""Rating baselines: the global mean and a regularised user + item bias model.

Both predict ratings (`capabilities.predicts_ratings`), so they share the RMSE protocol
with the factor models and give the floor any learned model has to beat. The bias model
also folds in a new person (their ridge user bias, as in training).
"""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Dataset
from movierec.models._memory import base_fit_bytes
from movierec.models.base import Capabilities, Recommender
from movierec.models.space import Float


class GlobalMean(Recommender):
    """Predicts the mean training rating for every (user, movie) pair.

    Ranking by a constant is meaningless, so `_score` breaks ties by each movie's
    mean training rating shrunk towards the global mean (a tiny term that never changes
    the predicted rating's RMSE but gives `recommend` a stable, sensible order).
    """

    name = "global-mean"
    capabilities = Capabilities(predicts_ratings=True)

    def __init__(self) -> None:
        pass

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps and a few float64 arrays per movie (counts, sums, ranks)."""
        return base_fit_bytes(n_users, n_ratings) + 6 * 8 * n_items

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        self.global_mean_ = float(np.mean(train.rating, dtype=np.float64))
        counts = train.item_counts().astype(np.float64)
        sums = np.bincount(train.item_idx, weights=train.rating, minlength=train.n_items)
        shrunk = (sums + 10.0 * self.global_mean_) / (counts + 10.0)
        # order-preserving tie-break in [0, 1e-3): ranks movies, leaves ratings untouched to 3 decimals
        rank = np.argsort(np.argsort(shrunk, kind="stable"), kind="stable")
        self.tiebreak_ = (rank / max(len(rank), 1) * 1e-3).astype(np.float32)

    def _predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        return np.full(len(user_idx), self.global_mean_, dtype=np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        row = (self.global_mean_ + self.tiebreak_).astype(np.float32)
        return np.broadcast_to(row, (len(user_idx), len(row))).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"global_mean": np.array([self.global_mean_], dtype=np.float64), "tiebreak": self.tiebreak_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.global_mean_ = float(state["global_mean"][0])
        self.tiebreak_ = np.asarray(state["tiebreak"], dtype=np.float32)


class BiasOnly(Recommender):
    """r̂(u, i) = μ + b_u + b_i with ridge-regularised biases, solved by alternating
    closed-form updates (each step is the exact minimiser for one side given the other).

    Minimises Σ (r − μ − b_u − b_i)² + reg_user Σ b_u² + reg_item Σ b_i², where μ is the
    training mean. Each half step sets b_i = Σ_u (r − μ − b_u) / (n_i + reg_item) and
    likewise for users; a few sweeps converge (the problem is convex).

    Args:
        reg_user: ridge penalty on user biases (in "pseudo-ratings at the mean").
        reg_item: ridge penalty on movie biases.
        n_iter: alternating sweeps.
    """

    name = "bias"
    capabilities = Capabilities(predicts_ratings=True, fold_in=True, dislikes=True)
    search_space = {
        "reg_user": Float(0.1, 50.0, log=True),
        "reg_item": Float(0.1, 50.0, log=True),
    }

    def __init__(self, reg_user: float = 5.0, reg_item: float = 5.0, n_iter: int = 15) -> None:
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.n_iter = n_iter

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps, four float64 temporaries per rating (the ratings and the
        residuals of a sweep) and four float64 arrays per user and per movie."""
        return base_fit_bytes(n_users, n_ratings) + 4 * 8 * n_ratings + 4 * 8 * (n_users + n_items)

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        u, i = train.user_idx, train.item_idx
        r = train.rating.astype(np.float64)
        mu = float(r.mean())
        n_u = np.bincount(u, minlength=train.n_users).astype(np.float64)
        n_i = np.bincount(i, minlength=train.n_items).astype(np.float64)
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        for _ in range(max(1, int(self.n_iter))):
            bi = np.bincount(i, weights=r - mu - bu[u], minlength=train.n_items) / (n_i + self.reg_item)
            bu = np.bincount(u, weights=r - mu - bi[i], minlength=train.n_users) / (n_u + self.reg_user)
        self.global_mean_ = mu
        self.user_bias_ = bu.astype(np.float32)
        self.item_bias_ = bi.astype(np.float32)

    def _clip(self, values: np.ndarray) -> np.ndarray:
        if self.rating_scale_:
            low, high = self.rating_scale_
            values = np.clip(values, low, high)
        return values.astype(np.float32)

    def _predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        return self._clip(self.global_mean_ + self.user_bias_[user_idx] + self.item_bias_[item_idx])

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        # unclipped, so movies above the top of the scale still rank by their bias
        return (self.global_mean_ + self.user_bias_[user_idx][:, None] + self.item_bias_[None, :]).astype(np.float32)

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, None]:
        """Scores of a new person: their ridge user bias from `ratings`, exactly the
        training update with the movie biases held fixed; liked movies alone (no ratings)
        carry no information about the bias, so they give the movie-bias ranking (b_u = 0).
        Either way the ranking over movies is the movie-bias ranking.

        Declares `dislikes`: the bias is a regression on every rating, so a low one lowers
        every predicted rating, as for a training user (dropping it would predict a person
        who disliked everything to rate like one who liked everything); it cannot single
        out movies like the disliked one, and the ranking never changes.
        """
        bu = 0.0
        if ratings is not None:
            resid = ratings - self.global_mean_ - self.item_bias_[item_idx].astype(np.float64)
            bu = float(resid.sum() / (len(ratings) + self.reg_user))
        bu32 = np.float32(bu)
        return (self.global_mean_ + bu32 + self.item_bias_).astype(np.float32), None

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "global_mean": np.array([self.global_mean_], dtype=np.float64),
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.global_mean_ = float(state["global_mean"][0])
        self.user_bias_ = np.asarray(state["user_bias"], dtype=np.float32)
        self.item_bias_ = np.asarray(state["item_bias"], dtype=np.float32)

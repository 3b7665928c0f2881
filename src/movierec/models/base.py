"""The model contract: every recommender fits on a Dataset and answers in raw IDs.

Subclasses implement `_fit(train, validation)` and `_score(user_idx)`; the base class
implements ID mapping, seen-item exclusion, batched top-k, similar items, and
save/load of a self-contained model folder.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from movierec.data.dataset import Catalog, Dataset
from movierec.data.idmap import IdMap
from movierec.errors import ConfigError, NotFittedError, UnknownItemError, UnknownUserError

#: rows scored at once when ranking, so memory stays bounded for large catalogs
SCORE_CHUNK_ELEMENTS = 20_000_000


@dataclass
class Recommendations:
    """Top-k lists for a batch of users, in raw IDs.

    Attributes:
        user_ids: raw user IDs, shape (n,).
        item_ids: raw movie IDs, shape (n, k), best first.
        scores: model scores, float32, shape (n, k).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (user, rank)."""
        n, k = self.item_ids.shape
        return pd.DataFrame(
            {
                "user": np.repeat(self.user_ids, k),
                "rank": np.tile(np.arange(1, k + 1), n),
                "item": self.item_ids.ravel(),
                "score": self.scores.ravel(),
            }
        )


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a score matrix, best first: (indices, values), shape (n, k).

    Uses torch.topk (multi-threaded, ~10x faster than argpartition on wide rows);
    the result is deterministic for the same input.
    """
    n, m = scores.shape
    k = min(k, m)
    if k == 0:
        return np.empty((n, 0), dtype=np.int64), np.empty((n, 0), dtype=scores.dtype)
    values, indices = torch.from_numpy(np.ascontiguousarray(scores)).topk(k, dim=1, sorted=True)
    return indices.numpy(), values.numpy()


class Recommender(ABC):
    """Base class of all movierec models.

    Conventions (as in scikit-learn): the constructor stores hyperparameters only;
    `fit` returns self; learned state lives in attributes ending in `_`.
    """

    #: short name used by the CLI and the registry
    name: ClassVar[str] = "base"
    #: True for models that predict ratings (RMSE makes sense)
    predicts_ratings: ClassVar[bool] = False

    # -- hyperparameters --------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as given (JSON-serialisable values)."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self" and hasattr(self, p)}

    def set_params(self, **params: Any) -> "Recommender":
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter {key!r}; valid: {', '.join(sorted(valid))}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ----------------------------------------------------------------------
    def fit(self, train: Dataset, validation: Dataset | None = None) -> "Recommender":
        """Learn from `train`; some models use `validation` for early stopping only."""
        if train.n_ratings == 0:
            raise ConfigError("Cannot fit on an empty training set.")
        self.users_: IdMap = train.users
        self.items_: IdMap = train.items
        self.catalog_: Catalog = train.catalog
        self.seen_: sp.csr_matrix = train.to_csr("ones")
        self.rating_scale_ = train.rating_scale
        self.data_fingerprint_ = train.fingerprint()
        try:
            self._fit(train, validation)
        except BaseException:
            # a failed fit leaves an unfitted model, never a half-fitted one
            for attr in ("users_", "items_", "catalog_", "seen_", "rating_scale_", "data_fingerprint_"):
                self.__dict__.pop(attr, None)
            raise
        return self

    @abstractmethod
    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        """Learn the model's state from `train` (IdMaps and seen items are already set)."""

    @abstractmethod
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores of every item for the given user indices, shape (len(user_idx), n_items)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "users_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(train) first.")

    @property
    def n_items_(self) -> int:
        self._check_fitted()
        return len(self.items_)

    # -- queries ----------------------------------------------------------------------
    def user_index(self, user_ids) -> np.ndarray:
        self._check_fitted()
        return self.users_.lookup(user_ids)

    def item_index(self, item_ids) -> np.ndarray:
        self._check_fitted()
        return self.items_.lookup(item_ids)

    def score(self, user_ids) -> np.ndarray:
        """Scores of every movie (in item index order) for raw user IDs, shape (n, n_items)."""
        return self._score(self.user_index(user_ids))

    def rank_indices(
        self,
        user_idx: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores for user indices, scored in memory-bounded chunks.

        Args:
            user_idx: user indices, shape (n,).
            k: list length.
            exclude: users x items matrix whose non-zeros are removed from the candidates.
            candidates: boolean mask over items (shape (n_items,)) of allowed items.

        Returns:
            (indices, scores), each shape (n, k'); k' = min(k, n_items). Slots beyond the
            number of allowed items hold index -1 and score -inf.
        """
        self._check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        n_items = len(self.items_)
        kk = min(k, n_items)
        out_idx = np.full((len(user_idx), kk), -1, dtype=np.int64)
        out_val = np.full((len(user_idx), kk), -np.inf, dtype=np.float32)
        chunk = max(1, SCORE_CHUNK_ELEMENTS // max(n_items, 1))
        for start in range(0, len(user_idx), chunk):
            rows = user_idx[start : start + chunk]
            scores = np.asarray(self._score(rows), dtype=np.float32).copy()
            if candidates is not None:
                scores[:, ~candidates] = -np.inf
            if exclude is not None:
                sub = exclude[rows]
                r, c = sub.nonzero()
                scores[r, c] = -np.inf
            idx, val = top_k(scores, kk)
            idx = np.where(np.isfinite(val), idx, -1)
            out_idx[start : start + len(rows)] = idx
            out_val[start : start + len(rows)] = val
        return out_idx, out_val

    def recommend(
        self,
        user_ids,
        k: int = 10,
        exclude_seen: bool = True,
        candidates=None,
    ) -> Recommendations:
        """Top-k movies for each raw user ID, scoring every movie.

        Args:
            user_ids: raw user IDs, scalar or shape (n,).
            k: how many movies per user (>= 1).
            exclude_seen: leave out movies the user interacted with in training.
            candidates: optional raw movie IDs to choose from.

        Raises:
            UnknownUserError: for a user ID the model has never seen.
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a positive whole number, got {k!r}.")
        self._check_fitted()
        user_ids = np.atleast_1d(np.asarray(user_ids))
        uidx = self.user_index(user_ids)
        mask = None
        if candidates is not None:
            mask = np.zeros(len(self.items_), dtype=bool)
            mask[self.item_index(candidates)] = True
        idx, val = self.rank_indices(uidx, k, self.seen_ if exclude_seen else None, mask)
        k_eff = int((idx >= 0).sum(axis=1).min()) if len(idx) else 0
        idx, val = idx[:, :k_eff], val[:, :k_eff]
        return Recommendations(user_ids=user_ids, item_ids=self.items_.raw(idx), scores=val)

    def similar_items(self, item_ids, k: int = 10) -> Recommendations:
        """Most similar movies by cosine similarity of item embeddings.

        Returns Recommendations whose `user_ids` hold the query movie IDs.
        """
        self._check_fitted()
        emb = getattr(self, "item_embeddings_", None)
        if emb is None:
            raise ConfigError(f"{type(self).__name__} has no item embeddings to compare.")
        item_ids = np.atleast_1d(np.asarray(item_ids))
        qidx = self.item_index(item_ids)
        emb = np.asarray(emb, dtype=np.float32)
        normed = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        sims = normed[qidx] @ normed.T
        sims[np.arange(len(qidx)), qidx] = -np.inf
        idx, val = top_k(sims, min(k, len(self.items_) - 1))
        return Recommendations(user_ids=item_ids, item_ids=self.items_.raw(idx), scores=val)

    def predict(self, user_ids, item_ids) -> np.ndarray:
        """Predicted ratings for pairs of raw IDs, shape (n,). Rating models only."""
        if not self.predicts_ratings:
            raise ConfigError(f"{type(self).__name__} ranks movies; it does not predict ratings.")
        self._check_fitted()
        u = self.users_.lookup(user_ids)
        i = self.items_.lookup(item_ids)
        if len(u) != len(i):
            raise ConfigError("user_ids and item_ids must have the same length.")
        return self._predict(u, i)

    def _predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Ratings for index pairs; rating models (predicts_ratings = True) override it."""
        raise ConfigError(f"{type(self).__name__} ranks movies; it does not predict ratings.")

    # -- persistence ------------------------------------------------------------------
    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (names -> arrays)."""

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore the arrays written by `_state`."""

    def save(self, path: str | Path, metrics: dict | None = None) -> Path:
        """Write a self-contained model folder (atomically). See `movierec.bundle`."""
        from movierec.bundle import save_model

        return save_model(self, Path(path), metrics=metrics)

    @staticmethod
    def load(path: str | Path) -> "Recommender":
        from movierec.bundle import load_model

        return load_model(Path(path))


__all__ = [
    "Recommender",
    "Recommendations",
    "top_k",
    "NotFittedError",
    "UnknownUserError",
    "UnknownItemError",
]

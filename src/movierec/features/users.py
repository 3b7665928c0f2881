"""User features fitted on a training Dataset: demographics and behaviour statistics.

The strongest user signal, the pooled embeddings of the movies in a person's recent
history (recency-weighted mean), is computed inside a model's network from its own movie
embeddings; this module holds what does not need the network:

* demographics where the format has them (`Dataset.user_features`: age, gender,
  occupation for ML-100K and ML-1M): scaled age with an unknown flag, gender and
  occupation one-hot over the vocabularies of training users (unknown values: all zeros);
* behaviour statistics of a history: log count (scaled by the largest training count)
  and mean rating (standardised by the training ratings; 0 when ratings are unknown).
  Genre preferences come from pooling the movies' genre columns the same way as the
  embeddings (see `movierec.models.two_tower`), so they never see a held-out movie.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError


def _str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value).strip()


@dataclass
class UserFeatures:
    """Fitted user feature encoders and the demographic matrix of every training user.

    Attributes:
        has_demographics: whether the training data had age/gender/occupation.
        age_mean, age_std: statistics of the training users' ages.
        genders, occupations: vocabularies (one-hot column order).
        rating_mean, rating_std: statistics of the training ratings.
        log_count_scale: log1p of the largest training history length.
        matrix: float32, shape (n_users, n_demographic_features) (0 columns without
            demographics), in user index order.
    """

    has_demographics: bool
    age_mean: float
    age_std: float
    genders: list[str]
    occupations: list[str]
    rating_mean: float
    rating_std: float
    log_count_scale: float
    matrix: np.ndarray = field(repr=False)

    @property
    def n_demographics(self) -> int:
        return int(self.matrix.shape[1])

    @classmethod
    def fit(cls, train: Dataset) -> "UserFeatures":
        """Learn the encoders from the users with training interactions and the training ratings."""
        counts = train.user_counts()
        rating = train.rating.astype(np.float64)
        r_mean = float(rating.mean()) if len(rating) else 0.0
        r_std = float(rating.std()) if len(rating) > 1 and rating.std() > 0 else 1.0
        log_scale = float(np.log1p(max(int(counts.max()) if len(counts) else 1, 1)))
        frame = train.user_features
        active = set(np.flatnonzero(counts).tolist())
        if frame is None or frame.empty or not ({"age", "gender", "occupation"} & set(frame.columns)):
            return cls(False, 0.0, 1.0, [], [], r_mean, r_std, log_scale, np.zeros((train.n_users, 0), np.float32))
        seen = frame[[i in active for i in frame.index]]
        ages = pd.to_numeric(seen.get("age", pd.Series(dtype=float)), errors="coerce").dropna().to_numpy(float)
        age_mean = float(ages.mean()) if len(ages) else 0.0
        age_std = float(ages.std()) if len(ages) > 1 and ages.std() > 0 else 1.0
        genders = sorted({s for s in map(_str, seen.get("gender", [])) if s})
        occupations = sorted({s for s in map(_str, seen.get("occupation", [])) if s})
        out = cls(True, age_mean, age_std, genders, occupations, r_mean, r_std, log_scale, np.zeros((0, 0), np.float32))
        full = frame.reindex(range(train.n_users))
        out.matrix = out.encode(full["age"].tolist() if "age" in full else [None] * train.n_users,
                                full["gender"].tolist() if "gender" in full else [None] * train.n_users,
                                full["occupation"].tolist() if "occupation" in full else [None] * train.n_users)
        return out

    def encode(self, ages: Sequence[Any], genders: Sequence[Any], occupations: Sequence[Any]) -> np.ndarray:
        """Demographic features, shape (n, n_demographics); None (or NaN) means unknown.

        Raises:
            ConfigError: for inputs of different lengths.
        """
        n = len(ages)
        if len(genders) != n or len(occupations) != n:
            raise ConfigError("Give one age, gender and occupation per person (None when unknown).")
        if not self.has_demographics:
            return np.zeros((n, 0), dtype=np.float32)
        age = pd.to_numeric(pd.Series(list(ages), dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        known = np.isfinite(age)
        out = np.zeros((n, 2 + len(self.genders) + len(self.occupations)), dtype=np.float32)
        out[:, 0] = np.where(known, (np.where(known, age, 0.0) - self.age_mean) / self.age_std, 0.0)
        out[:, 1] = ~known
        for offset, vocab, values in ((2, self.genders, genders), (2 + len(self.genders), self.occupations, occupations)):
            col = {v: j for j, v in enumerate(vocab)}
            for row, value in enumerate(values):
                j = col.get(_str(value))
                if j is not None:
                    out[row, offset + j] = 1.0
        return out

    def behaviour(self, counts: np.ndarray, mean_ratings: np.ndarray | None) -> np.ndarray:
        """History statistics, shape (n, 2): [log1p(count) / log_count_scale, standardised
        mean rating (0 where unknown: NaN, or `mean_ratings` None)].

        Args:
            counts: history lengths, shape (n,).
            mean_ratings: mean rating of each history, shape (n,), or None.
        """
        counts = np.asarray(counts, dtype=np.float64)
        out = np.zeros((len(counts), 2), dtype=np.float32)
        out[:, 0] = np.log1p(counts) / self.log_count_scale
        if mean_ratings is not None:
            m = np.asarray(mean_ratings, dtype=np.float64)
            out[:, 1] = np.where(np.isfinite(m), (np.nan_to_num(m) - self.rating_mean) / self.rating_std, 0.0)
        return out

    # -- state ---------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(numeric arrays, JSON meta) that `from_state` restores."""
        meta = {"has_demographics": self.has_demographics, "age_mean": self.age_mean, "age_std": self.age_std,
                "genders": self.genders, "occupations": self.occupations, "rating_mean": self.rating_mean,
                "rating_std": self.rating_std, "log_count_scale": self.log_count_scale}
        return {"matrix": self.matrix}, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> "UserFeatures":
        return cls(bool(meta["has_demographics"]), float(meta["age_mean"]), float(meta["age_std"]),
                   list(meta["genders"]), list(meta["occupations"]), float(meta["rating_mean"]),
                   float(meta["rating_std"]), float(meta["log_count_scale"]),
                   np.asarray(arrays["matrix"], dtype=np.float32))


__all__ = ["UserFeatures"]

"""A blend of rating models whose weights are fitted on held-out training ratings.

`fit(train)`:

1. carves a seeded random share of `train` as blend validation (training data only; the
   test set is never seen);
2. fits every base model on the rest and predicts the held-out ratings;
3. fits a ridge regression from the base predictions (and, with `meta_features`, their
   products with log user/movie support, so the weights can shift with how much is known
   about a user or movie) to the held-out ratings, with an intercept;
   (the held-out share also serves early stopping for bases that stop early);
4. refits every base model on all of `train` with the same hyperparameters and keeps the
   regression weights.

Predictions apply the weights to the refitted models' predictions, clipped to the scale.
If `fit` gets a validation set, it is used as the blend validation and the bases are
refitted on train + validation.

The blend's state keeps each base model's arrays under the prefix "b{k}." (`_state`),
and their names, classes, parameters and own JSON values in `_meta`.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from movierec.data.dataset import Dataset
from movierec.data.split import carve_validation, concat
from movierec.errors import ConfigError
from movierec.models._memory import parts_text
from movierec.models._rating_utils import clip_ratings
from movierec.models.base import Capabilities, Recommender
from movierec.models.registry import class_from_path, class_path, get_class
from movierec.models.space import Categorical, Float
from movierec.models._specs import model_specs
from movierec.training.options import RuntimeOptions

#: default bases: the two strongest families, with hyperparameters chosen on validation
#: ratings carved from the training part of ML-100K fold u1 (see docs/rating_prediction.md)
DEFAULT_BASES: list[list] = [
    ["autorec", {"hidden": 500, "weight_decay": 150.0, "lr": 1e-3, "n_models": 2}],
    ["bpmf", {"dim": 20, "burn_in": 30, "samples": 170}],
]


class Blend(Recommender):
    """Validation-fitted linear blend of rating models.

    Args:
        models: base models as [registered name, hyperparameters] pairs, e.g.
            [["autorec", {"hidden": 500}], ["bpmf", {"dim": 10}]]. Every base must
            predict ratings.
        val_fraction: share of the training ratings held out to fit the weights.
        ridge: L2 penalty on the blend weights (the intercept is not penalised).
        meta_features: also use each base prediction times the centred log support of
            the user and of the movie.
        seed: seeds the held-out share (bases keep their own seeds).
    """

    name: ClassVar[str] = "blend"
    capabilities = Capabilities(predicts_ratings=True)
    # blend settings only; the bases keep the hyperparameters they are given
    search_space = {
        "ridge": Float(0.01, 100.0, log=True),
        "meta_features": Categorical([True, False]),
    }

    def __init__(
        self,
        models: list | None = None,
        val_fraction: float = 0.1,
        ridge: float = 1.0,
        meta_features: bool = False,
        seed: int = 42,
    ):
        self.models = models
        self.val_fraction = val_fraction
        self.ridge = ridge
        self.meta_features = meta_features
        self.seed = seed

    # -- helpers ----------------------------------------------------------------------
    def _specs(self) -> list[tuple[str, dict]]:
        return model_specs(DEFAULT_BASES if self.models is None else self.models,
                           "A blend needs at least one base model.")

    def _new_bases(self) -> list[Recommender]:
        bases = []
        for name, params in self._specs():
            cls = get_class(name)
            if not cls.predicts_ratings:
                raise ConfigError(f"Model {name!r} ranks movies; a rating blend needs rating models.")
            try:
                bases.append(cls(**params))
            except TypeError as exc:
                raise ConfigError(f"Bad parameters for blend base {name!r}: {exc}.") from None
        return bases

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """The sum of the bases' estimates (all of them are kept after the final refit;
        a base without an estimate counts 0); None when no base has one."""
        parts = [base.memory_estimate(n_users, n_items, n_ratings) for base in self._new_bases()]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None

    def _memory_what(self, n_users: int, n_items: int, n_ratings: int) -> str:
        return (f"to fit {n_ratings:,} ratings of {n_users:,} users and {n_items:,} movies with its bases "
                f"({parts_text(self._new_bases(), n_users, n_items, n_ratings)})")

    def _too_big_advice(self) -> str:
        return ('give it bases with smaller state, e.g. models=[["mf", {}], ["bias", {}]], '
                "or use one rating model such as mf")

    def _features(self, preds: np.ndarray, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Design matrix (n, p) without intercept, from base predictions (n, K)."""
        cols = [preds]
        if self.meta_features:
            lu = (np.log1p(self.user_support_[user_idx]) - self.log_user_mean_)[:, None]
            li = (np.log1p(self.item_support_[item_idx]) - self.log_item_mean_)[:, None]
            centred = preds - self.global_mean_
            cols += [centred * lu, centred * li, lu, li]
        return np.concatenate(cols, axis=1)

    def _set_support(self, train: Dataset) -> None:
        self.user_support_ = train.user_counts().astype(np.float32)
        self.item_support_ = train.item_counts().astype(np.float32)
        self.log_user_mean_ = float(np.log1p(self.user_support_[train.user_idx]).mean())
        self.log_item_mean_ = float(np.log1p(self.item_support_[train.item_idx]).mean())
        self.global_mean_ = float(train.rating.mean())

    # -- fitting ----------------------------------------------------------------------
    def _base_runtime(self) -> RuntimeOptions:
        """The bases' runtime options: this fit's, with the blend's seed (torch bases)."""
        return (self.runtime_ or RuntimeOptions()).with_seed(int(self.seed))

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        if validation is not None and validation.n_ratings:
            fit_part, val_part, full = train, validation, concat(train, validation)
        else:
            if not 0 < self.val_fraction < 1:
                raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}.")
            fit_part, val_part = carve_validation(train, self.val_fraction, self.seed)
            full = train
        # support statistics come from the data the final bases see
        self._set_support(full)
        preds = []
        self.validation_rmse_: dict[str, float] = {}
        for (name, _), base in zip(self._specs(), self._new_bases()):
            # the held-out share also serves the bases' early stopping (training data only)
            base.fit(fit_part, validation=val_part, runtime=self._base_runtime())
            p = base._predict(val_part.user_idx, val_part.item_idx).astype(np.float64)
            preds.append(p)
            self.validation_rmse_[name] = float(np.sqrt(np.mean((p - val_part.rating) ** 2)))
        x = self._features(np.stack(preds, axis=1), val_part.user_idx, val_part.item_idx)
        y = val_part.rating.astype(np.float64)
        x_mean, y_mean = x.mean(axis=0), y.mean()
        xc = x - x_mean
        gram = xc.T @ xc + self.ridge * np.eye(x.shape[1])
        coef = np.linalg.solve(gram, xc.T @ (y - y_mean))
        self.coef_ = coef.astype(np.float64)
        self.intercept_ = float(y_mean - x_mean @ coef)
        fitted = clip_ratings(x @ coef + self.intercept_, self.rating_scale_)
        self.validation_rmse_["blend"] = float(np.sqrt(np.mean((fitted - y) ** 2)))
        # refit every base on all training data with the same hyperparameters
        self.bases_: list[Recommender] = []
        self.base_fit_seconds_: dict[str, float] = {}
        for (name, _), base in zip(self._specs(), self._new_bases()):
            start = time.perf_counter()
            base.fit(full, runtime=self._base_runtime())
            self.base_fit_seconds_[name] = time.perf_counter() - start
            self.bases_.append(base)

    # -- queries ----------------------------------------------------------------------
    def _predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        user_idx = np.asarray(user_idx, np.int64)
        item_idx = np.asarray(item_idx, np.int64)
        preds = np.stack([b._predict(user_idx, item_idx).astype(np.float64) for b in self.bases_], axis=1)
        out = self._features(preds, user_idx, item_idx) @ self.coef_ + self.intercept_
        return clip_ratings(out, self.rating_scale_).astype(np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        user_idx = np.asarray(user_idx, np.int64)
        n, m = len(user_idx), len(self.items_)
        scores = [b._score(user_idx).astype(np.float64) for b in self.bases_]
        preds = np.stack([s.ravel() for s in scores], axis=1)
        uu = np.repeat(user_idx, m)
        ii = np.tile(np.arange(m), n)
        out = (self._features(preds, uu, ii) @ self.coef_ + self.intercept_).reshape(n, m)
        return clip_ratings(out, self.rating_scale_).astype(np.float32)

    # -- persistence ------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "bases": [
                {"name": name, "class": class_path(base), "params": base.get_params(), "meta": base._meta()}
                for (name, _), base in zip(self._specs(), self.bases_)
            ],
            "validation_rmse": getattr(self, "validation_rmse_", {}),
        }

    def _set_meta(self, meta: dict[str, Any]) -> None:
        # called by `load_state_dict` after the ID maps, seen matrix and scale are set
        self.bases_ = []
        for spec in meta.get("bases", []):
            base = class_from_path(spec["class"])(**spec["params"])
            for attr in ("users_", "items_", "seen_", "rating_scale_"):
                setattr(base, attr, getattr(self, attr))
            base._set_meta(spec.get("meta", {}))
            self.bases_.append(base)
        self.validation_rmse_ = meta.get("validation_rmse", {})

    def _state(self) -> dict[str, np.ndarray]:
        state = {
            "coef": self.coef_,
            "intercept": np.array([self.intercept_]),
            "user_support": self.user_support_,
            "item_support": self.item_support_,
            "means": np.array([self.log_user_mean_, self.log_item_mean_, self.global_mean_]),
        }
        for k, base in enumerate(self.bases_):
            for key, value in base._state().items():
                state[f"b{k}.{key}"] = value
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.coef_ = state["coef"]
        self.intercept_ = float(state["intercept"][0])
        self.user_support_ = state["user_support"]
        self.item_support_ = state["item_support"]
        self.log_user_mean_, self.log_item_mean_, self.global_mean_ = (float(v) for v in state["means"])
        for k, base in enumerate(self.bases_):
            prefix = f"b{k}."
            base._set_state({key[len(prefix):]: v for key, v in state.items() if key.startswith(prefix)})

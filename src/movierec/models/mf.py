"""Biased matrix factorisation in PyTorch: the teaching model for rating prediction.

    r̂(u, i) = μ + b_u + b_i + p_u · q_i

μ is the training mean, b_u / b_i learned user / movie biases, p_u / q_i learned
`dim`-dimensional user / movie factors. Optionally the sum is squashed into the rating
range by a scaled sigmoid (`output_range=True`).

Regularisation is L2 on the *rows used in each batch* (the classic SGD-MF penalty
λ(‖p_u‖² + ‖q_i‖² + b_u² + b_i²) per rating), not weight decay on the whole tables through
the optimiser: weight decay would shrink every row at every step, however rarely the
user or movie occurs, and with Adam it would also be rescaled per parameter. Penalising
the rows in the batch regularises each row in proportion to how often it is seen, which
is what the ridge-regression view of MF asks for.

Training runs through the shared `Trainer`: large shuffled batches, Adam, early stopping
on validation RMSE with the best weights restored. Without a validation set, a seeded
share of the training ratings is held out for early stopping and (by default) the model
is then retrained on all of them for the best number of epochs.

Cold start: `fold_in(ratings)` solves a ridge regression for a new user's vector and
bias against the frozen movie factors and biases, so someone with a handful of ratings
gets recommendations (`recommend_for_ratings`) without retraining.
"""

from __future__ import annotations

import json
import math
from typing import Mapping

import numpy as np
import torch
from torch import nn

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models.base import Recommendations, Recommender, top_k
from movierec.training.trainer import History, Trainer, resolve_device, seed_everything, tensor_batches

_OPTIMIZERS = ("adam", "sparse_adam", "adagrad", "sgd")


class BiasedMFModule(nn.Module):
    """The network: factors and biases, no training logic.

    Each user row holds [p_u, b_u] and each movie row [q_i, b_i] in one table per side,
    so a batch needs two lookups instead of four (the model is small; kernel calls
    dominate its training time).

    Args:
        n_users, n_items: table sizes (user / item index spaces).
        dim: factor dimension.
        init_std: standard deviation of the normal initialisation of the factors
            (biases start at zero).
        global_mean: μ, the training mean rating.
        rating_range: (low, high) for the scaled-sigmoid output, or None for a plain sum.
        sparse: sparse gradients (for SparseAdam / SGD).
    """

    def __init__(self, n_users: int, n_items: int, dim: int, init_std: float, global_mean: float,
                 rating_range: tuple[float, float] | None = None, sparse: bool = False):
        super().__init__()
        self.dim = dim
        self.users = nn.Embedding(n_users, dim + 1, sparse=sparse)
        self.items = nn.Embedding(n_items, dim + 1, sparse=sparse)
        with torch.no_grad():
            for table in (self.users, self.items):
                nn.init.normal_(table.weight, 0.0, init_std)
                table.weight[:, dim] = 0.0
        self.rating_range = rating_range
        if rating_range is not None:
            low, high = rating_range
            frac = min(max((global_mean - low) / (high - low), 1e-3), 1 - 1e-3)
            offset = math.log(frac / (1 - frac))  # logit of the mean, so training starts at μ
        else:
            offset = global_mean
        self.register_buffer("offset", torch.tensor(float(offset), dtype=torch.float32))

    def forward(self, users: torch.Tensor, items: torch.Tensor):
        """Predicted ratings for index pairs, shape (batch,), plus the user and movie rows
        used, each shape (batch, dim + 1) (factors then bias; for the L2 penalty)."""
        if self.users.sparse:
            p, q = self.users(users), self.items(items)
        else:  # same values; index_select's backward (index_add) is ~35% faster on CPU
            p = self.users.weight.index_select(0, users)
            q = self.items.weight.index_select(0, items)
        d = self.dim
        x = self.offset + p[:, d] + q[:, d] + (p[:, :d] * q[:, :d]).sum(-1)
        return self.squash(x), (p, q)

    def squash(self, x: torch.Tensor) -> torch.Tensor:
        if self.rating_range is None:
            return x
        low, high = self.rating_range
        return low + (high - low) * torch.sigmoid(x)


class BiasedMF(Recommender):
    """Biased matrix factorisation trained with mini-batch Adam (PyTorch).

    Args:
        dim: number of latent factors per user and movie.
        reg: L2 penalty on the factor rows used in each batch (per rating).
        reg_bias: L2 penalty on the bias entries used in each batch (per rating).
        lr: learning rate.
        epochs: maximum number of epochs.
        patience: epochs without validation improvement before stopping.
        batch_size: ratings per optimiser step.
        init_std: standard deviation of the normal factor initialisation.
        output_range: squash predictions into the rating range with a scaled sigmoid.
        range_margin: with `output_range`, the sigmoid spans [low − margin, high + margin]
            so the extremes of the scale are reachable.
        optimizer: "adam", "sparse_adam", "adagrad" or "sgd".
        validation_fraction: share of the training ratings held out for early stopping when
            `fit` gets no validation set.
        refit: after early stopping on the internal hold-out, retrain on all training
            ratings for the best number of epochs (else keep the early-stopped model).
        fold_in_reg: ridge penalty of `fold_in`; None (default) matches training, whose
            per-rating penalty amounts to λ = reg · n on the vector (reg_bias · n on the
            bias) for a user with n ratings.
        seed: seeds initialisation, shuffling and the internal hold-out.
        device: "cpu" (default), "cuda" or "auto".
        num_threads: torch CPU threads while training (restored afterwards); the tables are
            small, so one thread is usually fastest; 0 leaves torch's setting alone.
        progress: show a progress bar while training.
    """

    name = "mf"
    predicts_ratings = True

    def __init__(
        self,
        dim: int = 32,
        reg: float = 0.12,
        reg_bias: float = 0.005,
        lr: float = 0.02,
        epochs: int = 60,
        patience: int = 2,
        batch_size: int = 4096,
        init_std: float = 0.05,
        output_range: bool = False,
        range_margin: float = 0.5,
        optimizer: str = "adam",
        validation_fraction: float = 0.05,
        refit: bool = True,
        fold_in_reg: float | None = None,
        seed: int = 42,
        device: str = "cpu",
        num_threads: int = 1,
        progress: bool = False,
    ) -> None:
        self.dim = dim
        self.reg = reg
        self.reg_bias = reg_bias
        self.lr = lr
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.init_std = init_std
        self.output_range = output_range
        self.range_margin = range_margin
        self.optimizer = optimizer
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.fold_in_reg = fold_in_reg
        self.seed = seed
        self.device = device
        self.num_threads = num_threads
        self.progress = progress

    # -- tuning -----------------------------------------------------------------------
    @classmethod
    def suggest_params(cls, trial) -> dict:
        """Optuna search space for `movierec tune`."""
        return {
            "dim": trial.suggest_categorical("dim", [16, 32, 64, 128]),
            "reg": trial.suggest_float("reg", 0.02, 0.3, log=True),
            "reg_bias": trial.suggest_float("reg_bias", 1e-4, 0.1, log=True),
            "lr": trial.suggest_float("lr", 3e-3, 5e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [2048, 4096, 8192]),
            "init_std": trial.suggest_float("init_std", 0.01, 0.2, log=True),
            "output_range": trial.suggest_categorical("output_range", [False, True]),
        }

    # -- fitting ----------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(_OPTIMIZERS)}, got {self.optimizer!r}.")
        if int(self.dim) < 1 or int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ConfigError("dim, epochs and batch_size must be positive whole numbers.")
        if min(self.reg, self.reg_bias, self.fold_in_reg or 0.0) < 0 or self.lr <= 0:
            raise ConfigError("reg, reg_bias and fold_in_reg must be >= 0 and lr > 0.")
        if not 0 <= self.validation_fraction < 0.5:
            raise ConfigError(f"validation_fraction must be in [0, 0.5), got {self.validation_fraction!r}.")

    def _range(self) -> tuple[float, float] | None:
        if not self.output_range or not self.rating_scale_:
            return None
        low, high = self.rating_scale_
        return (float(low) - self.range_margin, float(high) + self.range_margin)

    def _make_optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        params = list(module.parameters())
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr)
        if self.optimizer == "sparse_adam":
            return torch.optim.SparseAdam(params, lr=self.lr)
        if self.optimizer == "adagrad":
            return torch.optim.Adagrad(params, lr=self.lr)
        return torch.optim.SGD(params, lr=self.lr)

    def _train(self, train: Dataset, validation: Dataset | None, epochs: int, patience: int,
               mu: float, track: bool = True) -> tuple[BiasedMFModule, History]:
        device = resolve_device(self.device)
        gen = seed_everything(int(self.seed))
        module = BiasedMFModule(
            train.n_users, train.n_items, int(self.dim), float(self.init_std), mu, self._range(),
            sparse=self.optimizer in ("sparse_adam", "sgd"),
        ).to(device)
        opt = self._make_optimizer(module)
        u = torch.as_tensor(train.user_idx, dtype=torch.long, device=device)
        i = torch.as_tensor(train.item_idx, dtype=torch.long, device=device)
        r = torch.tensor(train.rating, dtype=torch.float32, device=device)
        bs = int(self.batch_size)
        # per-column L2 weights: reg on the factors, reg_bias on the bias column
        weights = torch.full((int(self.dim) + 1,), float(self.reg), device=device)
        weights[-1] = float(self.reg_bias)

        def batches():
            return tensor_batches((u, i, r), bs, generator=gen)

        def loss_fn(m: BiasedMFModule, batch) -> torch.Tensor:
            bu_idx, bi_idx, target = batch
            pred, (p, q) = m(bu_idx, bi_idx)
            mse = torch.mean((pred - target) ** 2)
            # L2 on the rows used in this batch, once per rating (as in SGD-MF)
            penalty = ((p * p + q * q) @ weights).mean()
            return mse + penalty

        clip = self.rating_scale_

        def rmse_of(m: BiasedMFModule, uu, ii, rr) -> float:
            pred, _ = m(uu, ii)
            if clip:
                pred = pred.clamp(clip[0], clip[1])
            return float(torch.sqrt(torch.mean((pred - rr) ** 2)))

        # training RMSE per epoch (on a fixed sample of at most 20,000 ratings) for learning curves
        sample = torch.randperm(len(r), generator=torch.Generator().manual_seed(int(self.seed)))[:20_000].to(device)
        su, si, sr = u[sample], i[sample], r[sample]

        def epoch_metrics(m: BiasedMFModule) -> dict[str, float]:
            return {"train_rmse": rmse_of(m, su, si, sr)}

        validate = None
        if validation is not None and validation.n_ratings:
            vu = torch.as_tensor(validation.user_idx, dtype=torch.long, device=device)
            vi = torch.as_tensor(validation.item_idx, dtype=torch.long, device=device)
            vr = torch.tensor(validation.rating, dtype=torch.float32, device=device)

            def validate(m: BiasedMFModule) -> float:
                return rmse_of(m, vu, vi, vr)

        trainer = Trainer(max_epochs=epochs, patience=patience, mode="min", progress=bool(self.progress),
                          desc="mf")
        history = trainer.fit(module, opt, batches, loss_fn, validate, epoch_metrics=epoch_metrics if track else None)
        return module, history

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        self._check_params()
        mu = float(np.mean(train.rating, dtype=np.float64))
        refit_full = False
        if validation is None and self.validation_fraction > 0 and train.n_ratings >= 20:
            rng = np.random.default_rng(int(self.seed))
            hold = np.zeros(train.n_ratings, dtype=bool)
            hold[rng.permutation(train.n_ratings)[: max(1, int(round(train.n_ratings * self.validation_fraction)))]] = True
            fit_part, validation = train.subset(~hold), train.subset(hold)
            refit_full = bool(self.refit)
        else:
            fit_part = train
        old_threads = torch.get_num_threads()
        if int(self.num_threads) > 0:
            torch.set_num_threads(int(self.num_threads))
        try:
            module, history = self._train(fit_part, validation, int(self.epochs), int(self.patience), mu)
            self.history_ = history
            self.best_epoch_ = int(history.best_epoch or len(history.records))
            if refit_full:
                module, _ = self._train(train, None, self.best_epoch_, int(self.patience), mu, track=False)
        finally:
            torch.set_num_threads(old_threads)
        self._store(module)

    def _store(self, module: BiasedMFModule) -> None:
        module = module.cpu()
        users = module.users.weight.detach().numpy()
        items = module.items.weight.detach().numpy()
        d = module.dim
        self.user_embeddings_ = np.ascontiguousarray(users[:, :d])
        self.item_embeddings_ = np.ascontiguousarray(items[:, :d])
        self.user_bias_ = users[:, d].copy()
        self.item_bias_ = items[:, d].copy()
        self.global_mean_ = float(module.offset) if module.rating_range is None else self._mean_from_logit(float(module.offset))
        self.offset_ = float(module.offset)

    def _mean_from_logit(self, logit: float) -> float:
        low, high = self._range()
        return low + (high - low) / (1 + math.exp(-logit))

    # -- queries ----------------------------------------------------------------------
    def _squash(self, x: np.ndarray) -> np.ndarray:
        rng = self._range()
        if rng is None:
            return x
        low, high = rng
        return low + (high - low) / (1 + np.exp(-x))

    def _clip(self, x: np.ndarray) -> np.ndarray:
        if self.rating_scale_:
            x = np.clip(x, self.rating_scale_[0], self.rating_scale_[1])
        return x.astype(np.float32)

    def _predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        x = (self.offset_ + self.user_bias_[user_idx] + self.item_bias_[item_idx]
             + np.einsum("nd,nd->n", self.user_embeddings_[user_idx], self.item_embeddings_[item_idx]))
        return self._clip(self._squash(x))

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        x = (self.offset_ + self.user_bias_[user_idx][:, None] + self.item_bias_[None, :]
             + self.user_embeddings_[user_idx] @ self.item_embeddings_.T)
        return self._squash(x).astype(np.float32)

    # -- cold start -------------------------------------------------------------------
    def _ratings_to_arrays(self, ratings) -> tuple[np.ndarray, np.ndarray]:
        """{raw movie id: rating} or (movie_ids, ratings) -> (item indices, ratings)."""
        if isinstance(ratings, Mapping):
            ids = np.asarray(list(ratings.keys()))
            values = np.asarray(list(ratings.values()), dtype=np.float64)
        else:
            ids, values = ratings
            ids, values = np.asarray(ids), np.asarray(values, dtype=np.float64)
        if len(ids) != len(values):
            raise ConfigError("fold_in needs as many ratings as movie IDs.")
        if len(ids) == 0:
            raise ConfigError("fold_in needs at least one rating.")
        return self.item_index(ids), values

    def fold_in(self, ratings) -> tuple[np.ndarray, float]:
        """A new user's factor vector and bias from their ratings, without retraining.

        Solves the ridge regression
        min_{p, b} Σ_i (r_i − μ − b_i − b − q_i·p)² + λ ‖p‖² + λ_b b²
        against the frozen movie factors q_i and biases b_i (closed form), with
        λ = reg · n and λ_b = reg_bias · n for n ratings (exactly the training objective
        for one user with the movies fixed), or λ = λ_b = fold_in_reg when set. With
        `output_range`, the same is done by a few Gauss–Newton steps through the sigmoid.

        Args:
            ratings: {raw movie ID: rating} or a pair (raw movie IDs shape (n,), ratings shape (n,)).

        Returns:
            (user vector, shape (dim,), user bias).

        Raises:
            UnknownItemError: for a movie the model has never seen.
        """
        self._check_fitted()
        idx, values = self._ratings_to_arrays(ratings)
        q = self.item_embeddings_[idx].astype(np.float64)
        X = np.hstack([q, np.ones((len(idx), 1))])
        base = self.offset_ + self.item_bias_[idx].astype(np.float64)
        if self.fold_in_reg is None:
            lam = np.diag([float(self.reg) * len(idx)] * (X.shape[1] - 1) + [float(self.reg_bias) * len(idx)])
        else:
            lam = float(self.fold_in_reg) * np.eye(X.shape[1])
        rng = self._range()
        if rng is None:
            w = np.linalg.solve(X.T @ X + lam, X.T @ (values - base))
        else:
            low, high = rng
            w = np.zeros(X.shape[1])
            for _ in range(20):  # Gauss–Newton on the squashed residuals
                s = 1 / (1 + np.exp(-(base + X @ w)))
                pred = low + (high - low) * s
                J = X * ((high - low) * s * (1 - s))[:, None]
                step = np.linalg.solve(J.T @ J + lam, J.T @ (values - pred) - lam @ w)
                w = w + step
                if np.max(np.abs(step)) < 1e-6:
                    break
        return w[:-1].astype(np.float32), float(w[-1])

    def predict_for_ratings(self, ratings, item_ids) -> np.ndarray:
        """Predicted ratings of raw movie IDs (shape (n,)) for a new user given their ratings."""
        p, b = self.fold_in(ratings)
        idx = self.item_index(np.atleast_1d(np.asarray(item_ids)))
        x = self.offset_ + b + self.item_bias_[idx] + self.item_embeddings_[idx] @ p
        return self._clip(self._squash(x))

    def recommend_for_ratings(self, ratings, k: int = 10, exclude_rated: bool = True) -> Recommendations:
        """Top-k movies for a new user known only by their ratings (cold start).

        Args:
            ratings: {raw movie ID: rating} or (raw movie IDs, ratings).
            k: list length.
            exclude_rated: leave out the movies in `ratings`.

        Returns:
            Recommendations for one user whose `user_ids` is [-1] (no ID: not in the model).
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a positive whole number, got {k!r}.")
        idx, _ = self._ratings_to_arrays(ratings)
        p, b = self.fold_in(ratings)
        scores = self._squash(self.offset_ + b + self.item_bias_ + self.item_embeddings_ @ p).astype(np.float32)[None, :]
        if exclude_rated:
            scores[0, idx] = -np.inf
        kk = min(k, len(self.items_) - (len(np.unique(idx)) if exclude_rated else 0))
        top, val = top_k(scores, max(kk, 0))
        return Recommendations(user_ids=np.array([-1]), item_ids=self.items_.raw(top), scores=val)

    # -- persistence ------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "user_embeddings": self.user_embeddings_,
            "item_embeddings": self.item_embeddings_,
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
            "offset": np.array([self.offset_], dtype=np.float64),
            "global_mean": np.array([self.global_mean_], dtype=np.float64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.user_embeddings_ = np.asarray(state["user_embeddings"], dtype=np.float32)
        self.item_embeddings_ = np.asarray(state["item_embeddings"], dtype=np.float32)
        self.user_bias_ = np.asarray(state["user_bias"], dtype=np.float32)
        self.item_bias_ = np.asarray(state["item_bias"], dtype=np.float32)
        self.offset_ = float(state["offset"][0])
        self.global_mean_ = float(state["global_mean"][0])

    def _manifest_extra(self) -> dict:
        extra = {"best_epoch": getattr(self, "best_epoch_", None)}
        if getattr(self, "history_", None) is not None:
            extra["history"] = json.loads(json.dumps(self.history_.to_dict(), default=float))
        return extra

    def _load_extra(self, extra: dict) -> None:
        self.best_epoch_ = extra.get("best_epoch")
        hist = extra.get("history")
        if hist:
            self.history_ = History(records=hist.get("records", []), best_epoch=hist.get("best_epoch"),
                                    best_value=hist.get("best_value"), stopped_early=hist.get("stopped_early", False))

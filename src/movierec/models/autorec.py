"""Item-based AutoRec (Sedhain et al., 2015) in PyTorch.

Each movie is described by its vector of ratings over all users (zeros where unrated).
A one-hidden-layer autoencoder reconstructs that vector::

    h_i = sigmoid(W r_i + b)           W: (hidden, n_users)
    r^_i = V h_i + c                   V: (n_users, hidden)

trained on the observed entries only (masked squared error) with an L2 penalty
(weight_decay / 2) * (|W|^2 + |V|^2). The predicted rating of user u for movie i is
entry u of r^_i, clipped to the rating scale. Users or movies without training ratings
fall back to a regularised bias baseline mu + b_u + c_i.

Training uses the shared Trainer with early stopping on validation RMSE, on the shared
early-stop-then-refit policy (`movierec.training.early_stopping`): without a validation
set, a seeded share of the training ratings is held out for early stopping; with
`refit=True` the network is then retrained on all training ratings for the number of
epochs found best.

Capabilities: rating prediction only. I-AutoRec is item-based: each input is a movie's
column of ratings over all *training users*, so a new person is a new input coordinate
the encoder has no weight for; they cannot be folded in without retraining, and the
scores are not a dot product of user and movie vectors.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models._rating_utils import clip_ratings, fit_biases
from movierec.models._memory import adam_param_bytes, base_fit_bytes
from movierec.models._torch_base import TorchRecommender
from movierec.models.base import Capabilities
from movierec.models.space import Categorical, Float
from movierec.training.early_stopping import EarlyStopResult, early_stop_then_refit, random_holdout
from movierec.training.options import seed_everything
from movierec.training.trainer import History, tensor_batches

if TYPE_CHECKING:  # torch is imported by training only: a saved model loads and answers without it
    import torch
    from torch import nn

    from movierec.models._nets import AutoRecNet


def _item_matrix(ds: Dataset) -> sp.csr_matrix:
    """items x users rating matrix of a Dataset (float32)."""
    return ds.to_csr("rating").T.tocsr().astype(np.float32)


class AutoRec(TorchRecommender):
    """Item-based AutoRec rating model.

    Args:
        hidden: hidden units.
        weight_decay: L2 penalty strength lambda on the weights (objective: sum of squared
            errors + lambda / 2 * |weights|^2).
        lr: Adam learning rate.
        epochs: maximum epochs.
        patience: epochs without validation improvement before stopping; 0 turns early
            stopping off (`epochs` epochs on all the data).
        batch_size: movies per batch.
        validation_fraction: share of the training ratings held out for early stopping
            when fit gets no validation set (0: no hold-out).
        refit: after early stopping on a held-out share, retrain on all training ratings
            for the best number of epochs.
        n_models: networks trained with seeds seed, seed + 1, ... (each with its own
            held-out share); predictions average their reconstructions.
        bias_reg: regularisation of the fallback bias baseline.

    Runtime options (seed, device, threads, progress, distributed) are given at fit time:
    `fit(train, runtime=RuntimeOptions(...))` (see `movierec.training.options`); network
    m uses seed + m.
    """

    name: ClassVar[str] = "autorec"
    capabilities = Capabilities(predicts_ratings=True)
    search_space = {
        "hidden": Categorical([300, 500, 700]),
        "weight_decay": Float(30.0, 600.0, log=True),
        "lr": Float(3e-4, 3e-3, log=True),
    }

    def __init__(
        self,
        hidden: int = 500,
        weight_decay: float = 150.0,
        lr: float = 1e-3,
        epochs: int = 300,
        patience: int = 10,
        batch_size: int = 128,
        validation_fraction: float = 0.05,
        refit: bool = True,
        n_models: int = 1,
        bias_reg: float = 5.0,
        **legacy_runtime: Any,
    ):
        self.hidden = hidden
        self.weight_decay = weight_decay
        self.lr = lr
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.n_models = n_models
        self.bias_reg = bias_reg
        self._take_legacy_runtime(legacy_runtime)

    # -- training ---------------------------------------------------------------------
    def _train(self, fit_part: Dataset, val_part: Dataset | None, max_epochs: int,
               seed: int) -> tuple[AutoRecNet, History]:
        """Train one network; returns it (best weights restored when validated) and its history."""
        import torch

        from movierec.models._nets import AutoRecNet

        device = self._device
        gen = seed_everything(seed)
        n_items, n_users = fit_part.n_items, fit_part.n_users
        mat = _item_matrix(fit_part)
        dense = torch.from_numpy(mat.toarray()).to(device)
        mask = torch.from_numpy((mat != 0).toarray().astype(np.float32)).to(device)
        n_obs = float(mat.nnz)
        net = AutoRecNet(n_users, self.hidden).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        items = torch.arange(n_items, device=device)
        lam = float(self.weight_decay)

        def loss_fn(module: nn.Module, batch) -> torch.Tensor:
            (idx,) = batch
            x, m = dense[idx], mask[idx]
            out = module(x)
            share = len(idx) / n_items
            sse = ((out - x) * m).pow(2).sum()
            return (sse + 0.5 * lam * share * module.penalty()) / (n_obs * share)

        validate = None
        if val_part is not None and val_part.n_ratings:
            vi = torch.from_numpy(val_part.item_idx.astype(np.int64)).to(device)
            vu = torch.from_numpy(val_part.user_idx.astype(np.int64)).to(device)
            vr = torch.from_numpy(val_part.rating.astype(np.float32)).to(device)
            lo, hi = self.rating_scale_ if self.rating_scale_ else (-np.inf, np.inf)

            def validate(module: nn.Module) -> float:
                recon = module(dense)
                pred = recon[vi, vu].clamp(lo, hi)
                return float(torch.sqrt(((pred - vr) ** 2).mean()))

        history = self._run_epochs(net, opt, lambda: tensor_batches([items], self.batch_size, gen), loss_fn,
                                   validate, epochs=max_epochs, mode="min")
        return net, history

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps; the encoder and decoder (users x `hidden` each, float32)
        under Adam (`adam_param_bytes`); the dense movies x users rows on the device
        (ratings and mask, float32, with the bool mask and the validation's
        reconstruction: about 6 float32 tables of n_items x n_users); per rating, the
        hold-out's copies and the movies x users CSRs (about 48 bytes); the validation's
        hidden layer for every movie (n_items x `hidden`, float32, about 3 copies)."""
        hidden = int(self.hidden)
        weights = 2 * n_users * hidden + hidden + n_users
        return (base_fit_bytes(n_users, n_ratings) + adam_param_bytes(weights) + 6 * 4 * n_items * n_users
                + 48 * n_ratings + 3 * 4 * n_items * hidden)

    def _check_params(self) -> None:
        if self.hidden < 1 or self.epochs < 1 or self.batch_size < 1 or self.n_models < 1:
            raise ConfigError("hidden, epochs, batch_size and n_models must be at least 1.")
        if not 0 <= self.validation_fraction < 0.5:
            raise ConfigError(f"validation_fraction must be in [0, 0.5), got {self.validation_fraction!r}.")

    def _fit_epochs(self, train: Dataset, shard: Dataset, validation: Dataset | None) -> EarlyStopResult:
        if validation is not None and validation.n_ratings == 0:
            validation = None
        results = []
        for m in range(self.n_models):
            seed = self._seed + m
            results.append(early_stop_then_refit(
                lambda data, val, epochs, refitting, seed=seed: self._train(data, val, epochs, seed),
                shard, validation,
                lambda data, seed=seed: random_holdout(data, float(self.validation_fraction), seed, min_ratings=1),
                epochs=int(self.epochs), patience=int(self.patience), refit=bool(self.refit),
            ))
        self._store([r.module.cpu() for r in results], train)
        # the early-stopping curve of the last network, with the networks' mean best epoch
        return replace(results[-1], best_epoch=int(round(np.mean([r.best_epoch for r in results]))))

    def _store(self, nets: list[AutoRecNet], train: Dataset) -> None:
        """Keep the networks' weights, stacked on a leading axis of size n_models."""

        def stack(get) -> np.ndarray:
            return np.stack([get(net).detach().numpy() for net in nets])

        self.encoder_weight_ = stack(lambda n: n.encoder.weight)
        self.encoder_bias_ = stack(lambda n: n.encoder.bias)
        self.decoder_weight_ = stack(lambda n: n.decoder.weight)
        self.decoder_bias_ = stack(lambda n: n.decoder.bias)
        mat = _item_matrix(train)
        self.ratings_ = mat
        mu, bu, bi = fit_biases(train.user_idx, train.item_idx, train.rating, train.n_users,
                                train.n_items, self.bias_reg, self.bias_reg)
        self.global_mean_ = mu
        self.user_bias_ = bu.astype(np.float32)
        self.item_bias_ = bi.astype(np.float32)
        self.user_known_ = np.asarray(train.user_counts() > 0)
        self.item_known_ = np.asarray(train.item_counts() > 0)
        self._reconstruct()

    def _reconstruct(self) -> None:
        """Dense items x users reconstruction, with the bias fallback for unknown rows/cols."""
        x = self.ratings_.toarray()
        recon = np.zeros(x.shape, dtype=np.float32)
        for w_enc, b_enc, w_dec, b_dec in zip(self.encoder_weight_, self.encoder_bias_,
                                              self.decoder_weight_, self.decoder_bias_):
            h = 1.0 / (1.0 + np.exp(-(x @ w_enc.T + b_enc)))
            recon += h @ w_dec.T + b_dec
        recon /= len(self.encoder_weight_)
        fallback = self.global_mean_ + self.item_bias_[:, None] + self.user_bias_[None, :]
        known = self.item_known_[:, None] & self.user_known_[None, :]
        recon = np.where(known, recon, fallback)
        self.recon_ = clip_ratings(recon, self.rating_scale_).astype(np.float32)

    # -- queries ----------------------------------------------------------------------
    def _predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.recon_[np.asarray(item_idx, np.int64), np.asarray(user_idx, np.int64)].copy()

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.ascontiguousarray(self.recon_[:, np.asarray(user_idx, np.int64)].T)

    # -- state ------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "encoder_weight": self.encoder_weight_,
            "encoder_bias": self.encoder_bias_,
            "decoder_weight": self.decoder_weight_,
            "decoder_bias": self.decoder_bias_,
            "ratings_indptr": self.ratings_.indptr.astype(np.int64),
            "ratings_indices": self.ratings_.indices.astype(np.int64),
            "ratings_data": self.ratings_.data.astype(np.float32),
            "global_mean": np.array([self.global_mean_], dtype=np.float64),
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
            "user_known": self.user_known_.astype(np.uint8),
            "item_known": self.item_known_.astype(np.uint8),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.encoder_weight_ = state["encoder_weight"]
        self.encoder_bias_ = state["encoder_bias"]
        self.decoder_weight_ = state["decoder_weight"]
        self.decoder_bias_ = state["decoder_bias"]
        n_items, n_users = len(state["item_bias"]), len(state["user_bias"])
        self.ratings_ = sp.csr_matrix(
            (state["ratings_data"], state["ratings_indices"], state["ratings_indptr"]), shape=(n_items, n_users)
        )
        self.global_mean_ = float(state["global_mean"][0])
        self.user_bias_ = state["user_bias"]
        self.item_bias_ = state["item_bias"]
        self.user_known_ = state["user_known"].astype(bool)
        self.item_known_ = state["item_known"].astype(bool)
        self._reconstruct()


def __getattr__(name: str) -> Any:
    """`AutoRecNet` (the torch network) lives in `movierec.models._nets`, imported on first use."""
    if name == "AutoRecNet":
        from movierec.models._nets import AutoRecNet

        return AutoRecNet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

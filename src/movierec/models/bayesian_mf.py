"""Bayesian probabilistic matrix factorisation (BPMF) fitted by Gibbs sampling.

Model (Salakhutdinov & Mnih, 2008, plus optional biases)::

    r_ui ~ N(mu + b_u + c_i + U_u . V_i, 1 / alpha)
    U_u ~ N(mu_U, Lambda_U^-1),  (mu_U, Lambda_U) ~ Normal-Wishart(0, beta0, W0 = I, nu0 = dim)
    V_i ~ N(mu_V, Lambda_V^-1),  (mu_V, Lambda_V) ~ Normal-Wishart(0, beta0, I, dim)
    b_u ~ N(0, 1 / lambda_b), c_i ~ N(0, 1 / lambda_c), lambda ~ Gamma(1, 1)
    alpha fixed, or ~ Gamma(1, 1) when `sample_alpha`

Each sweep draws the hyperparameters, then every user row at once and every item row at
once (their conditionals are independent given the other side): one batched Cholesky
factorisation of the (n, dim, dim) posterior precisions, built with a single sparse-dense
product. Predictions average mu + b_u + c_i + U_u . V_i over the samples kept after
burn-in; the kept factor samples are stacked side by side, so the average over samples of
U V^T is one matrix product: [U_1 .. U_S] [V_1 .. V_S]^T / S.

A new person (`fold_in`) gets, for every kept sample, the posterior mean of their bias and
factors given that sample's movie factors (a ridge regression whose prior is the spread
of that sample's user factors), and the same sample average as a training user. It
declares `dislikes`: the regression is on every rating, so a low one moves the person's
factors away from the disliked movie's, and movies like it are predicted lower.

No `embeddings()`: predictions are clipped to the rating scale, so movies predicted above
the top tie, and no dot product reproduces that order; unclipped, the exact embedding
would be the stacked samples, S * dim + 2 columns wide (1702 at the defaults).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models._rating_utils import clip_ratings
from movierec.models._memory import base_fit_bytes, csr_bytes
from movierec.models.base import Capabilities, Recommender
from movierec.models.space import Categorical, Float


def _wishart(rng: np.random.Generator, scale: np.ndarray, df: float) -> np.ndarray:
    """One draw from Wishart(scale, df) by the Bartlett decomposition, shape (d, d)."""
    d = scale.shape[0]
    chol = np.linalg.cholesky(scale)
    a = np.tril(rng.standard_normal((d, d)), -1)
    a[np.diag_indices(d)] = np.sqrt(rng.chisquare(df - np.arange(d)))
    la = chol @ a
    return la @ la.T


def _normal_wishart_draw(
    rng: np.random.Generator, x: np.ndarray, beta0: float, nu0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior (mean, precision) draw for rows of `x` (n, d) under NW(0, beta0, I, nu0)."""
    n, d = x.shape
    xbar = x.mean(axis=0)
    centred = x - xbar
    s = centred.T @ centred  # n * sample covariance
    beta_n = beta0 + n
    nu_n = nu0 + n
    mu_n = (n * xbar) / beta_n
    w_inv = np.eye(d) + s + (beta0 * n / beta_n) * np.outer(xbar, xbar)
    w_n = np.linalg.inv(w_inv)
    w_n = (w_n + w_n.T) / 2
    lam = _wishart(rng, w_n, nu_n)
    cov = np.linalg.inv(beta_n * lam)
    cov = (cov + cov.T) / 2
    mean = rng.multivariate_normal(mu_n, cov, method="cholesky")
    return mean, lam


def _draw_rows(
    rng: np.random.Generator,
    pattern: sp.csr_matrix,
    residual: sp.csr_matrix,
    other: np.ndarray,
    mean: np.ndarray,
    lam: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """Draw every row's factor from its Gaussian conditional, all rows at once.

    Args:
        pattern: rows x cols 0/1 matrix of observed entries.
        residual: rows x cols matrix of r - (everything but this side's factor term).
        other: the other side's factors, shape (cols, d).
        mean, lam: prior mean (d,) and precision (d, d).
        alpha: observation precision.

    Returns:
        New factors, shape (rows, d).
    """
    n = pattern.shape[0]
    d = other.shape[1]
    outer = (other[:, :, None] * other[:, None, :]).reshape(len(other), d * d)
    gram = np.asarray(pattern @ outer).reshape(n, d, d)
    prec = alpha * gram + lam[None]
    rhs = alpha * np.asarray(residual @ other) + (lam @ mean)[None]
    # x = L^-T (L^-1 rhs + z) has mean prec^-1 rhs and covariance prec^-1
    import torch  # here, not at module top: loading a saved model needs no torch

    chol = torch.from_numpy(np.linalg.cholesky(prec))
    y = torch.linalg.solve_triangular(chol, torch.from_numpy(rhs[:, :, None]), upper=False)
    y += torch.from_numpy(rng.standard_normal((n, d, 1)))
    x = torch.linalg.solve_triangular(chol.transpose(-1, -2), y, upper=True)
    return x.squeeze(-1).numpy()


class BayesianMF(Recommender):
    """BPMF with biases, fitted by Gibbs sampling; predictions average the samples.

    Args:
        dim: latent dimensions.
        burn_in: sweeps discarded before averaging.
        samples: sweeps averaged for predictions (all are kept in the model state).
        alpha: observation precision (1 / noise variance) when not sampled.
        sample_alpha: draw alpha from its Gamma posterior each sweep instead.
        beta0: Normal-Wishart prior strength on the factor means.
        biases: include user and item biases (Gaussian, with Gamma hyperpriors).
        init_std: standard deviation of the random starting factors.
        seed: seeds every draw; equal seeds give equal models.
    """

    name: ClassVar[str] = "bpmf"
    capabilities = Capabilities(predicts_ratings=True, similar_items=True, fold_in=True, dislikes=True)
    search_space = {
        "dim": Categorical([8, 10, 16, 24, 32]),
        "alpha": Float(1.0, 3.0),
        "samples": Categorical([100, 200, 300]),
    }

    def __init__(
        self,
        dim: int = 10,
        burn_in: int = 30,
        samples: int = 170,
        alpha: float = 2.0,
        sample_alpha: bool = True,
        beta0: float = 2.0,
        biases: bool = True,
        init_std: float = 0.1,
        seed: int = 42,
    ):
        self.dim = dim
        self.burn_in = burn_in
        self.samples = samples
        self.alpha = alpha
        self.sample_alpha = sample_alpha
        self.beta0 = beta0
        self.biases = biases
        self.init_std = init_std
        self.seed = seed

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps; the two float64 pattern CSRs and their residual copies;
        about a dozen float64/int64 arrays per rating (indices, orders, residuals) and the
        two gathered (ratings x dim) factor rows of the dot products; per side, four float64
        (rows x dim²) arrays (outer products, Gram, precision, Cholesky); the kept samples
        (float32, (users + movies) x dim x samples) three times (the list, the stacked
        copy, the masked result)."""
        d, s = int(self.dim), int(self.samples)
        return (base_fit_bytes(n_users, n_ratings) + 4 * csr_bytes(max(n_users, n_items), n_ratings, value_bytes=8)
                + 12 * 8 * n_ratings + 2 * 8 * d * n_ratings + 4 * 8 * d * d * max(n_users, n_items)
                + 3 * 4 * (n_users + n_items) * d * s)

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        if self.dim < 1 or self.samples < 1 or self.burn_in < 0:
            raise ConfigError("dim and samples must be at least 1 and burn_in at least 0.")
        rng = np.random.default_rng(self.seed)
        n_users, n_items = train.n_users, train.n_items
        u, i = train.user_idx.astype(np.int64), train.item_idx.astype(np.int64)
        r = train.rating.astype(np.float64)
        n = len(r)
        d = self.dim
        mu = float(r.mean())
        # one CSR per side with a fixed entry order, so residual matrices share the pattern
        order_u = np.lexsort((i, u))
        order_i = np.lexsort((u, i))
        nu_cnt = np.bincount(u, minlength=n_users).astype(np.float64)
        ni_cnt = np.bincount(i, minlength=n_items).astype(np.float64)
        # CSR built directly from the sorted order, so entry k of .data is rating order[k]
        pat_u = sp.csr_matrix(
            (np.ones(n), i[order_u], np.concatenate([[0], np.cumsum(nu_cnt).astype(np.int64)])),
            shape=(n_users, n_items),
        )
        pat_i = sp.csr_matrix(
            (np.ones(n), u[order_i], np.concatenate([[0], np.cumsum(ni_cnt).astype(np.int64)])),
            shape=(n_items, n_users),
        )

        def with_data(pattern: sp.csr_matrix, values: np.ndarray) -> sp.csr_matrix:
            out = pattern.copy()
            out.data = values
            return out

        U = self.init_std * rng.standard_normal((n_users, d))
        V = self.init_std * rng.standard_normal((n_items, d))
        bu = np.zeros(n_users)
        bi = np.zeros(n_items)
        alpha = float(self.alpha)
        keep_u, keep_v, sum_bu, sum_bi = [], [], np.zeros(n_users), np.zeros(n_items)
        total = self.burn_in + self.samples
        for sweep in range(total):
            # users
            mu_u, lam_u = _normal_wishart_draw(rng, U, self.beta0, d)
            res = r - mu - bu[u] - bi[i]
            U = _draw_rows(rng, pat_u, with_data(pat_u, res[order_u]), V, mu_u, lam_u, alpha)
            # items
            mu_v, lam_v = _normal_wishart_draw(rng, V, self.beta0, d)
            V = _draw_rows(rng, pat_i, with_data(pat_i, res[order_i]), U, mu_v, lam_v, alpha)
            dot = np.einsum("nd,nd->n", U[u], V[i])
            if self.biases:
                lam_b = rng.gamma(1.0 + n_users / 2, 1.0 / (1.0 + 0.5 * float(bu @ bu)))
                part = np.bincount(u, weights=r - mu - bi[i] - dot, minlength=n_users)
                prec = lam_b + alpha * nu_cnt
                bu = alpha * part / prec + rng.standard_normal(n_users) / np.sqrt(prec)
                lam_c = rng.gamma(1.0 + n_items / 2, 1.0 / (1.0 + 0.5 * float(bi @ bi)))
                part = np.bincount(i, weights=r - mu - bu[u] - dot, minlength=n_items)
                prec = lam_c + alpha * ni_cnt
                bi = alpha * part / prec + rng.standard_normal(n_items) / np.sqrt(prec)
            if self.sample_alpha:
                err = r - mu - bu[u] - bi[i] - dot
                alpha = rng.gamma(1.0 + n / 2, 1.0 / (1.0 + 0.5 * float(err @ err)))
            if sweep >= self.burn_in:
                keep_u.append(U.astype(np.float32))
                keep_v.append(V.astype(np.float32))
                sum_bu += bu
                sum_bi += bi
        s = len(keep_u)
        self.global_mean_ = mu
        self.user_bias_ = (sum_bu / s).astype(np.float32)
        self.item_bias_ = (sum_bi / s).astype(np.float32)
        # users/items without training ratings: their factor draws are prior noise; zero them
        self.user_factors_ = np.concatenate(keep_u, axis=1) * (nu_cnt > 0)[:, None].astype(np.float32)
        self.item_factors_ = np.concatenate(keep_v, axis=1) * (ni_cnt > 0)[:, None].astype(np.float32)
        self.user_bias_[nu_cnt == 0] = 0.0
        self.item_bias_[ni_cnt == 0] = 0.0
        self.alpha_ = alpha
        self._prior_cache = None

    # -- queries ----------------------------------------------------------------------
    @property
    def item_embeddings_(self) -> np.ndarray:
        """Posterior-mean item factors, shape (n_items, dim)."""
        s = self.item_factors_.shape[1] // self.dim
        return self.item_factors_.reshape(len(self.item_factors_), s, self.dim).mean(axis=1)

    @property
    def user_embeddings_(self) -> np.ndarray:
        s = self.user_factors_.shape[1] // self.dim
        return self.user_factors_.reshape(len(self.user_factors_), s, self.dim).mean(axis=1)

    def _n_samples(self) -> int:
        return self.user_factors_.shape[1] // self.dim

    def _predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        item_idx = np.asarray(item_idx, dtype=np.int64)
        out = np.empty(len(user_idx), dtype=np.float64)
        step = 4096
        for start in range(0, len(user_idx), step):
            uu, ii = user_idx[start : start + step], item_idx[start : start + step]
            dot = np.einsum("nk,nk->n", self.user_factors_[uu], self.item_factors_[ii], dtype=np.float64)
            out[start : start + step] = (
                self.global_mean_ + self.user_bias_[uu] + self.item_bias_[ii] + dot / self._n_samples()
            )
        return clip_ratings(out, self.rating_scale_).astype(np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        scores = (self.user_factors_[user_idx] @ self.item_factors_.T) / self._n_samples()
        scores += self.global_mean_ + self.user_bias_[user_idx, None] + self.item_bias_[None, :]
        return clip_ratings(scores, self.rating_scale_).astype(np.float32)

    def _similarity_vectors(self) -> np.ndarray:
        # all samples side by side: their cosine averages the per-sample dot products, so
        # it does not depend on how the samples' factor axes drift between sweeps
        return self.item_factors_

    def _user_prior(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Per kept sample, the mean (S, d) and precision (S, d, d) of the trained users'
        factors, and the precision of the user biases: the prior of a new person."""
        cache = getattr(self, "_prior_cache", None)
        if cache is not None:
            return cache
        s, d = self._n_samples(), self.dim
        active = np.flatnonzero(np.abs(self.user_factors_).sum(axis=1) > 0)
        U = self.user_factors_[active].reshape(len(active), s, d).astype(np.float64)
        mean = U.mean(axis=0)
        centred = U - mean[None]
        cov = np.einsum("nsd,nse->sde", centred, centred) / max(len(active) - 1, 1) + 1e-6 * np.eye(d)[None]
        var_b = float(np.var(self.user_bias_[active].astype(np.float64))) if len(active) > 1 else 0.0
        self._prior_cache = (mean, np.linalg.inv(cov), 1.0 / max(var_b, 1e-6))
        return self._prior_cache

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, None]:
        """Sample-averaged predicted ratings of every movie for a new person.

        Per kept sample s, [x_s, b_s] is the posterior mean of the person's factors and
        bias given that sample's movie factors V_s: a ridge regression of
        r - mu - c_i on [V_s, 1] with precision alpha and the users' prior. Movies only
        known to be liked count as the top of the rating scale.
        """
        if ratings is None:
            top = self.rating_scale_[1] if self.rating_scale_ else self.global_mean_ + 1.0
            ratings = np.full(len(item_idx), float(top))
        s, d = self._n_samples(), self.dim
        mean, prec, prec_b = self._user_prior()
        y = ratings - self.global_mean_ - self.item_bias_[item_idx].astype(np.float64)
        V = self.item_factors_[item_idx].reshape(len(item_idx), s, d).astype(np.float64)
        width = d + 1 if self.biases else d
        X = np.ones((s, len(item_idx), width))
        X[:, :, :d] = V.transpose(1, 0, 2)
        A = np.zeros((s, width, width))
        A[:, :d, :d] = prec
        rhs = np.zeros((s, width))
        rhs[:, :d] = np.einsum("sde,se->sd", prec, mean)
        if self.biases:
            A[:, d, d] = prec_b
        A += self.alpha_ * np.einsum("smi,smj->sij", X, X)
        rhs += self.alpha_ * np.einsum("smi,m->si", X, y)
        sol = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]  # (s, width)
        x = sol[:, :d].reshape(-1)  # samples side by side, like user_factors_
        bu = float(sol[:, d].mean()) if self.biases else 0.0
        scores = (self.item_factors_ @ x.astype(np.float32)) / s
        scores = scores + self.global_mean_ + bu + self.item_bias_
        return clip_ratings(scores, self.rating_scale_).astype(np.float32), None

    # -- persistence ------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "global_mean": np.array([self.global_mean_], dtype=np.float64),
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "alpha": np.array([self.alpha_], dtype=np.float64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.global_mean_ = float(state["global_mean"][0])
        self.user_bias_ = state["user_bias"]
        self.item_bias_ = state["item_bias"]
        self.user_factors_ = state["user_factors"]
        self.item_factors_ = state["item_factors"]
        self.alpha_ = float(state["alpha"][0])
        self._prior_cache = None

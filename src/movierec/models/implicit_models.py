"""ALS and BPR from the `implicit` library (0.7.x, CPU), wrapped in the movierec contract.

The wrappers own every orientation and ID question so callers never meet them:

* `implicit` 0.7 `fit(user_items)` takes a users x items CSR matrix; `Dataset.to_csr`
  builds exactly that (rows: user index, columns: item index), and the shapes are
  checked after fitting, so a transposed matrix can never slip through.
* Public methods take and return raw MovieLens IDs; indices stay inside.
* `implicit` warns when OpenBLAS/MKL run their own thread pool; the wrappers construct
  and fit inside `threadpoolctl.threadpool_limits(1, "blas")`, so the warning is never
  raised and the BLAS pool is restored afterwards.
* The CPU classes (`implicit.cpu.*`) are used explicitly: no GPU is ever picked up.
* implicit's own tqdm bar is off; each sweep (epoch) is reported through implicit's
  `fit(..., callback=...)` as a step of a `movierec.training.progress` task, which the
  CLI shows as a bar or as log lines.

Data: every rating is one interaction (a watched-and-rated movie). The confidence of an
interaction is ``1 + alpha * r`` where ``r`` is 1 (``values="ones"``, the default) or
the star rating (``values="rating"``). `implicit` treats the matrix values as the
confidence itself, so the wrapper passes ``1 + alpha * r`` and sets implicit's own
``alpha`` to 1.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models._memory import base_fit_bytes, csr_bytes
from movierec.models.base import Capabilities, Recommender
from movierec.models.space import Categorical, Float, Int
from movierec.training.progress import progress_task

_VALUES = ("ones", "rating")


def _interaction_matrix(train: Dataset, values: str) -> sp.csr_matrix:
    """users x items float32 CSR of r (1 or the rating) for every training interaction."""
    if values not in _VALUES:
        raise ConfigError(f"values must be one of {', '.join(_VALUES)}, got {values!r}.")
    X = train.to_csr("ones" if values == "ones" else "rating").astype(np.float32)
    if values == "ones":
        X.data[:] = 1.0  # duplicates were summed; an interaction counts once
    if X.shape != (train.n_users, train.n_items):
        raise ConfigError("Internal error: the interaction matrix is not users x items.")
    return X


def _confidence(X: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    C = X.copy()
    C.data = (1.0 + alpha * C.data).astype(np.float32)
    return C


class _ImplicitFactorModel(Recommender):
    """Shared plumbing: factor matrices, scoring by dot product, state hooks.

    `_score` is exactly ``user_embeddings_ @ item_embeddings_.T``, so those matrices are
    the model's `embeddings()`.
    """

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.user_embeddings_[np.asarray(user_idx, dtype=np.int64)] @ self.item_embeddings_.T

    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        return self.user_embeddings_, self.item_embeddings_

    def _liked_values(self, ratings: np.ndarray | None, m: int) -> np.ndarray:
        """r of a new person's interactions, as in training: 1 each with values="ones";
        the ratings with values="rating" (the top of the rating scale for movies only
        known to be liked)."""
        if self.values == "rating":
            if ratings is not None:
                return ratings.astype(np.float64)
            top = self.rating_scale_[1] if self.rating_scale_ else 1.0
            return np.full(m, float(top))
        return np.ones(m)

    def _check_shapes(self, train: Dataset) -> None:
        if self.user_embeddings_.shape[0] != train.n_users or self.item_embeddings_.shape[0] != train.n_items:
            raise ConfigError(
                "Internal error: implicit returned factors in the wrong orientation "
                f"({self.user_embeddings_.shape[0]} user rows for {train.n_users} users)."
            )

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_embeddings": self.user_embeddings_, "item_embeddings": self.item_embeddings_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.user_embeddings_ = np.asarray(state["user_embeddings"], dtype=np.float32)
        self.item_embeddings_ = np.asarray(state["item_embeddings"], dtype=np.float32)


class ALS(_ImplicitFactorModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via `implicit.cpu.als`.

    Score of user u for item i: ``user_embeddings_[u] @ item_embeddings_[i]``.

    Args:
        factors: latent dimension.
        regularization: L2 weight lambda on both factor matrices (not scaled by counts).
        alpha: confidence slope; an interaction's confidence is ``1 + alpha * r``.
        iterations: ALS sweeps (each solves all users, then all items).
        values: "ones" (r = 1 for every rating) or "rating" (r = the star rating).
        use_cg: conjugate-gradient solver (implicit's fast default) instead of Cholesky.
        num_threads: threads for implicit's solver (0 = all cores). ALS is deterministic
            for any thread count, since every user (item) solve is independent.
        seed: seed of the factor initialisation.

    Fitted attributes:
        user_embeddings_: float32, shape (n_users, factors).
        item_embeddings_: float32, shape (n_items, factors).
    """

    name: ClassVar[str] = "als"
    capabilities = Capabilities(embeddings=True, similar_items=True, fold_in=True)
    search_space = {
        "factors": Categorical([32, 64, 128, 256]),
        "regularization": Float(1e-3, 100.0, log=True),
        "alpha": Float(0.1, 100.0, log=True),
        "iterations": Int(5, 30),
        "values": Categorical(["ones", "rating"]),
    }

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        values: str = "ones",
        use_cg: bool = True,
        num_threads: int = 0,
        seed: int = 42,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.values = values
        self.use_cg = use_cg
        self.num_threads = num_threads
        self.seed = seed

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps; float32 CSRs of the interactions, the confidences and
        implicit's item-user transpose; the user and movie factors (float32), implicit's
        and the copies kept."""
        return (base_fit_bytes(n_users, n_ratings) + 3 * csr_bytes(n_users, n_ratings)
                + 2 * 4 * (n_users + n_items) * int(self.factors))

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        if self.factors < 1 or self.iterations < 1 or self.regularization < 0 or self.alpha < 0:
            raise ConfigError("ALS needs factors >= 1, iterations >= 1, regularization >= 0 and alpha >= 0.")
        X = _interaction_matrix(train, self.values)
        C = _confidence(X, self.alpha)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=1.0,  # confidences are passed in already: 1 + alpha * r
                iterations=int(self.iterations),
                use_cg=bool(self.use_cg),
                num_threads=int(self.num_threads),
                random_state=int(self.seed),
                calculate_training_loss=False,
            )
            with progress_task("training als", total=int(self.iterations), unit="sweep") as task:
                # implicit 0.7 calls back after each sweep with (iteration, seconds, loss or None)
                model.fit(C, show_progress=False, callback=lambda iteration, seconds, loss: task.advance(loss=loss))
        self.user_embeddings_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_embeddings_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._check_shapes(train)

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_embeddings_

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A new person's vector by ALS's exact closed-form user solve, item factors fixed.

        Solves ``(Y^T Y + Y^T (C_u - I) Y + lambda I) x = Y^T C_u p_u`` (the user step of
        ALS itself, solved exactly rather than by conjugate gradient), with confidences
        ``1 + alpha * r`` as in training (see `_liked_values`).

        No `dislikes`: ALS reads every interaction as a preference of 1 with some
        confidence, so a disliked movie could only pull towards itself; the base hands
        over the liked movies only.

        Returns:
            (scores ``Y @ x``, shape (n_items,), x, shape (factors,), in the space of
            `user_embeddings_`).
        """
        r = self._liked_values(ratings, len(item_idx))
        Y = self.item_embeddings_.astype(np.float64)
        f = Y.shape[1]
        conf = 1.0 + float(self.alpha) * r
        Yu = Y[item_idx]
        A = Y.T @ Y + float(self.regularization) * np.eye(f) + (Yu * (conf - 1.0)[:, None]).T @ Yu
        b = Yu.T @ conf
        x = np.linalg.solve(A, b).astype(np.float32)
        return self.item_embeddings_ @ x, x


class BPR(_ImplicitFactorModel):
    """Bayesian Personalized Ranking (Rendle et al. 2009) via `implicit.cpu.bpr`.

    implicit stores an item bias as the last factor column, with the matching user column
    fixed at 1. The embeddings here keep that layout, so
    ``user_embeddings_ @ item_embeddings_.T`` is exactly implicit's score:
    ``user_embeddings_`` = [user factors, 1], ``item_embeddings_`` = [item factors, bias],
    both shape (n, factors + 1). `item_bias_` is the last column on its own.

    Args:
        factors: latent dimension (without the bias column).
        learning_rate: SGD step size.
        regularization: L2 weight.
        iterations: epochs over the interactions.
        values: "ones" or "rating"; BPR uses only which entries are positive, so both fit
            the same model (kept for a uniform interface).
        num_threads: implicit's SGD threads. Default 1: BPR's multi-threaded SGD is
            lock-free (Hogwild) and so not reproducible; with 1 thread the same seed
            gives the same model.
        seed: seed of initialisation and negative sampling.
    """

    name: ClassVar[str] = "bpr"
    capabilities = Capabilities(embeddings=True, similar_items=True, fold_in=True)
    search_space = {
        "factors": Categorical([32, 64, 128]),
        "learning_rate": Float(1e-3, 0.2, log=True),
        "regularization": Float(1e-5, 0.1, log=True),
        "iterations": Int(20, 300, log=True),
    }

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        values: str = "ones",
        num_threads: int = 1,
        seed: int = 42,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.values = values
        self.num_threads = num_threads
        self.seed = seed

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps; float32 CSRs of the interactions and implicit's copies
        of them (its sampler reads them as user-item pairs); the factors with their bias
        column (float32), implicit's and the copies kept."""
        return (base_fit_bytes(n_users, n_ratings) + 3 * csr_bytes(n_users, n_ratings) + 16 * n_ratings
                + 2 * 4 * (n_users + n_items) * (int(self.factors) + 1))

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        if self.factors < 1 or self.iterations < 1 or self.learning_rate <= 0 or self.regularization < 0:
            raise ConfigError("BPR needs factors >= 1, iterations >= 1, learning_rate > 0 and regularization >= 0.")
        X = _interaction_matrix(train, self.values)
        with threadpool_limits(1, "blas"):
            model = BayesianPersonalizedRanking(
                factors=int(self.factors),
                learning_rate=float(self.learning_rate),
                regularization=float(self.regularization),
                iterations=int(self.iterations),
                num_threads=int(self.num_threads),
                random_state=int(self.seed),
            )
            positives = int(X.nnz)

            def sweep_done(epoch: int, seconds: float, correct: int, skipped: int) -> None:
                # implicit 0.7 calls back after each epoch with the share of sampled pairs it
                # already ranked right (its own "train_auc")
                pairs = positives - int(skipped)
                task.advance(train_auc=correct / pairs if pairs > 0 else None)

            with progress_task("training bpr", total=int(self.iterations), unit="epoch") as task:
                model.fit(X, show_progress=False, callback=sweep_done)
        U = np.asarray(model.user_factors, dtype=np.float32)
        V = np.asarray(model.item_factors, dtype=np.float32)
        # implicit 0.7 CPU BPR: factors + 1 columns, the last is the item bias (user side = 1)
        if U.shape[1] != V.shape[1]:
            raise ConfigError("Internal error: implicit BPR returned factors of different widths.")
        self.user_embeddings_ = np.ascontiguousarray(U)
        self.item_embeddings_ = np.ascontiguousarray(V)
        self._check_shapes(train)

    def _similarity_vectors(self) -> np.ndarray:
        # the pure factors: the bias column says how popular a movie is, not what it is like
        return self.item_embeddings_[:, :-1]

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A new person's vector: the optimum of BPR's own objective for one user, movie
        factors and biases fixed.

        No `dislikes`: BPR ranks every given movie above the others, so a disliked one
        could only be ranked up; the base hands over the liked movies only (a disliked
        movie stays among the sampled negatives, like any movie not given).

        Minimises ``-E[log sigmoid(x . (v_i - v_j) + b_i - b_j)] + regularization / 2 * |x|^2``
        over the given movies i and the other movies j weighted by training popularity
        (what implicit's SGD samples as negatives), by L-BFGS from x = 0: the problem is
        strictly convex, so the answer is unique and deterministic. Ratings are not
        used (BPR only knows which movies are positive).

        Returns:
            (scores, shape (n_items,), the vector [x, 1], shape (factors + 1,), in the
            space of `user_embeddings_`).
        """
        from scipy.optimize import minimize

        V = self.item_embeddings_[:, :-1].astype(np.float64)
        b = self.item_embeddings_[:, -1].astype(np.float64)
        w = np.asarray(self.seen_.sum(axis=0), dtype=np.float64).ravel()
        w[item_idx] = 0.0
        w /= max(w.sum(), 1e-12)
        VP, bP = V[item_idx], b[item_idx]
        reg = float(self.regularization)
        step = max(1, 4_000_000 // max(len(b), 1))

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            neg = V @ x + b
            pos = VP @ x + bP
            loss, g_pos, g_neg = 0.0, np.zeros(len(pos)), np.zeros(len(neg))
            for start in range(0, len(pos), step):
                margin = pos[start : start + step, None] - neg[None, :]
                loss += float((np.logaddexp(0.0, -margin) @ w).sum())  # -log sigmoid(margin) = softplus(-margin)
                zw = np.exp(-np.logaddexp(0.0, margin)) * w[None, :]  # sigmoid(-margin) * w_j
                g_pos[start : start + step] = zw.sum(axis=1)
                g_neg += zw.sum(axis=0)
            m = len(pos)
            grad = -(g_pos @ VP - g_neg @ V) / m + reg * x
            return loss / m + 0.5 * reg * float(x @ x), grad

        x = minimize(objective, np.zeros(V.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
        vector = np.append(x, 1.0).astype(np.float32)
        return self.item_embeddings_ @ vector, vector

    @property
    def item_bias_(self) -> np.ndarray:
        """Item bias learned by BPR, shape (n_items,)."""
        self._check_fitted()
        return self.item_embeddings_[:, -1]


__all__ = ["ALS", "BPR"]

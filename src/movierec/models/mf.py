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
on validation RMSE with the best weights restored, on the shared early-stop-then-refit
policy (`movierec.training.early_stopping`): without a validation set, a seeded share of
the training ratings is held out for early stopping and (by default) the model is then
retrained on all of them for the best number of epochs. With `patience=0` it trains
`epochs` epochs once, on every rating: the fastest fit, for an epoch count chosen on
validation beforehand (ML-100K's tuned config, `configs/tuned/ml-100k/ml100k-folds/mf.json`).
In one process each step is closed-form: the batch's loss and its gradient on the used
rows (`_nets.mf_loss_and_grads`), then Adam's update of both tables (`_AdamStep`), with no
autograd and no `torch.optim`, and the same weights as `torch.optim.Adam(fused=True)`.

Declared capabilities:

* embeddings: users [p_u, 1], movies [q_i, b_i]. A user's ranking is by p_u·q_i + b_i
  (μ and b_u are the same for every movie, and the optional sigmoid is increasing), so
  the dot product ranks exactly as `recommend`;
* similar movies: cosine of the pure factors q_i;
* fold-in (`fold_in(movie_ids, ratings)`): from ratings, a ridge regression for the new
  user's vector and bias against the frozen movie factors and biases (the training
  objective for one user); from liked movies only, an implicit-feedback solve (see
  `_fold_in_liked`), so two people with different tastes get different lists. It
  declares `dislikes`: the regression is on every rating, so a low one turns the
  person's vector away from the disliked movie's factors (it stays in the vector, so an
  index over the embeddings answers as `recommend_new`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models._fold_in import biased_dot_embeddings, liked_fold_in
from movierec.models._memory import adam_param_bytes, base_fit_bytes
from movierec.models._torch_base import TorchRecommender
from movierec.models.base import Capabilities
from movierec.models.space import Categorical, Float
from movierec.training import distributed
from movierec.training.early_stopping import EarlyStopResult, early_stop_then_refit, random_holdout
from movierec.training.options import seed_everything
from movierec.training.trainer import History, tensor_batches

if TYPE_CHECKING:  # torch is imported by training only: a saved model loads and answers without it
    import torch
    from torch import nn

    from movierec.models._nets import BiasedMFModule

_OPTIMIZERS = ("adam", "sparse_adam", "adagrad", "sgd")


class BiasedMF(TorchRecommender):
    """Biased matrix factorisation trained with mini-batch Adam (PyTorch).

    Args:
        dim: number of latent factors per user and movie.
        reg: L2 penalty on the factor rows used in each batch (per rating).
        reg_bias: L2 penalty on the bias entries used in each batch (per rating).
        lr: learning rate.
        epochs: maximum number of epochs.
        patience: epochs without validation improvement before stopping; 0 turns early
            stopping off (`epochs` epochs on all the data).
        batch_size: ratings per optimiser step.
        init_std: standard deviation of the normal factor initialisation.
        output_range: squash predictions into the rating range with a scaled sigmoid.
        range_margin: with `output_range`, the sigmoid spans [low − margin, high + margin]
            so the extremes of the scale are reachable.
        optimizer: "adam", "sparse_adam", "adagrad" or "sgd".
        adam_eps: Adam's ε, added to the root of its second-moment estimate ("adam" and
            "sparse_adam"). torch's 1e-8 lets every row step at the full learning rate
            however small its gradients; near the gradients' own scale (1e-4 for batches of
            4096) it damps the steps of rarely rated users and movies, whose gradients are
            small and sparse, which regularises them (ML-100K's tuned config uses it). The
            gradients shrink as `batch_size` grows, so the damping grows with it.
        validation_fraction: share of the training ratings held out for early stopping when
            `fit` gets no validation set.
        refit: after early stopping on the internal hold-out, retrain on all training
            ratings for the best number of epochs (else keep the early-stopped model).
        fold_in_reg: ridge penalty of `fold_in` from ratings; None (default) matches
            training, whose per-rating penalty amounts to λ = reg · n on the vector
            (reg_bias · n on the bias) for a user with n ratings.

    Runtime options (seed, device, threads, progress, distributed) are given at fit time:
    `fit(train, runtime=RuntimeOptions(...))` (see `movierec.training.options`).
    """

    name = "mf"
    capabilities = Capabilities(predicts_ratings=True, embeddings=True, similar_items=True, fold_in=True,
                                dislikes=True)
    search_space = {
        "dim": Categorical([16, 32, 64, 128]),
        "reg": Float(0.02, 0.3, log=True),
        "reg_bias": Float(1e-4, 0.1, log=True),
        "lr": Float(3e-3, 5e-2, log=True),
        "batch_size": Categorical([2048, 4096, 8192]),
        "init_std": Float(0.01, 0.2, log=True),
        "output_range": Categorical([False, True]),
    }

    #: liked-only fold-in: confidence of a liked movie over an unobserved one (implicit ALS's α) ...
    LIKED_CONFIDENCE = 10.0
    #: ... the ridge penalty, as a share of the mean diagonal of QᵀQ ...
    LIKED_REG = 1.0
    #: ... and the length of the taste vector in typical-trained-user lengths: it weighs
    #: taste against the movie bias (larger: more taste, fewer well-liked classics)
    LIKED_TASTE_SCALE = 5.0

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
        adam_eps: float = 1e-8,
        validation_fraction: float = 0.05,
        refit: bool = True,
        fold_in_reg: float | None = None,
        **legacy_runtime: Any,
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
        self.adam_eps = adam_eps
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.fold_in_reg = fold_in_reg
        self._take_legacy_runtime(legacy_runtime)

    # -- fitting ----------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(_OPTIMIZERS)}, got {self.optimizer!r}.")
        if int(self.dim) < 1 or int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ConfigError("dim, epochs and batch_size must be positive whole numbers.")
        if min(self.reg, self.reg_bias, self.fold_in_reg or 0.0) < 0 or self.lr <= 0 or not self.adam_eps > 0:
            raise ConfigError("reg, reg_bias and fold_in_reg must be >= 0, and lr and adam_eps > 0.")
        if not 0 <= self.validation_fraction < 0.5:
            raise ConfigError(f"validation_fraction must be in [0, 0.5), got {self.validation_fraction!r}.")

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps; the user and movie tables ([factors, bias], float32) under
        Adam (`adam_param_bytes`); per rating, the device's user and movie indices (int64)
        and stars (float32), their shuffled copy each epoch, the permutation, and the
        internal hold-out's copy of the training set; per step, the batch's gathered rows,
        their products and gradients (about 12 float32 arrays of batch_size x (dim + 1));
        per epoch, the training RMSE's gathered rows of at most 20,000 ratings (3 float32
        arrays of (dim + 1) columns)."""
        width = int(self.dim) + 1
        tables = (n_users + n_items) * width
        steps = 48 * int(self.batch_size) * width + 12 * width * min(20_000, n_ratings)
        return base_fit_bytes(n_users, n_ratings) + adam_param_bytes(tables) + 72 * n_ratings + steps

    def _range(self) -> tuple[float, float] | None:
        if not self.output_range or not self.rating_scale_:
            return None
        low, high = self.rating_scale_
        return (float(low) - self.range_margin, float(high) + self.range_margin)

    def _make_optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        import torch

        params = list(module.parameters())
        if self.optimizer == "adam":
            # the fused kernel: one pass per table and step, about half the time of the default
            return torch.optim.Adam(params, lr=self.lr, eps=float(self.adam_eps), fused=True)
        if self.optimizer == "sparse_adam":
            return torch.optim.SparseAdam(params, lr=self.lr, eps=float(self.adam_eps))
        if self.optimizer == "adagrad":
            return torch.optim.Adagrad(params, lr=self.lr)
        return torch.optim.SGD(params, lr=self.lr)

    def _closed_form_steps(self) -> bool:
        """Whether each step computes the gradient in closed form and applies Adam's update to
        the tables itself (`_AdamStep`: no autograd, no `torch.optim`, the same weights as
        `torch.optim.Adam(fused=True)`): with "adam" in one process. Under DDP the loss goes
        through the network's `forward` and `backward` (DDP averages the gradients there)."""
        return self.optimizer == "adam" and not getattr(self, "_dist", distributed.SINGLE).active

    def _train(self, train: Dataset, validation: Dataset | None, epochs: int, mu: float,
               track: bool = True) -> tuple[BiasedMFModule, History]:
        """A fresh network trained on `train`, early-stopped on `validation` RMSE when given."""
        import torch

        from movierec.models._nets import BiasedMFModule, mf_loss_and_grads

        device = self._device
        gen = seed_everything(self._seed)
        module = BiasedMFModule(
            train.n_users, train.n_items, int(self.dim), float(self.init_std), mu, self._range(),
            sparse=self.optimizer in ("sparse_adam", "sgd"),
        ).to(device)
        u = torch.as_tensor(train.user_idx, dtype=torch.long, device=device)
        i = torch.as_tensor(train.item_idx, dtype=torch.long, device=device)
        r = torch.tensor(train.rating, dtype=torch.float32, device=device)
        bs = int(self.batch_size)
        # per-column L2 weights: reg on the factors, reg_bias on the bias column
        weights = torch.full((int(self.dim) + 1,), float(self.reg), device=device)
        weights[-1] = float(self.reg_bias)

        def batches():
            return tensor_batches((u, i, r), bs, generator=gen)

        opt: torch.optim.Optimizer | None
        if self._closed_form_steps():
            opt = None
            module.requires_grad_(False)
            tables = (module.users.weight, module.items.weight)
            adam = _AdamStep(tables, lr=float(self.lr), eps=float(self.adam_eps))

            def loss_fn(m: BiasedMFModule, batch) -> torch.Tensor:
                bu_idx, bi_idx, target = batch
                loss, users_grad, items_grad = mf_loss_and_grads(tables[0], tables[1], bu_idx, bi_idx, target,
                                                                 weights, module.offset, module.rating_range)
                adam.step((users_grad, items_grad))
                return loss
        else:
            opt = self._make_optimizer(module)

            def loss_fn(m: BiasedMFModule, batch) -> torch.Tensor:
                bu_idx, bi_idx, target = batch
                # MSE + L2 on the rows used in this batch, once per rating (as in SGD-MF),
                # through forward (so DDP sees it), with a fused gradient for dense tables
                return m(bu_idx, bi_idx, target, weights)

        clip = self.rating_scale_

        def rmse_of(m: BiasedMFModule, uu, ii, rr) -> float:
            pred, _ = m(uu, ii)
            if clip:
                pred = pred.clamp(clip[0], clip[1])
            return float(torch.sqrt(torch.mean((pred - rr) ** 2)))

        # training RMSE per epoch (on a fixed sample of at most 20,000 ratings) for learning curves
        sample = torch.randperm(len(r), generator=torch.Generator().manual_seed(self._seed))[:20_000].to(device)
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

        history = self._run_epochs(module, opt, batches, loss_fn, validate, epochs=epochs, mode="min",
                                   epoch_metrics=epoch_metrics if track else None)
        return module, history

    def _fit_epochs(self, train: Dataset, shard: Dataset, validation: Dataset | None) -> EarlyStopResult:
        # the mean of all the ratings, so every process of a distributed run starts alike
        mu = float(np.mean(train.rating, dtype=np.float64))
        if validation is not None and validation.n_ratings == 0:
            validation = None

        def train_one(data: Dataset, val: Dataset | None, epochs: int, refitting: bool):
            return self._train(data, val, epochs, mu, track=not refitting)

        result = early_stop_then_refit(
            train_one, shard, validation,
            lambda data: random_holdout(data, float(self.validation_fraction), self._seed),
            epochs=int(self.epochs), patience=int(self.patience), refit=bool(self.refit),
        )
        self._store(result.module)
        return result

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
        self._gram = None

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

    # -- embeddings, similar movies, cold start -------------------------------------
    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Users [p_u, 1], movies [q_i, b_i]: the dot product p_u·q_i + b_i ranks as `_score`."""
        return biased_dot_embeddings(self.user_embeddings_, self.item_embeddings_, self.item_bias_)

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_embeddings_

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """From ratings, the ridge regression on every rating (`_fold_in_ratings`: low ones
        push the vector away from the disliked movies' factors, which is how `liked` is
        used); from liked movies alone, the implicit solve (`_fold_in_liked`)."""
        if ratings is None:
            return self._fold_in_liked(item_idx)
        p, b = self._fold_in_ratings(item_idx, ratings)
        scores = self._squash(self.offset_ + b + self.item_bias_.astype(np.float64)
                              + self.item_embeddings_.astype(np.float64) @ p)
        return scores, np.append(p, 1.0)

    def _fold_in_ratings(self, idx: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, float]:
        """A new user's factor vector (dim,) and bias from their ratings (float64).

        Solves the ridge regression
        min_{p, b} Σ_i (r_i − μ − b_i − b − q_i·p)² + λ ‖p‖² + λ_b b²
        against the frozen movie factors q_i and biases b_i (closed form), with
        λ = reg · n and λ_b = reg_bias · n for n ratings (exactly the training objective
        for one user with the movies fixed), or λ = λ_b = fold_in_reg when set. With
        `output_range`, the same is done by a few Gauss–Newton steps through the sigmoid.
        The predicted ratings are `_squash(offset + b + b_i + q_i·p)` (unclipped, like `score`).
        """
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
        return w[:-1], float(w[-1])

    def _fold_in_liked(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and vector [p, w] of a new person known only by movies they liked.

        Regressing all-5s on the liked movies would mostly fit the user bias and return
        the same well-rated classics for everyone. Liked movies are instead implicit
        positive feedback (implicit ALS, Hu et al. 2008): target 1 with confidence
        1 + α on the liked movies, target 0 with confidence 1 on all others,

            p = (QᵀQ + α Q_LᵀQ_L + λI)⁻¹ (1 + α) Q_Lᵀ1,

        with QᵀQ computed once and cached. p gives the taste direction; it is rescaled to
        `LIKED_TASTE_SCALE` times a typical trained user's length and movies rank by
        p·q_i + b_i, as for a trained user: a Star Wars fan and a Disney fan get different
        lists, still leaning to well-liked movies (α, λ: `LIKED_CONFIDENCE`, `LIKED_REG`).

        Movies with very few ratings have barely trained factors and can surface by
        chance; pass `candidates` (e.g. movies with >= 20 ratings) to `recommend_new`
        to leave them out.

        Returns:
            (scores (n_items,), vector [p, 1] in `Embeddings.users` space).
        """
        typical = float(np.median(np.linalg.norm(self.user_embeddings_, axis=1)))
        return liked_fold_in(self.item_embeddings_, self._item_gram(), self.item_bias_, typical, idx,
                             np.ones(len(idx)), float(self.LIKED_CONFIDENCE), float(self.LIKED_REG),
                             float(self.LIKED_TASTE_SCALE))

    def _item_gram(self) -> np.ndarray:
        """QᵀQ of the movie factors (float64, (dim, dim)), computed once per fitted state."""
        if getattr(self, "_gram", None) is None:
            Q = self.item_embeddings_.astype(np.float64)
            self._gram = Q.T @ Q
        return self._gram

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
        self._gram = None


class _AdamStep:
    """Adam's update of dense tables from given gradients: what `torch.optim.Adam` does
    (`fused=True`: the same kernel and state, so the same weights), without an optimizer
    object. Its first use in a process costs no `torch._dynamo` import (1-3 s: every
    `torch.optim` call goes through `torch._disable_dynamo`), and a step needs no `.grad`.

    Args:
        params: the tables updated in place, e.g. (n_users, dim + 1) and (n_items, dim + 1).
        lr, betas, eps: as `torch.optim.Adam`'s.
    """

    def __init__(self, params: tuple[torch.Tensor, ...], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        import torch

        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        # the step count as torch.optim keeps it for the fused kernel: a float32 scalar per table
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        self.t = 0
        self.fused = hasattr(torch, "_fused_adam_")

    def step(self, grads: tuple[torch.Tensor, ...]) -> None:
        """Update each table with its gradient (shaped as the table)."""
        import torch

        beta1, beta2 = self.betas
        self.t += 1
        if self.fused:
            for count in self.steps:
                count.add_(1)
            torch._fused_adam_(self.params, list(grads), self.exp_avgs, self.exp_avg_sqs, [], self.steps,
                               lr=self.lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=self.eps,
                               amsgrad=False, maximize=False)
            return
        # torch builds without the fused kernel: the same update in plain tensor operations
        for param, grad, avg, avg_sq in zip(self.params, grads, self.exp_avgs, self.exp_avg_sqs):
            avg.lerp_(grad, 1 - beta1)
            avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (avg_sq.sqrt() / math.sqrt(1 - beta2**self.t)).add_(self.eps)
            param.addcdiv_(avg, denom, value=-self.lr / (1 - beta1**self.t))


def __getattr__(name: str) -> Any:
    """`BiasedMFModule` (the torch network) lives in `movierec.models._nets`, imported on first use."""
    if name == "BiasedMFModule":
        from movierec.models._nets import BiasedMFModule

        return BiasedMFModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

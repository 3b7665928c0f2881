"""Dot-product matrix factorisation trained to rank (implicit feedback).

score(u, i) = p_u . q_i + b_i. Two losses:

- "softmax" (default): sampled softmax. Each positive (u, i) competes against `n_neg`
  items drawn uniformly per batch and shared by the batch; negatives that happen to be
  one of the user's interactions are masked out. With `n_neg >= n_items` the full
  softmax over the catalog is used. Many negatives per positive rank better than BPR.
- "bpr": Bayesian personalised ranking, -log sigmoid(s(u, i) - s(u, j)), averaged over
  `n_neg` per-positive negatives drawn uniformly from the items the user has not seen,
  fresh each epoch and a chunk of positives at a time (`_ranking_common.pairwise_chunks`),
  so they take bounded memory however many interactions there are.

Every rating counts as an interaction (or only ratings >= `min_rating`). Early stopping
watches NDCG@10 on the shared early-stop-then-refit policy, as for NeuMF (see
`movierec.models._ranking_common.fit_ranking_model`).

Declared capabilities: embeddings (users [p_u, 1], movies [q_i, b_i], whose dot product is
exactly the score), similar movies (cosine of the pure factors q_i), and fold-in of a new
person from liked (or rated) movies by an implicit-feedback solve against the frozen q_i.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError, NoLikedMoviesError
from movierec.models._fold_in import biased_dot_embeddings, liked_fold_in
from movierec.models import _ranking_common
from movierec.models._ranking_common import NegativeSampler, chunked_batches, fit_ranking_model, pairwise_chunks
from movierec.models._memory import adam_param_bytes, base_fit_bytes, ranking_validation_bytes
from movierec.models._torch_base import TorchRecommender
from movierec.models.base import Capabilities
from movierec.models.space import Categorical, Float
from movierec.training.options import seed_everything
from movierec.training.early_stopping import EarlyStopResult
from movierec.training.trainer import tensor_batches

if TYPE_CHECKING:  # torch is imported by training only: a saved model loads and answers without it
    import torch

    from movierec.models._nets import DotModule

LOSSES = ("softmax", "bpr")


class MFRank(TorchRecommender):
    """Matrix factorisation for top-k ranking (dot product + item bias), BPR or sampled softmax.

    Fitted attributes: `user_embeddings_` (n_users, dim), `item_embeddings_` (n_items, dim)
    (pure factors), `item_bias_` (n_items,), `history_`, `best_epoch_`.

    Args:
        dim: embedding size.
        loss: "softmax" (sampled softmax, default) or "bpr".
        epochs: maximum number of epochs.
        lr: Adam learning rate.
        reg: L2 penalty on the embeddings (and biases) of each batch, per row.
        batch_size: positives per step.
        n_neg: negatives per positive: shared per batch for softmax (the full catalog when
            >= n_items), per positive for BPR.
        temperature: softmax logits are divided by it.
        patience: epochs without NDCG@10 improvement before stopping; 0 turns early
            stopping off (`epochs` epochs on all the data).
        refit: after early stopping on the internal holdout, retrain on all training data.
        min_rating: ratings below this are ignored (None: every rating is an interaction).

    Runtime options (seed, device, threads, progress, distributed) are given at fit time:
    `fit(train, runtime=RuntimeOptions(...))` (see `movierec.training.options`).
    """

    name: ClassVar[str] = "mf-rank"
    #: both losses call the network's other methods (`score_items`, the `user` and `item`
    #: tables for the penalty), which a DDP wrapper does not have: under torchrun the
    #: gradients are averaged explicitly after each backward instead
    ddp_forward: ClassVar[bool] = False
    capabilities = Capabilities(embeddings=True, similar_items=True, fold_in=True)
    search_space = {
        "dim": Categorical([32, 64, 128]),
        "lr": Float(1e-3, 3e-2, log=True),
        "reg": Float(1e-4, 2e-1, log=True),
        "n_neg": Categorical([128, 256, 512, 1024]),
        "temperature": Float(0.2, 1.5, log=True),
    }

    #: fold-in from liked movies (see `movierec.models._fold_in.liked_fold_in`): confidence
    #: of a liked movie, ridge penalty (share of the mean diagonal of QᵀQ), taste-vector length
    #: (measured: a training user's own movies folded in share 0.645 of their trained top 10
    #: with the tuned ML-100K config)
    LIKED_CONFIDENCE = 10.0
    LIKED_REG = 0.1
    LIKED_TASTE_SCALE = 1.0

    def __init__(
        self,
        dim: int = 64,
        loss: str = "softmax",
        epochs: int = 40,
        lr: float = 0.01,
        reg: float = 0.05,
        batch_size: int = 2048,
        n_neg: int = 256,
        temperature: float = 1.0,
        patience: int = 4,
        refit: bool = True,
        min_rating: float | None = None,
        **legacy_runtime: Any,
    ):
        self.dim = dim
        self.loss = loss
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.batch_size = batch_size
        self.n_neg = n_neg
        self.temperature = temperature
        self.patience = patience
        self.refit = refit
        self.min_rating = min_rating
        self._take_legacy_runtime(legacy_runtime)

    def _check_params(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}.")
        for key in ("dim", "epochs", "batch_size", "n_neg"):
            value = getattr(self, key)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{key} must be a whole number >= 1, got {value!r}.")
        if self.lr <= 0 or self.temperature <= 0:
            raise ConfigError("lr and temperature must be positive.")
        if self.reg < 0:
            raise ConfigError(f"reg must be >= 0, got {self.reg!r}.")

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps; the user, movie and movie-bias tables (float32) under Adam
        (`adam_param_bytes`); per interaction, the (user, item, time) int64 arrays and their
        sort, the hold-out's copies, the sampler's keys, the interaction matrices and the
        device's shuffled (user, item) pairs (about 112 bytes); the seen-pairs lookup (a
        users x movies bool table, or the sorted keys); with the "bpr" loss, the epoch's
        order of the positives (8 bytes each) and one chunk's int64 negatives (at most
        `NEGATIVE_CHUNK_ROWS`, or one batch's: the draws, their repeated users, the
        membership test's keys, with the previous chunk still on the device: about 64
        bytes a negative); and validation."""
        dim, n_neg, batch = int(self.dim), int(self.n_neg), int(self.batch_size)
        tables = (n_users + n_items) * dim + n_items
        seen = n_users * n_items if n_users * n_items <= 64_000_000 else 8 * n_ratings
        chunk = batch * max(1, _ranking_common.NEGATIVE_CHUNK_ROWS // (batch * n_neg)) * n_neg
        negatives = 0 if self.loss == "softmax" else 8 * n_ratings + 64 * min(chunk, n_ratings * n_neg)
        return (base_fit_bytes(n_users, n_ratings) + adam_param_bytes(tables) + 112 * n_ratings + seen + negatives
                + ranking_validation_bytes(n_users, n_items))

    def _train(self, users: np.ndarray, items: np.ndarray, epochs: int, validator, seed: int):
        """A fresh module trained on the pairs (users, items); negatives avoid only these pairs
        (never a held-out one, which would leak it)."""
        import torch

        from movierec.models._nets import DotModule
        from movierec.training.losses import bpr_loss, row_l2, sampled_softmax_loss

        gen = seed_everything(seed)
        rng = np.random.default_rng(seed)
        device = self._device
        n_items = len(self.items_)
        sampler = NegativeSampler(users, items, n_items)
        module = DotModule(len(self.users_), n_items, int(self.dim)).to(device)
        optimizer = torch.optim.Adam(module.parameters(), lr=self.lr)
        n_neg, reg, temp = int(self.n_neg), float(self.reg), float(self.temperature)
        full = n_neg >= n_items
        seen = _SeenLookup(sampler.keys, len(self.users_), n_items, device)

        if self.loss == "softmax":
            pos_u = torch.as_tensor(users, device=device)
            pos_i = torch.as_tensor(items, device=device)

            def batches():
                return tensor_batches((pos_u, pos_i), int(self.batch_size), gen)

            def loss_fn(module, batch):
                u, i = batch
                pos = module(u, i)
                if full:
                    cand = torch.arange(n_items, device=device)
                    logits = module.score_items(u)
                else:
                    cand = torch.randint(0, n_items, (n_neg,), generator=gen).to(device)
                    logits = module.score_items(u, cand)
                # the user's other interactions are not negatives (nor is the positive)
                mask = seen(u[:, None], cand[None, :])
                loss = sampled_softmax_loss(pos, logits, mask, temp)
                penalty = row_l2(module.user(u), module.item(i))
                return loss.mean() + reg * penalty
        else:
            def batches():
                # an epoch's (user, positive, negatives), negatives drawn a chunk at a time
                batch = int(self.batch_size)
                return chunked_batches(pairwise_chunks(users, items, sampler, n_neg, rng, batch), batch, device)

            def loss_fn(module, batch):
                u, i, j = batch
                loss = bpr_loss(module(u, i), module(u, j))
                penalty = row_l2(module.user(u), module.item(i)) + row_l2(module.item(j).reshape(-1, int(self.dim)))
                return loss + reg * penalty

        validate = None
        if validator is not None:
            def validate(module):
                return validator(lambda rows: _score_numpy(module, rows, device))

        history = self._run_epochs(module, optimizer, batches, loss_fn, validate, epochs=epochs, mode="max")
        return module, history

    def _fit_epochs(self, train: Dataset, shard: Dataset, validation: Dataset | None) -> EarlyStopResult:
        result = fit_ranking_model(self, shard, validation)
        module = result.module
        self.user_embeddings_ = module.user.weight.detach().numpy().copy()
        self.item_embeddings_ = module.item.weight.detach().numpy().copy()
        self.item_bias_ = module.item_bias.weight.detach().numpy()[:, 0].copy()
        self._gram = None
        return result

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        u = self.user_embeddings_[np.asarray(user_idx, dtype=np.int64)]
        return (u @ self.item_embeddings_.T + self.item_bias_).astype(np.float32, copy=False)

    # -- embeddings, similar movies, cold start -------------------------------------
    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Users [p_u, 1], movies [q_i, b_i]: the dot product is exactly the score."""
        return biased_dot_embeddings(self.user_embeddings_, self.item_embeddings_, self.item_bias_)

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_embeddings_

    def _learns_from(self) -> str:
        if self.min_rating is None:
            return super()._learns_from()
        return (f"model {self.name!r} learns only from movies a person likes (with min_rating={self.min_rating:g}, "
                f"from those rated {self.min_rating:g} or more)")

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A new person from liked movies (the base hands over only those).

        Ratings below `min_rating` are left out too, as in training; the others weigh by
        rating / top of the scale (a 5 counts fully, a 4 four fifths). See
        `movierec.models._fold_in.liked_fold_in` for the solve.

        No `dislikes`: the solve fits target 1 on the movies given and 0 elsewhere, so a
        disliked movie could only pull the person towards itself.
        """
        weights = np.ones(len(item_idx))
        if ratings is not None:
            keep = np.ones(len(item_idx), dtype=bool) if self.min_rating is None else ratings >= self.min_rating
            if not keep.any():
                raise NoLikedMoviesError(f"None of the movies given is rated {self.min_rating:g} or more, and "
                                         f"{self._learns_from()}.")
            top = float(self.rating_scale_[1]) if self.rating_scale_ else float(np.max(ratings))
            item_idx, weights = item_idx[keep], ratings[keep] / max(top, 1e-12)
        if self._gram is None:
            Q = self.item_embeddings_.astype(np.float64)
            self._gram = Q.T @ Q
        typical = float(np.median(np.linalg.norm(self.user_embeddings_, axis=1)))
        return liked_fold_in(self.item_embeddings_, self._gram, self.item_bias_, typical, item_idx, weights,
                             float(self.LIKED_CONFIDENCE), float(self.LIKED_REG), float(self.LIKED_TASTE_SCALE))

    # -- state -------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "user_embeddings": self.user_embeddings_,
            "item_embeddings": self.item_embeddings_,
            "item_bias": self.item_bias_,
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.user_embeddings_ = np.asarray(state["user_embeddings"], dtype=np.float32)
        self.item_embeddings_ = np.asarray(state["item_embeddings"], dtype=np.float32)
        self.item_bias_ = np.asarray(state["item_bias"], dtype=np.float32)
        self._gram = None


class _SeenLookup:
    """Whether (user, item) index pairs are training interactions, on the training device.

    A dense users x items boolean table when it is small (<= 64 M cells; MovieLens up to
    ML-1M), else a binary search over sorted keys user * n_items + item.
    """

    def __init__(self, keys: np.ndarray, n_users: int, n_items: int, device: torch.device,
                 max_dense: int = 64_000_000):
        import torch

        self.n_items = n_items
        keys_t = torch.as_tensor(keys, device=device)
        if n_users * n_items <= max_dense:
            self.dense = torch.zeros(n_users * n_items, dtype=torch.bool, device=device)
            self.dense[keys_t] = True
            self.dense = self.dense.view(n_users, n_items)
            self.keys = None
        else:
            self.dense, self.keys = None, keys_t

    def __call__(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Broadcasts users and items against each other; a bool tensor of their shape."""
        if self.dense is not None:
            return self.dense[users, items]
        import torch

        k = users * self.n_items + items
        pos = torch.searchsorted(self.keys, k.reshape(-1)).clamp_(max=len(self.keys) - 1).reshape(k.shape)
        return self.keys[pos] == k


def _score_numpy(module: DotModule, user_idx: np.ndarray, device: torch.device) -> np.ndarray:
    import torch

    with torch.no_grad():
        users = torch.as_tensor(np.asarray(user_idx, dtype=np.int64), device=device)
        return module.score_items(users).float().cpu().numpy()


def __getattr__(name: str) -> Any:
    """`DotModule` (the torch network) lives in `movierec.models._nets`, imported on first use."""
    if name == "DotModule":
        from movierec.models._nets import DotModule

        return DotModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

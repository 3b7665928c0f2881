"""NeuMF (He et al., 2017, "Neural Collaborative Filtering"): GMF and MLP towers fused.

Implicit feedback: every rating counts as an interaction (or only ratings >= `min_rating`).
Each epoch pairs every positive with `n_neg` freshly sampled negatives (uniform over the
items the user has not interacted with) and minimises binary cross-entropy. The negatives
are drawn chunk by chunk as the epoch goes (`_ranking_common.pointwise_chunks`), so they
take bounded memory however many interactions there are.

Scoring every item for a batch of users is batched: the GMF tower is one matrix product,
and the MLP's first layer is split into a user part and an item part (W [p; q] = W_u p +
W_i q), so the (users x items x hidden) activations are built by broadcasting, never by
looping over items.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models import _ranking_common
from movierec.models._ranking_common import NegativeSampler, chunked_batches, fit_ranking_model, pointwise_chunks
from movierec.models._memory import adam_param_bytes, base_fit_bytes, ranking_validation_bytes
from movierec.models._torch_base import TorchRecommender
from movierec.models.base import Capabilities
from movierec.models.space import Categorical, Float, Int
from movierec.training.losses import bce_loss, row_l2
from movierec.training.options import RuntimeOptions, seed_everything, torch_threads
from movierec.training.early_stopping import EarlyStopResult

#: (user, item) pairs pushed through the MLP at once when scoring
_SCORE_CHUNK_PAIRS = 400_000


def mlp_sizes(dim: int, mlp_layers: int) -> list[int]:
    """Hidden sizes of the MLP tower, widest first, ending at `dim` (predictive factors).

    With dim=16 and 3 layers: [64, 32, 16], on an input of 2 x 64 (user and item
    embeddings of 64 each), as in the paper's tower design.
    """
    return [dim * 2 ** (mlp_layers - 1 - j) for j in range(mlp_layers)]


class NeuMFModule(nn.Module):
    """GMF + MLP with separate embeddings; a final linear layer fuses both towers.

    Args:
        n_users, n_items: table sizes.
        dim: GMF embedding size, and width of the MLP's last hidden layer.
        mlp_layers: number of hidden layers of the MLP tower (>= 1).
        dropout: dropout between MLP layers.
    """

    def __init__(self, n_users: int, n_items: int, dim: int, mlp_layers: int, dropout: float = 0.0):
        super().__init__()
        sizes = mlp_sizes(dim, mlp_layers)
        emb_mlp = sizes[0]
        self.user_gmf = nn.Embedding(n_users, dim)
        self.item_gmf = nn.Embedding(n_items, dim)
        self.user_mlp = nn.Embedding(n_users, emb_mlp)
        self.item_mlp = nn.Embedding(n_items, emb_mlp)
        # first MLP layer on the concatenation [p_u; q_i], stored as two halves
        self.first_user = nn.Linear(emb_mlp, sizes[0], bias=True)
        self.first_item = nn.Linear(emb_mlp, sizes[0], bias=False)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dim + sizes[-1], 1)
        for emb in (self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp):
            nn.init.normal_(emb.weight, std=0.01)
        for lin in [self.first_user, self.first_item, *self.hidden]:
            nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(self.first_user.bias)
        for lin in self.hidden:
            nn.init.zeros_(lin.bias)
        nn.init.kaiming_uniform_(self.out.weight, a=1, nonlinearity="sigmoid")
        nn.init.zeros_(self.out.bias)

    def _mlp_tail(self, h: torch.Tensor) -> torch.Tensor:
        h = self.dropout(torch.relu(h))
        for lin in self.hidden:
            h = self.dropout(torch.relu(lin(h)))
        return h

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits for aligned (user, item) index pairs, shapes (n,) -> (n,)."""
        gmf = self.user_gmf(users) * self.item_gmf(items)
        mlp = self._mlp_tail(self.first_user(self.user_mlp(users)) + self.first_item(self.item_mlp(items)))
        return self.out(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    @torch.no_grad()
    def score_all(self, users: torch.Tensor, chunk_pairs: int = _SCORE_CHUNK_PAIRS) -> torch.Tensor:
        """Logits of every item for each user, shape (len(users), n_items), batched."""
        n_items = self.item_gmf.num_embeddings
        dim = self.user_gmf.embedding_dim
        w_gmf, w_mlp = self.out.weight[0, :dim], self.out.weight[0, dim:]
        # GMF: sum_f h_f p_uf q_if = (p_u * h) . q_i
        gmf = (self.user_gmf(users) * w_gmf) @ self.item_gmf.weight.T
        user_part = self.first_user(self.user_mlp(users))  # (B, H1)
        item_part = self.first_item(self.item_mlp.weight)  # (I, H1)
        out = torch.empty((len(users), n_items), dtype=gmf.dtype, device=gmf.device)
        rows = max(1, chunk_pairs // max(n_items, 1))
        for start in range(0, len(users), rows):
            h = user_part[start : start + rows, None, :] + item_part[None, :, :]
            h = self._mlp_tail(h)
            out[start : start + rows] = h @ w_mlp
        return gmf + out + self.out.bias


class NeuMF(TorchRecommender):
    """Neural matrix factorisation (GMF + MLP) for implicit feedback, trained with BCE.

    Every rating is an interaction (set `min_rating` to keep only ratings >= it).
    Early stopping watches NDCG@10 (full ranking, train items excluded) on the
    `validation` Dataset given to `fit`, or otherwise on each user's latest training
    interaction held out internally; with the internal holdout and `refit=True` the
    model is then retrained on all training data for the best number of epochs.

    Args:
        dim: GMF embedding size = predictive factors of the MLP tower.
        mlp_layers: hidden layers of the MLP tower (sizes dim*2^(L-1), ..., dim).
        epochs: maximum number of epochs.
        lr: Adam learning rate.
        weight_decay: L2 penalty (Adam weight decay) on all parameters.
        reg: L2 penalty on the embedding rows of each batch (per row), like mf-rank's.
        batch_size: (user, item, label) rows per step.
        n_neg: sampled negatives per positive, resampled each epoch.
        dropout: dropout in the MLP tower.
        patience: epochs without NDCG@10 improvement before stopping; 0 turns early
            stopping off (`epochs` epochs on all the data).
        refit: after early stopping on the internal holdout, retrain on all training data.
        min_rating: ratings below this are ignored (None: every rating is an interaction).

    Runtime options (seed, device, threads, progress, distributed) are given at fit time:
    `fit(train, runtime=RuntimeOptions(...))` (see `movierec.training.options`).

    Capabilities: none beyond ranking. Its scores come from an MLP, so they are not a dot
    product (no embeddings) and a new person cannot be folded in without retraining.
    """

    name: ClassVar[str] = "neumf"
    capabilities = Capabilities()
    #: one hidden layer is usually best on MovieLens (the GMF tower carries most of the
    #: signal); `min_rating` lets the search train on liked movies only, which helps when
    #: only high ratings count as relevant
    search_space = {
        "dim": Categorical([32, 64, 128]),
        "mlp_layers": Int(1, 2),
        "lr": Float(1e-3, 1e-2, log=True),
        "reg": Float(1e-5, 1e-2, log=True),
        "n_neg": Int(4, 12),
        "dropout": Float(0.0, 0.3),
        "min_rating": Categorical([None, 4.0]),
    }

    def __init__(
        self,
        dim: int = 32,
        mlp_layers: int = 2,
        epochs: int = 30,
        lr: float = 0.005,
        weight_decay: float = 0.0,
        reg: float = 0.0,
        batch_size: int = 2048,
        n_neg: int = 4,
        dropout: float = 0.0,
        patience: int = 3,
        refit: bool = True,
        min_rating: float | None = None,
        **legacy_runtime: Any,
    ):
        self.dim = dim
        self.mlp_layers = mlp_layers
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.reg = reg
        self.batch_size = batch_size
        self.n_neg = n_neg
        self.dropout = dropout
        self.patience = patience
        self.refit = refit
        self.min_rating = min_rating
        self._take_legacy_runtime(legacy_runtime)

    def _check_params(self) -> None:
        for key in ("dim", "mlp_layers", "epochs", "batch_size", "n_neg"):
            value = getattr(self, key)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{key} must be a whole number >= 1, got {value!r}.")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr!r}.")

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps; the GMF and MLP embedding tables and the MLP's weights
        (float32) under Adam (`adam_param_bytes`); per interaction, its arrays, the
        hold-out's copies and the epoch's order of the positives (about 120 bytes); the
        training rows of one chunk of the epoch (at most `NEGATIVE_CHUNK_ROWS` rows, each
        a positive or a negative: user and item int64, label float32, their shuffle and
        the sampler's draws, with the previous chunk still on the device: about 80 bytes a
        row); validation, whose MLP runs on chunks of 400,000 (user, movie) pairs (float32
        activations of every layer, twice)."""
        dim, n_neg = int(self.dim), int(self.n_neg)
        sizes = mlp_sizes(dim, int(self.mlp_layers))
        tables = (n_users + n_items) * (dim + sizes[0])
        mlp = 2 * sizes[0] * sizes[0] + sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) + sum(sizes) + dim + sizes[-1] + 1
        pairs = min(_SCORE_CHUNK_PAIRS, min(n_users, 2000) * n_items)
        chunk_rows = max(_ranking_common.NEGATIVE_CHUNK_ROWS // (1 + n_neg), 1) * (1 + n_neg)
        rows = min(chunk_rows, (1 + n_neg) * n_ratings)
        return (base_fit_bytes(n_users, n_ratings) + adam_param_bytes(tables + mlp) + 120 * n_ratings + 80 * rows
                + 2 * 4 * pairs * sum(sizes) + ranking_validation_bytes(n_users, n_items))

    def _build(self) -> NeuMFModule:
        return NeuMFModule(len(self.users_), len(self.items_), int(self.dim), int(self.mlp_layers),
                           float(self.dropout))

    def _train(self, users: np.ndarray, items: np.ndarray, epochs: int, validator, seed: int):
        """A fresh module trained on the pairs (users, items); negatives avoid only these pairs
        (never a held-out one, which would leak it)."""
        seed_everything(seed)
        rng = np.random.default_rng(seed)
        device = self._device
        module = self._build().to(device)
        optimizer = torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sampler = NegativeSampler(users, items, len(self.items_))
        n_neg, reg = int(self.n_neg), float(self.reg)

        def batches():
            # an epoch's (user, item, label) rows, negatives drawn a chunk at a time
            return chunked_batches(pointwise_chunks(users, items, sampler, n_neg, rng), int(self.batch_size), device)

        def loss_fn(module, batch):
            u, i, y = batch
            loss = bce_loss(module(u, i), y)
            if reg > 0:
                rows = (module.user_gmf(u), module.item_gmf(i), module.user_mlp(u), module.item_mlp(i))
                loss = loss + row_l2(*rows, weight=reg)
            return loss

        validate = None
        if validator is not None:
            def validate(module):
                return validator(lambda rows: _score_numpy(module, rows, device))

        history = self._run_epochs(module, optimizer, batches, loss_fn, validate, epochs=epochs, mode="max")
        return module, history

    def _fit_epochs(self, train: Dataset, shard: Dataset, validation: Dataset | None) -> EarlyStopResult:
        result = fit_ranking_model(self, shard, validation)
        self.module_ = result.module.eval()
        return result

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        with torch_threads((self.runtime_ or RuntimeOptions()).num_threads):
            return _score_numpy(self.module_, np.asarray(user_idx), torch.device("cpu"))

    # -- state -------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.module_.state_dict().items()}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        module = self._build()
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
        self.module_ = module.eval()


def _score_numpy(module: NeuMFModule, user_idx: np.ndarray, device: torch.device) -> np.ndarray:
    """Scores (logits) of every item for user indices, float32 numpy (n, n_items)."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        users = torch.as_tensor(np.asarray(user_idx, dtype=np.int64), device=device)
        out = module.score_all(users).float().cpu().numpy()
    module.train(was_training)
    return out

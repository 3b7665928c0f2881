"""The PyTorch networks of the torch models, apart from the models themselves.

Only training builds a network: a fitted model keeps its weights as NumPy arrays and
answers (`recommend`, `predict`, `fold_in`, ...) without torch, so loading a saved model
(the CLI's `recommend`, the service) does not pay for `import torch` (seconds, ~200 MB).
The model modules import these classes inside their training code.
"""

from __future__ import annotations

import math

import torch
from torch import nn


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

    def forward(self, users: torch.Tensor, items: torch.Tensor, target: torch.Tensor | None = None,
                weights: torch.Tensor | None = None):
        """Predicted ratings for index pairs, shape (batch,), plus the user and movie rows
        used, each shape (batch, dim + 1) (factors then bias; for the L2 penalty).

        With `target` (true ratings, (batch,)) and `weights` (L2 weight per column,
        (dim + 1,)), the training loss instead (`mse_row_l2` of the prediction, as a scalar):
        dense tables take a fused step (`_FusedMFLoss`) whose backward is one row
        accumulation per table, ~2x faster on the CPU than autograd's chain of small kernels.
        """
        if target is not None and not self.users.sparse:
            return _FusedMFLoss.apply(self.users.weight, self.items.weight, users, items, target, weights,
                                      self.offset, self.rating_range)
        if target is not None:
            from movierec.training.losses import mse_row_l2

            pred, (p, q) = self(users, items)
            return mse_row_l2(pred, target, p, q, weights)
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


def mf_loss_and_grads(users_w: torch.Tensor, items_w: torch.Tensor, u: torch.Tensor, i: torch.Tensor,
                      target: torch.Tensor, weights: torch.Tensor, offset: torch.Tensor,
                      rating_range: tuple[float, float] | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mf's training loss of one batch and its gradients, in closed form (no autograd).

    loss = mean_b (pred_b - r_b)^2 + mean_b sum_c w_c (p_bc^2 + q_bc^2), with
    pred_b = offset + p_b[d] + q_b[d] + p_b[:d]·q_b[:d] (squashed by a scaled sigmoid when
    `rating_range` is set). The gradients of the used rows are a few (batch, dim + 1)
    products, accumulated into each table with one `index_add_`.

    Args:
        users_w, items_w: the user table (n_users, dim + 1) and the movie table (n_items, dim + 1).
        u, i: user / movie indices of the batch, shape (batch,).
        target: true ratings, shape (batch,).
        weights: L2 weight per column, shape (dim + 1,).
        offset: μ (or its logit with `rating_range`), a scalar tensor.
        rating_range: (low, high) of the scaled sigmoid, or None.

    Returns:
        (loss: a scalar, users_grad: shaped as `users_w`, items_grad: shaped as `items_w`).
    """
    p = users_w.index_select(0, u)
    q = items_w.index_select(0, i)
    d = p.shape[1] - 1
    x = offset + p[:, d] + q[:, d] + (p[:, :d] * q[:, :d]).sum(-1)
    if rating_range is None:
        err = x - target
        gx = err * (2.0 / len(target))
    else:
        low, high = rating_range
        sig = torch.sigmoid(x)
        err = low + (high - low) * sig - target
        gx = err * ((2.0 / len(target)) * (high - low)) * sig * (1 - sig)
    scale = 2.0 / len(target)
    # the penalty: sum_c w_c sum_b (p_bc^2 + q_bc^2), from the column sums of squares
    loss = (err * err).mean() + ((p * p).sum(0) + (q * q).sum(0)) @ weights / len(target)
    # row gradients: dx * [q_f, 1] + 2 w p / B (and alike for q), two passes each
    gp = q * gx[:, None]
    gp[:, d] = gx
    gp.addcmul_(p, weights, value=scale)
    gq = p * gx[:, None]
    gq[:, d] = gx
    gq.addcmul_(q, weights, value=scale)
    return loss, torch.zeros_like(users_w).index_add_(0, u, gp), torch.zeros_like(items_w).index_add_(0, i, gq)


class _FusedMFLoss(torch.autograd.Function):
    """mf's training loss with its gradient computed in the forward pass (`mf_loss_and_grads`).

    The result equals autograd's through `forward` + `mse_row_l2` up to float rounding;
    `backward` only scales the saved gradients.
    """

    @staticmethod
    def forward(ctx, users_w: torch.Tensor, items_w: torch.Tensor, u: torch.Tensor, i: torch.Tensor,
                target: torch.Tensor, weights: torch.Tensor, offset: torch.Tensor,
                rating_range: tuple[float, float] | None) -> torch.Tensor:
        loss, users_grad, items_grad = mf_loss_and_grads(users_w, items_w, u, i, target, weights, offset,
                                                         rating_range)
        ctx.save_for_backward(users_grad, items_grad)
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        users_grad, items_grad = ctx.saved_tensors
        return users_grad * grad, items_grad * grad, None, None, None, None, None, None


class DotModule(nn.Module):
    """User and item embeddings plus an item bias; scores are dot products."""

    def __init__(self, n_users: int, n_items: int, dim: int, init_std: float = 0.1):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of aligned pairs: users (n,), items (n,) or (n, m) -> (n,) or (n, m)."""
        p = self.user(users)
        if items.dim() == 1:
            return (p * self.item(items)).sum(-1) + self.item_bias(items).squeeze(-1)
        return torch.einsum("nd,nmd->nm", p, self.item(items)) + self.item_bias(items).squeeze(-1)

    def score_items(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of each user against one shared item list (all items when None): (n, m)."""
        q = self.item.weight if items is None else self.item(items)
        b = self.item_bias.weight[:, 0] if items is None else self.item_bias(items)[:, 0]
        return self.user(users) @ q.T + b


class AutoRecNet(nn.Module):
    """The autoencoder: (batch, n_users) ratings -> (batch, n_users) reconstruction."""

    def __init__(self, n_users: int, hidden: int):
        super().__init__()
        self.encoder = nn.Linear(n_users, hidden)
        self.decoder = nn.Linear(hidden, n_users)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.sigmoid(self.encoder(x)))

    def penalty(self) -> torch.Tensor:
        """|W|^2 + |V|^2 (weights only, no biases)."""
        return self.encoder.weight.pow(2).sum() + self.decoder.weight.pow(2).sum()

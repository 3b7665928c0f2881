"""The torch network of `two-tower` (training only; a fitted model answers with NumPy).

Movie input  x_i = W_f f_i + b_f + m_i e_i          (features f_i, ID embedding e_i)
Movie vector v_i = normalise(x_i + MLP_v(x_i))
User input   z_u = [h_u, g_u, s_u, d_u, m_u p_u]    (pooled history inputs h_u = sum_j w_j x_j / sum_j w_j,
                                                     pooled genres g_u, history statistics s_u,
                                                     demographics d_u, user ID embedding p_u)
User vector  u   = normalise(h_u + MLP_u(z_u))
Score        s   = <u, v> / T,  T = exp(log_temperature) (learnable)

m_i, m_u are ID masks: 0 with probability `id_dropout` while training (so the towers also
work without an ID) and always 0 for movies with no training interaction. Every MLP is
Linear -> ReLU -> Linear, so `movierec.models.two_tower` mirrors the forward pass in NumPy
(`numpy_weights` gives the arrays it needs).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class TwoTowerNet(nn.Module):
    """User and movie towers over ID embeddings and features.

    Args:
        n_users, n_items: ID table sizes.
        n_item_features: columns of the movie feature matrix.
        n_user_extra: columns of [pooled genres, history statistics, demographics].
        dim: embedding size (inputs and outputs of both towers).
        hidden: hidden width of each tower's MLP.
        temperature: initial softmax temperature.
    """

    def __init__(self, n_users: int, n_items: int, n_item_features: int, n_user_extra: int, dim: int,
                 hidden: int, temperature: float):
        super().__init__()
        self.item_id = nn.Embedding(n_items, dim)
        self.user_id = nn.Embedding(n_users, dim)
        nn.init.normal_(self.item_id.weight, std=0.1)
        nn.init.normal_(self.user_id.weight, std=0.1)
        self.item_feat = nn.Linear(n_item_features, dim)
        self.item_hidden = nn.Linear(dim, hidden)
        self.item_out = nn.Linear(hidden, dim)
        self.user_hidden = nn.Linear(2 * dim + n_user_extra, hidden)
        self.user_out = nn.Linear(hidden, dim)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature), dtype=torch.float32))

    def temperature(self) -> torch.Tensor:
        """T, kept in [0.01, 2] for stability."""
        return self.log_temperature.exp().clamp(0.01, 2.0)

    def item_inputs(self, features: torch.Tensor, id_rows: torch.Tensor) -> torch.Tensor:
        """x = W_f f + b_f + (masked) ID rows; features (n, F), id_rows (n, d) -> (n, d)."""
        return self.item_feat(features) + id_rows

    def item_vectors(self, x: torch.Tensor) -> torch.Tensor:
        """Unit movie vectors from movie inputs, (n, d) -> (n, d)."""
        return nn.functional.normalize(x + self.item_out(torch.relu(self.item_hidden(x))), dim=-1)

    def user_vectors(self, pooled: torch.Tensor, extra: torch.Tensor, id_rows: torch.Tensor) -> torch.Tensor:
        """Unit user vectors: pooled (B, d), extra (B, E), (masked) user ID rows (B, d) -> (B, d)."""
        z = torch.cat([pooled, extra, id_rows], dim=-1)
        return nn.functional.normalize(pooled + self.user_out(torch.relu(self.user_hidden(z))), dim=-1)


def numpy_weights(net: TwoTowerNet) -> dict[str, np.ndarray]:
    """The network's parameters as float32 NumPy arrays (names of `state_dict`)."""
    return {k: v.detach().float().cpu().numpy().copy() for k, v in net.state_dict().items()}


__all__ = ["TwoTowerNet", "numpy_weights"]

"""The training losses of the PyTorch models, in one place.

Every function returns a scalar to minimise (or per-row losses where noted); shapes use
B for the batch, N for negatives per row and d for the embedding size.
Regularisation is L2 on the *rows used in each batch* (`row_l2`), never weight decay on
whole tables: each user or movie is then penalised in proportion to how often it is
seen, as in the ridge-regression view of matrix factorisation.
"""

from __future__ import annotations

import torch
from torch import nn


def row_l2(*rows: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """`weight` times the sum of squares of the given rows, divided by the first tensor's
    row count (B): the per-row L2 penalty of a batch.

    Args:
        rows: embedding rows gathered for a batch, each shape (B_j, d).
        weight: the penalty strength (applied before the division, as NeuMF always did).
    """
    return weight * sum(t.pow(2).sum() for t in rows) / rows[0].shape[0]


def mse_row_l2(pred: torch.Tensor, target: torch.Tensor, p: torch.Tensor, q: torch.Tensor,
               weights: torch.Tensor) -> torch.Tensor:
    """Mean squared error plus a per-rating, per-column L2 penalty on the rows used (mf).

    loss = mean((pred - target)^2) + mean_b( sum_c w_c (p_bc^2 + q_bc^2) )

    Args:
        pred, target: predicted and true ratings, shape (B,).
        p, q: the user and movie rows used, shape (B, c).
        weights: L2 weight of each column, shape (c,) (e.g. reg on factors, reg_bias on the bias).
    """
    mse = torch.mean((pred - target) ** 2)
    return mse + ((p * p + q * q) @ weights).mean()


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: mean of -log sigmoid(s_pos - s_neg).

    Args:
        pos: scores of the positives, shape (B,).
        neg: scores of each positive's negatives, shape (B, N).
    """
    return -nn.functional.logsigmoid(pos[:, None] - neg).mean()


def sampled_softmax_loss(pos: torch.Tensor, neg: torch.Tensor, mask: torch.Tensor | None = None,
                         temperature: float = 1.0) -> torch.Tensor:
    """Per-row softmax cross-entropy of each positive against its negatives.

    loss_b = logsumexp([pos_b, neg_b] / T) - pos_b / T

    Args:
        pos: positive logits, shape (B,).
        neg: negative logits, shape (B, N) (e.g. one shared candidate list per batch).
        mask: True where a "negative" must not count (the user's own interactions),
            shape (B, N); those logits are set to -inf.
        temperature: logits are divided by it (< 1 sharpens).

    Returns:
        per-row losses, shape (B,) (take the mean).
    """
    if mask is not None:
        neg = neg.masked_fill(mask, float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1) / temperature
    return torch.logsumexp(logits, dim=1) - logits[:, 0]


def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits, mean over rows (NeuMF's pointwise loss).

    Args:
        logits: shape (B,); labels: 1 for positives, 0 for sampled negatives, shape (B,).
    """
    return nn.functional.binary_cross_entropy_with_logits(logits, labels)


def in_batch_softmax_loss(users: torch.Tensor, items: torch.Tensor, log_q: torch.Tensor | None = None,
                          temperature: float = 1.0, item_ids: torch.Tensor | None = None) -> torch.Tensor:
    """In-batch softmax with logQ correction (Yi et al., 2019), mean over rows.

    Row b's positive is items[b]; the other rows' items are its negatives. Popular items
    appear as negatives more often than uniform sampling would give, so each logit is
    corrected by the log of its item's sampling probability:

        logit_bj = (u_b . v_j) / T - log_q_j,    loss_b = logsumexp_j(logit_bj) - logit_bb

    Extra negatives shared by every row (e.g. uniformly sampled items, "mixed negative
    sampling") may follow the B positives in `items`: then items, log_q and item_ids have
    B + M rows, and the loss is the same with B + M candidates per row.

    Args:
        users: user (query) vectors, shape (B, d).
        items: the positives' item vectors, shape (B, d), or (B + M, d) with M extra
            negatives after them.
        log_q: log probability that each candidate is sampled, shape (B,) or (B + M,);
            None: no correction.
        temperature: the dot products are divided by it.
        item_ids: item index of each candidate, shape (B,) or (B + M,): a candidate holding
            a row's *own* positive item (other than the positive itself) is not a negative
            (masked out); None: no masking.
    """
    logits = users @ items.T / temperature
    if log_q is not None:
        logits = logits - log_q[None, :]
    if item_ids is not None:
        b = users.shape[0]
        same = (item_ids[:b, None] == item_ids[None, :]) & ~torch.eye(b, len(item_ids), dtype=torch.bool,
                                                                        device=logits.device)
        logits = logits.masked_fill(same, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - logits.diagonal()).mean()


__all__ = ["row_l2", "mse_row_l2", "bpr_loss", "sampled_softmax_loss", "bce_loss", "in_batch_softmax_loss"]

"""SeqEASE: EASE that knows the order of each user's history.

Two order-aware signals on top of EASE (see `movierec.models.ease`):

1. **Recency-weighted history.** A user's interaction at position p from the end of
   their time-ordered training history (p = 0 is the latest) enters the EASE product
   with weight ``floor + (1 - floor) * exp(-p / tau)`` instead of 1, so recent movies
   say more about what comes next: ``s_recency(u) = w_u @ B``. The item-item matrix B
   itself is plain EASE on the binary interactions.
2. **Item-to-item transitions.** From the training sequences, T[i, j] counts how often
   j followed i within `window` steps (weight 1/d for a gap of d), normalised as
   ``T[i, j] / sqrt(out(i) * in(j))``. The user's last `window`+2 movies (weights
   ``exp(-p / 2)``) score ``s_trans(u) = l_u @ T``.

Scores: ``s_recency(u) + beta * s_trans(u)``. With tau -> inf, floor = 1 and beta = 0
it is EASE exactly. tau, floor, beta and EASE's lambda are tuned on validation.

A new person (`fold_in`) is scored from their history in the order given (oldest first),
with the same recency weights and transition query as a training user; a movie they
dislike (rated below the liked threshold) keeps its place in the order but enters both
with its weight times ``-DISLIKE_WEIGHT`` (EASE's), so what goes with it or follows it
ranks lower (`capabilities.dislikes`, as EASE).

Order: interactions are sorted by timestamp within each user, ties kept in file order
(the same rule as `leave_last_k_split`). MovieLens users often rate many movies in one
session, so positions rather than seconds measure recency (positions also worked better
on validation).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models._memory import csr_bytes
from movierec.models.ease import DEFAULT_MAX_ITEMS, EASE
from movierec.models.space import Categorical, Float

#: last movies a user's transition query looks at, beyond the window
_RECENT_EXTRA = 2
#: decay (in positions) of the transition query weights
_RECENT_TAU = 2.0


def positions_from_end(train: Dataset) -> np.ndarray:
    """Per interaction: its position from the end of its user's time-ordered history.

    Returns:
        int64, shape (n_ratings,); 0 marks each user's latest interaction.
    """
    order = np.lexsort((np.arange(train.n_ratings), train.timestamp, train.user_idx))
    users = train.user_idx[order]
    counts = np.bincount(users, minlength=train.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(train.n_ratings) - starts[users]
    out = np.empty(train.n_ratings, dtype=np.int64)
    out[order] = counts[users] - 1 - pos
    return out


def transition_matrix(train: Dataset, window: int) -> sp.csr_matrix:
    """Item-to-item transitions of the time-ordered training histories.

    Returns:
        items x items CSR (float32): rows are "from" items, columns "to" items, each pair
        at gap d <= window weighted 1/d, then normalised by sqrt(out-degree * in-degree).
    """
    order = np.lexsort((np.arange(train.n_ratings), train.timestamp, train.user_idx))
    u, i = train.user_idx[order], train.item_idx[order]
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        same = u[:-d] == u[d:]
        rows.append(i[:-d][same])
        cols.append(i[d:][same])
        vals.append(np.full(int(same.sum()), 1.0 / d, dtype=np.float32))
    n = train.n_items
    T = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float32
    )
    T.sum_duplicates()
    out_deg = np.asarray(T.sum(axis=1)).ravel()
    in_deg = np.asarray(T.sum(axis=0)).ravel()
    left = sp.diags(1.0 / np.sqrt(np.maximum(out_deg, 1.0)).astype(np.float32))
    right = sp.diags(1.0 / np.sqrt(np.maximum(in_deg, 1.0)).astype(np.float32))
    return (left @ T @ right).tocsr().astype(np.float32)


class SeqEASE(EASE):
    """EASE with recency-weighted user histories and item-to-item transitions.

    Args:
        regularization: EASE lambda.
        tau: recency decay length, in positions from the end of a user's history.
        floor: weight every interaction keeps however old, in [0, 1].
        beta: weight of the transition scores (0 turns them off).
        window: largest gap (in positions) counted as a transition.
        min_item_count: items with fewer training interactions are left out of B
            (see `EASE`); transitions still cover every item.
        max_items: B covers at most this many movies, the most rated ones (see `EASE`;
            None: every movie); the rest rank below every modelled movie by popularity.

    Fitted attributes (besides EASE's):
        user_items_: users x items CSR of recency weights.
        recent_: users x items CSR of the transition query weights (last few movies).
        transitions_: items x items CSR, see `transition_matrix`.
    """

    name: ClassVar[str] = "seq-ease"
    search_space = {
        # a grid, so trials share EASE's inverse (cached per lambda)
        "regularization": Categorical([50.0, 100.0, 200.0, 400.0, 800.0, 1600.0]),
        "tau": Float(1.0, 100.0, log=True),
        "floor": Float(0.0, 0.6),
        "beta": Float(0.0, 2.0),
    }

    def __init__(
        self,
        regularization: float = 300.0,
        tau: float = 10.0,
        floor: float = 0.2,
        beta: float = 0.3,
        window: int = 3,
        min_item_count: int = 1,
        max_items: int | None = DEFAULT_MAX_ITEMS,
    ) -> None:
        self.regularization = regularization
        self.tau = tau
        self.floor = floor
        self.beta = beta
        self.window = window
        self.min_item_count = min_item_count
        self.max_items = max_items
        self.values = "ones"  # EASE's B is fitted on binary interactions (not a parameter here)

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """EASE's (see `EASE.memory_estimate`), plus the two history CSRs (recency weights,
        recent movies) and the transition matrix: `window` pairs per rating, built from
        COO arrays (about 20 bytes a pair) and normalised into two more float32 CSRs."""
        pairs = int(self.window) * n_ratings
        return (super().memory_estimate(n_users, n_items, n_ratings) + 2 * csr_bytes(n_users, n_ratings)
                + 20 * pairs + 3 * csr_bytes(n_items, pairs) + 40 * n_ratings)

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        if not (self.tau > 0 and 0 <= self.floor <= 1 and self.beta >= 0 and self.window >= 1):
            raise ConfigError("SeqEASE needs tau > 0, floor in [0, 1], beta >= 0 and window >= 1.")
        if not train.has_timestamps:
            raise ConfigError(f"SeqEASE orders histories by time, and {train.name} has no timestamps.")
        X = train.to_csr("ones").astype(np.float32)
        X.data[:] = 1.0
        self._fit_weights(X, train)
        pos = positions_from_end(train).astype(np.float64)
        self.user_items_, self.recent_ = self._histories(pos, train.user_idx, train.item_idx,
                                                         (train.n_users, train.n_items))
        self.transitions_ = transition_matrix(train, int(self.window))

    def _histories(self, pos: np.ndarray, user_idx: np.ndarray, item_idx: np.ndarray,
                   shape: tuple[int, int], sign: np.ndarray | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(recency-weighted histories, transition query weights), both CSR of `shape`,
        from each interaction's position from the end of its user's history (float64);
        `sign` (shape like `pos`, default 1) multiplies each interaction's weights."""
        w = self.floor + (1.0 - self.floor) * np.exp(-pos / float(self.tau))
        sign = np.ones(len(pos)) if sign is None else np.asarray(sign, dtype=np.float64)
        w = w * sign
        H = sp.csr_matrix((w.astype(np.float32), (user_idx, item_idx)), shape=shape)
        H.sum_duplicates()  # a movie rated twice keeps the sum of its weights
        recent = pos < self.window + _RECENT_EXTRA
        R = sp.csr_matrix(
            ((np.exp(-pos[recent] / _RECENT_TAU) * sign[recent]).astype(np.float32),
             (user_idx[recent], item_idx[recent])),
            shape=shape,
        )
        R.sum_duplicates()
        return H, R

    def _score_histories(self, H: sp.csr_matrix, R: sp.csr_matrix) -> np.ndarray:
        scores = self._score_from(H)
        if self.beta > 0:
            scores += np.float32(self.beta) * (R @ self.transitions_).toarray()
        return scores

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        rows = np.asarray(user_idx, dtype=np.int64)
        return self._score_histories(self.user_items_[rows], self.recent_[rows])

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, None]:
        """Scores of a new person whose history is `item_idx` in the order given, oldest
        first: the same recency weights and transition query as a training user with
        that history (ratings are not used: B is fitted on binary interactions), each
        disliked movie's weights times ``-DISLIKE_WEIGHT`` (see `EASE._fold_in`)."""
        m = len(item_idx)
        pos = (m - 1 - np.arange(m)).astype(np.float64)
        sign = np.where(liked, 1.0, -float(self.DISLIKE_WEIGHT))
        H, R = self._histories(pos, np.zeros(m, dtype=np.int64), item_idx, (1, self.n_items_), sign)
        return self._score_histories(H, R)[0], None

    @staticmethod
    def _pack(prefix: str, M: sp.csr_matrix) -> dict[str, np.ndarray]:
        M = M.tocsr()
        return {
            f"{prefix}_data": M.data.astype(np.float32),
            f"{prefix}_indices": M.indices.astype(np.int64),
            f"{prefix}_indptr": M.indptr.astype(np.int64),
        }

    @staticmethod
    def _unpack(prefix: str, state: dict[str, np.ndarray], shape: tuple[int, int]) -> sp.csr_matrix:
        return sp.csr_matrix(
            (state[f"{prefix}_data"], state[f"{prefix}_indices"], state[f"{prefix}_indptr"]), shape=shape
        )

    def _state(self) -> dict[str, np.ndarray]:
        state = super()._state()
        state.update(self._pack("recent", self.recent_))
        state.update(self._pack("transitions", self.transitions_))
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        n_u, n_i = len(self.users_), len(self.items_)
        self.recent_ = self._unpack("recent", state, (n_u, n_i))
        self.transitions_ = self._unpack("transitions", state, (n_i, n_i))


__all__ = ["SeqEASE", "positions_from_end", "transition_matrix"]

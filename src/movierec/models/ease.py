"""EASE: the closed-form item-item model of Steck (2019), "Embarrassingly Shallow Autoencoders".

With X the users x items interaction matrix and G = X^T X, EASE's weights are

    P = (G + lambda I)^-1,   B = I - P / diag(P)   (column-wise; diag(B) = 0)

and a user's scores are ``x_u @ B``. Lambda is the only hyperparameter (`search_space`
lets the tuner choose it on the validation part). Similar movies are the rows of B.

A new person (`fold_in`) is scored the same way from the movies they like, exactly as a
training user with that history; each movie they dislike (rated below the liked
threshold) enters x with weight ``-DISLIKE_WEIGHT`` instead, so its row of B is a
penalty: movies that go with a disliked one rank lower (`capabilities.dislikes`).

The item-item model costs movies² memory and movies³ time, so it covers at most
`max_items` movies: the most rated ones of the training set (20,000 by default: every movie
of ML-100K and ml-latest-small, a third of ml-25m's 59,047, whose dense B would need
13 GiB). Movies with fewer than `min_item_count` training interactions are left out too.
A movie outside the model is ranked by popularity below every modelled movie (see
`LEFT_OUT_SCORE`): it still ends a long list, never heads one. As a query movie it
predicts nothing (it adds nothing to a person's scores); its similar movies are the most
rated modelled movies (a popularity fallback, scores at or below 0, so it never explains
a recommendation). A fit whose item matrix would not fit in free memory (`max_items=None`
on ml-25m) is refused up front with a `ResourceError` naming `max_items`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models._memory import base_fit_bytes, csr_bytes
from movierec.models._sparse import csr_rows_dot
from movierec.models.base import Capabilities, Recommender
from movierec.models.space import Float

#: score of items left out of the item-item model that have no training interaction:
#: below every real score, still finite (so top-k lists stay full when a caller asks for
#: more items than the model covers). Left-out items with interactions score between it
#: and half of it, by popularity (see `EASE._index_positions`).
LEFT_OUT_SCORE = np.float32(-1e30)

#: the default `max_items`: the item-item matrix of 20,000 movies is 1.5 GiB (float32)
DEFAULT_MAX_ITEMS = 20_000

#: the Gram matrix X^T X is summed over groups of users whose product has at most this
#: many entries (bounds the sparse temporaries: about 16 bytes each)
GRAM_CHUNK_ENTRIES = 1 << 25

#: size of the popularity band a left-out query movie's similar movies score in (<= 0)
_FALLBACK_BAND = np.float32(1e-6)


def gram_matrix(X: sp.csr_matrix) -> np.ndarray:
    """X^T X as a dense float32 matrix, summed over groups of users so the sparse
    temporaries stay within `GRAM_CHUNK_ENTRIES` entries.

    Args:
        X: users x modelled items CSR, float32.

    Returns:
        float32, shape (m, m), one contiguous block (C or Fortran order: it is symmetric).
    """
    X = X.tocsr()
    m = X.shape[1]
    per_user = np.diff(X.indptr).astype(np.int64) ** 2  # an upper bound of each user's product entries
    if per_user.sum() <= GRAM_CHUNK_ENTRIES or m * m <= GRAM_CHUNK_ENTRIES:
        return (X.T @ X).toarray().astype(np.float32, copy=False)
    gram = np.zeros((m, m), dtype=np.float32)
    flat = gram.reshape(-1)
    bounds = np.searchsorted(np.cumsum(per_user), np.arange(GRAM_CHUNK_ENTRIES, int(per_user.sum()),
                                                            GRAM_CHUNK_ENTRIES))
    starts = np.unique(np.concatenate([[0], bounds]))
    for lo, hi in zip(starts, np.append(starts[1:], X.shape[0])):
        chunk = X[int(lo):int(hi)]
        part = (chunk.T @ chunk).tocoo()  # canonical: each (row, column) once
        flat[part.row.astype(np.int64) * m + part.col] += part.data
        del chunk, part
    return gram


def ease_weights(gram: np.ndarray, regularization: float, overwrite: bool = False) -> np.ndarray:
    """EASE weight matrix from a Gram matrix.

    Works in place on one m x m float32 array (a copy of `gram` unless `overwrite`), so the
    peak is the Gram matrix itself: 1.5 GiB for 20,000 movies.

    Args:
        gram: X^T X over the modelled items, shape (m, m), symmetric.
        regularization: lambda > 0 added to the diagonal.
        overwrite: reuse `gram`'s memory (a C- or Fortran-ordered float32 array the caller
            no longer needs) instead of copying it.

    Returns:
        B, float32, shape (m, m), zero diagonal, C order; scores are ``x @ B``.
    """
    if regularization <= 0:
        raise ConfigError(f"EASE regularization must be positive, got {regularization!r}.")
    from scipy.linalg import lapack  # here, not at module top: loading a saved model needs no scipy.linalg

    owned = overwrite and gram.dtype == np.float32 and (gram.flags.f_contiguous or gram.flags.c_contiguous)
    # gram is symmetric, so a C-ordered array's transpose is the same matrix in Fortran order
    A = (gram if gram.flags.f_contiguous else gram.T) if owned else np.array(gram, dtype=np.float32, order="F")
    A[np.diag_indices_from(A)] += np.float32(regularization)
    # Cholesky inverse (symmetric positive definite): about 4x cheaper than a general inverse
    c, info = lapack.spotrf(A, lower=1, overwrite_a=1)
    if info != 0:
        raise ConfigError("EASE's Gram matrix is not positive definite; raise regularization.")
    P, info = lapack.spotri(c, lower=1, overwrite_c=1)
    if info != 0:
        raise ConfigError("EASE's matrix inverse failed; raise regularization.")
    # P holds the inverse in its lower triangle: copy it to the upper one block by block
    # (never a second m x m array); P's reads stay in the lower part, which is never written
    m = P.shape[0]
    block = 1024
    for lo in range(0, m, block):
        hi = min(lo + block, m)
        diag = P[lo:hi, lo:hi]
        upper = np.triu_indices(hi - lo, 1)
        diag[upper] = diag.T[upper]
        if hi < m:
            P[lo:hi, hi:] = P[hi:, lo:hi].T
    B = P.T  # symmetric: the C-ordered view of the same matrix
    B /= -np.diag(B).copy()[None, :]
    np.fill_diagonal(B, 0.0)
    return B


class EASE(Recommender):
    """EASE item-item model.

    Args:
        regularization: lambda (L2 weight on B); tuned on validation.
        values: "ones" (binary interactions, every rating counts once) or "rating".
        min_item_count: items with fewer training interactions are left out of B.
        max_items: B covers at most this many movies, the most rated ones (ties: the
            lower index); None: every movie (dense EASE, movies² memory). The rest rank
            below every modelled movie by popularity.

    Fitted attributes:
        model_items_: item indices covered by B, shape (m,).
        weights_: B, float32, shape (m, m), rows/columns in `model_items_` order.
        user_items_: users x items CSR (float32) of the training interactions used to score.
    """

    name: ClassVar[str] = "ease"
    capabilities = Capabilities(similar_items=True, fold_in=True, dislikes=True)
    search_space = {"regularization": Float(1.0, 5000.0, log=True)}

    #: weight of a disliked movie's row of B in a new person's scores, against 1 for a
    #: liked one (see `_fold_in` for how it was chosen)
    DISLIKE_WEIGHT: ClassVar[float] = 0.25

    def __init__(self, regularization: float = 250.0, values: str = "ones", min_item_count: int = 1,
                 max_items: int | None = DEFAULT_MAX_ITEMS) -> None:
        self.regularization = regularization
        self.values = values
        self.min_item_count = min_item_count
        self.max_items = max_items

    # -- memory -----------------------------------------------------------------------
    def _modelled(self, n_items: int) -> int:
        """How many movies B covers at most for a catalog of `n_items`."""
        cap = getattr(self, "max_items", None)
        return n_items if cap is None else min(n_items, max(int(cap), 1))

    def _check_params(self) -> None:
        if self.min_item_count < 1:
            raise ConfigError("min_item_count must be at least 1.")
        cap = self.max_items
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < 1):
            raise ConfigError(f"max_items must be a positive whole number of movies or None (every movie), "
                              f"got {cap!r}.")

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """B's m x m float32 (the Gram matrix, inverted in place: `ease_weights`), the
        sparse Gram product beside it (about 8 bytes an entry, at most m² or a
        `GRAM_CHUNK_ENTRIES` group), the float32 copies of X (X, its modelled columns and
        their transpose), and what every fit keeps (`base_fit_bytes`)."""
        m = self._modelled(n_items)
        gram_temp = 16 * min(m * m, GRAM_CHUNK_ENTRIES)
        return 4 * m * m + gram_temp + 3 * csr_bytes(n_users, n_ratings) + base_fit_bytes(n_users, n_ratings)

    def _memory_what(self, n_users: int, n_items: int, n_ratings: int) -> str:
        m = self._modelled(n_items)
        return f"for its {m:,} x {m:,} item matrix"

    def _too_big_advice(self) -> str:
        cap = getattr(self, "max_items", None)
        if cap is None or cap > DEFAULT_MAX_ITEMS:
            return (f"use {self.name} with max_items={DEFAULT_MAX_ITEMS} (the {DEFAULT_MAX_ITEMS:,} most rated "
                    "movies, the rest served by popularity) or als")
        return (f"use {self.name} with a max_items below {int(cap):,} (the most rated movies are kept, the rest "
                "served by popularity) or als")

    def _history(self, train: Dataset) -> sp.csr_matrix:
        if self.values not in ("ones", "rating"):
            raise ConfigError(f"values must be 'ones' or 'rating', got {self.values!r}.")
        X = train.to_csr("ones" if self.values == "ones" else "rating").astype(np.float32)
        if self.values == "ones":
            X.data[:] = 1.0
        return X

    def _fit_weights(self, X: sp.csr_matrix, train: Dataset) -> None:
        counts = train.item_counts()
        cap = self.max_items
        model_items = np.flatnonzero(counts >= self.min_item_count).astype(np.int64)
        capped = cap is not None and len(model_items) > cap
        if capped:
            # the most rated movies; equal counts: the lower index (a stable sort)
            top = np.argsort(-counts[model_items], kind="stable")[: int(cap)]
            model_items = np.sort(model_items[top])
        self.model_items_ = model_items
        if len(self.model_items_) == 0:
            raise ConfigError("No item has min_item_count training interactions; lower min_item_count.")
        regularization = float(self.regularization)

        def compute() -> np.ndarray:
            weights = ease_weights(gram_matrix(X[:, model_items]), regularization, overwrite=True)
            weights.setflags(write=False)  # shared by every fit that reuses it
            return weights

        # the inverse is the expensive part, and tuning SeqEASE refits with the same lambda
        # (its other parameters vary): the training Dataset, which every trial reuses,
        # keeps the last few weight matrices (`Dataset.memo`)
        # (the cap joins the key only where it leaves movies out: else B is the same)
        key = ("ease.weights", int(self.min_item_count), regularization, getattr(self, "values", "ones"))
        if capped:
            key += (int(cap),)
        self.weights_ = train.memo(key, compute)
        self._index_positions()

    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        X = self._history(train)
        self._fit_weights(X, train)
        self.user_items_ = X

    def _index_positions(self) -> None:
        """Item index -> row of B (-1 for items left out; None when B covers every item),
        and the scores of the items left out, by popularity (training interactions of
        `seen_`, so a loaded model computes the same): ``LEFT_OUT_SCORE * (1 - c / 2c_max)``,
        between -1e30 (never rated) and -5e29 (the most rated left-out item), far below any
        modelled score. `_fallback_` ranks the modelled movies by popularity within
        [-1e-6, 0] (the similar movies of a left-out query movie)."""
        n = self.n_items_
        covers_all = len(self.model_items_) == n
        pos = None if covers_all else np.full(n, -1, dtype=np.int64)
        if pos is not None:
            pos[self.model_items_] = np.arange(len(self.model_items_))
        self._weight_rows = pos
        counts = np.bincount(self.seen_.indices, minlength=n).astype(np.float64)
        left = np.ones(n, dtype=bool)
        left[self.model_items_] = False
        top_left = max(float(counts[left].max()), 1.0) if left.any() else 1.0
        self._left_out_row = np.where(left, float(LEFT_OUT_SCORE) * (1.0 - 0.5 * counts / top_left),
                                      float(LEFT_OUT_SCORE)).astype(np.float32)
        top_in = max(float(counts[self.model_items_].max()), 1.0)
        self._fallback_row = np.where(left, self._left_out_row,
                                      -float(_FALLBACK_BAND) * (1.0 - counts / top_in)).astype(np.float32)

    def _score_from(self, H: sp.csr_matrix) -> np.ndarray:
        """Scores of all items for a (n, n_items) weighted history matrix."""
        return self._score_rows(H.indptr, H.indices, H.data)

    def _score_rows(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> np.ndarray:
        """``x @ B`` for histories given as CSR arrays over item indices (n rows), shape
        (n, n_items); items outside B score by popularity below every modelled item (see
        `_index_positions`). No scipy object is built:
        serving scores one history per request (see `movierec.models._sparse`)."""
        pos = self._weight_rows
        if pos is None:  # B covers every item
            return csr_rows_dot(indptr, indices, np.asarray(data, dtype=np.float32), self.weights_)
        p = pos[indices]
        keep = p >= 0
        kept_before = np.concatenate([[0], np.cumsum(keep)])
        out = np.empty((len(indptr) - 1, self.n_items_), dtype=np.float32)
        out[:] = self._left_out_row
        out[:, self.model_items_] = csr_rows_dot(kept_before[indptr], p[keep],
                                                 np.asarray(data, dtype=np.float32)[keep], self.weights_)
        return out

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        rows = np.asarray(user_idx, dtype=np.int64)
        X = self.user_items_
        if len(rows) == 1:  # one user (a request): a slice of the arrays, no scipy row indexing
            lo, hi = X.indptr[rows[0]], X.indptr[rows[0] + 1]
            return self._score_rows(np.array([0, hi - lo]), X.indices[lo:hi], X.data[lo:hi])
        return self._score_from(X[rows])

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        """Rows of B: how much each given movie predicts every movie, shape (len(item_idx), n_items).

        Movies outside the item-item model score by popularity below every modelled one
        (see `_index_positions`); a left-out query movie predicts nothing, so its row is
        the popularity fallback (modelled movies by popularity, at or below 0).
        """
        q = np.asarray(item_idx, dtype=np.int64)
        out = self._score_rows(np.arange(len(q) + 1), q, np.ones(len(q), np.float32))
        if self._weight_rows is not None:
            out[self._weight_rows[q] < 0] = self._fallback_row
        return out

    def _item_similarities_among(self, item_idx: np.ndarray, among: np.ndarray) -> np.ndarray:
        """B's entries of the given rows at the `among` columns only (what `_item_similarities`
        holds there), shape (len(item_idx), len(among))."""
        pos = self._weight_rows
        if pos is None:  # one gather from the flat array (cheaper than np.ix_ for a few entries)
            n = self.weights_.shape[1]
            return self.weights_.ravel()[item_idx[:, None] * n + among[None, :]]
        rows, cols = pos[item_idx], pos[among]
        out = np.empty((len(item_idx), len(among)), dtype=np.float32)
        out[:] = self._left_out_row[among]
        out[rows < 0] = self._fallback_row[among]  # a left-out query movie: the popularity fallback
        inside = np.ix_(np.flatnonzero(rows >= 0), np.flatnonzero(cols >= 0))
        out[inside] = self.weights_[np.ix_(rows[rows >= 0], cols[cols >= 0])]
        return out

    def _history_scores(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``x @ B`` for one history x (movies and their values), shape (n_items,); the
        movies are sorted as in the training matrix, so the product sums in the same order
        and a training user's history gives identical scores."""
        order = np.argsort(item_idx, kind="stable")
        cols = np.asarray(item_idx, dtype=np.int64)[order]
        data = np.asarray(values, dtype=np.float32)[order]
        return self._score_rows(np.array([0, len(cols)]), cols, data)[0]

    def _liked_values(self, ratings: np.ndarray | None, m: int) -> np.ndarray:
        """x of a new person's movies as for a training user: 1 each with values="ones";
        the ratings with values="rating" (the top of the rating scale for movies only
        known to be liked; any constant ranks alike)."""
        if self.values == "rating":
            return ratings.astype(np.float64) if ratings is not None else np.full(m, self._top())
        return np.ones(m)

    def _top(self) -> float:
        return float(self.rating_scale_[1]) if self.rating_scale_ else 1.0

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, None]:
        """``x @ B`` for the new person's history x: liked movies as for a training user
        (see `_liked_values`), so liked movies alone give a training user's exact scores;
        each disliked movie ``-DISLIKE_WEIGHT`` (times the top of the scale with
        values="rating", the size of a liked movie there).

        DISLIKE_WEIGHT = 0.25: a disliked movie pushes away a quarter as hard as a liked
        one pulls. Chosen on ML-100K (defaults, fitted on 80% of the users; the other
        users' ratings split 80/20 per user, the 80% folded in, two seeded user splits)
        from 0 (dislikes dropped), 0.1, 0.25, 0.5, 1 and 2: against dropping them, 0.25
        puts 21-30% fewer held-out movies rated <= 2 into the top 10 for 4-5% fewer rated
        >= 4 (SeqEASE: 26-29% for 5%); larger weights lose liked movies faster than they
        shed disliked ones. Reading dislikes as likes (the old behaviour) put 1.6-2.4x
        as many movies rated <= 2 into the top 10 as 0.25 does, for 1-8% more rated >= 4.
        """
        x = self._liked_values(ratings, len(item_idx))
        x = np.where(liked, x, -float(self.DISLIKE_WEIGHT) * (self._top() if self.values == "rating" else 1.0))
        return self._history_scores(item_idx, x), None

    def _state(self) -> dict[str, np.ndarray]:
        H = self.user_items_.tocsr()
        return {
            "model_items": self.model_items_,
            "weights": self.weights_,
            "user_items_data": H.data.astype(np.float32),
            "user_items_indices": H.indices.astype(np.int64),
            "user_items_indptr": H.indptr.astype(np.int64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.model_items_ = np.asarray(state["model_items"], dtype=np.int64)
        self.weights_ = np.asarray(state["weights"], dtype=np.float32)
        self.user_items_ = sp.csr_matrix(
            (state["user_items_data"], state["user_items_indices"], state["user_items_indptr"]),
            shape=(len(self.users_), len(self.items_)),
        )
        self._index_positions()


__all__ = ["EASE", "ease_weights", "gram_matrix", "LEFT_OUT_SCORE", "DEFAULT_MAX_ITEMS"]

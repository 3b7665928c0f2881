"""Shared machinery of the PyTorch implicit-feedback models (NeuMF, ranking MF).

Lives here: turning ratings into implicit interactions, vectorised negative sampling
(uniform over the items a user has not interacted with), an epoch's training rows drawn
chunk by chunk (`pointwise_chunks`, `pairwise_chunks`, re-sliced into batches by
`chunked_batches`), so sampling takes memory bounded by `NEGATIVE_CHUNK_ROWS` whatever
the number of interactions, the internal per-user holdout
used for early stopping when no validation set is given, a small full-ranking NDCG@k
used as the early-stopping signal (train items excluded), and `fit_ranking_model`, which
runs the shared early-stop-then-refit policy (`movierec.training.early_stopping`) for them.

All indices here are model indices (IdMap positions), never raw MovieLens IDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.training.early_stopping import EarlyStopResult, early_stop_then_refit

if TYPE_CHECKING:  # torch is imported where it is used: a saved mf-rank loads without it
    import torch

#: (user, item) pairs scored at once when ranking for validation
_VALIDATION_CHUNK_PAIRS = 2_000_000

#: training rows (a positive or one of its sampled negatives) drawn at once: what bounds an
#: epoch's sampling memory (about 64-80 bytes a row at the peak), independent of the number
#: of interactions. Read when an epoch starts (tests lower it).
NEGATIVE_CHUNK_ROWS = 1 << 20


def implicit_interactions(ds: Dataset, min_rating: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (user, item) interactions of a Dataset, treating every rating as a positive.

    Args:
        ds: ratings or interactions.
        min_rating: when given, only ratings >= this count as interactions.

    Returns:
        (user_idx, item_idx, timestamp), int64 arrays of shape (n,), one row per distinct
        (user, item) pair (the latest timestamp is kept), sorted by user then item.
    """
    keep = np.ones(ds.n_ratings, dtype=bool) if min_rating is None else ds.rating >= min_rating
    users = ds.user_idx[keep].astype(np.int64)
    items = ds.item_idx[keep].astype(np.int64)
    times = ds.timestamp[keep].astype(np.int64)
    keys = users * ds.n_items + items
    order = np.lexsort((times, keys))  # by key, latest last
    keys, times = keys[order], times[order]
    last = np.ones(len(keys), dtype=bool)
    last[:-1] = keys[1:] != keys[:-1]
    keys, times = keys[last], times[last]
    return keys // ds.n_items, keys % ds.n_items, times


def interaction_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary users x items CSR matrix of the given pairs."""
    m = sp.csr_matrix(
        (np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items)
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


class NegativeSampler:
    """Uniform negatives over the items each user has *not* interacted with.

    Membership is checked against the sorted keys `user * n_items + item` with one
    `searchsorted` per round; rejected draws are redrawn (vectorised rejection), so a
    round costs O(n log n) however many negatives are asked for.

    Args:
        users, items: positive interactions (model indices), shape (n,).
        n_items: catalog size.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int, max_rounds: int = 100):
        self.n_items = int(n_items)
        self.keys = np.unique(np.asarray(users, np.int64) * self.n_items + np.asarray(items, np.int64))
        self.max_rounds = max_rounds

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each (user, item) pair is a known interaction; same shape as the inputs."""
        keys = users.astype(np.int64) * self.n_items + items.astype(np.int64)
        if len(self.keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == keys

    def sample(self, rng: np.random.Generator, users: np.ndarray, n_neg: int) -> np.ndarray:
        """n_neg negatives for each user in `users` (shape (n,)) -> shape (n, n_neg), int64.

        Users who interacted with (nearly) every item may keep a few positives after
        `max_rounds` rounds; that never happens on MovieLens.
        """
        users = np.asarray(users, np.int64)
        u = np.repeat(users, n_neg)
        neg = rng.integers(0, self.n_items, size=len(u), dtype=np.int64)
        bad = np.flatnonzero(self.contains(u, neg))
        for _ in range(self.max_rounds):
            if len(bad) == 0:
                break
            neg[bad] = rng.integers(0, self.n_items, size=len(bad), dtype=np.int64)
            bad = bad[self.contains(u[bad], neg[bad])]
        return neg.reshape(len(users), n_neg)


def pointwise_chunks(users: np.ndarray, items: np.ndarray, sampler: NegativeSampler, n_neg: int,
                     rng: np.random.Generator, chunk_rows: int | None = None
                     ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of (user, item, label) rows, chunk by chunk: every positive once with label
    1, each with `n_neg` fresh negatives (label 0) from `sampler`.

    The positives come in a fresh random order each epoch; a chunk takes the next
    `chunk_rows // (1 + n_neg)` of them (at least one), draws their negatives, and shuffles
    its rows, so a batch sliced from it mixes positives and negatives as one shuffled
    epoch-wide array would, in O(chunk) memory.

    Args:
        users, items: positive interactions (model indices), int64, shape (n,).
        sampler: negatives uniform over the items each user has not interacted with.
        n_neg: negatives per positive.
        rng: the fit's seeded generator (order, negatives and shuffles all come from it).
        chunk_rows: rows per chunk; None reads `NEGATIVE_CHUNK_ROWS`.

    Yields:
        (user_idx int64, item_idx int64, label float32), each shape (rows,), rows at most
        max(chunk_rows, 1 + n_neg); n * (1 + n_neg) rows in all.
    """
    chunk_rows = NEGATIVE_CHUNK_ROWS if chunk_rows is None else int(chunk_rows)
    per_chunk = max(1, chunk_rows // (1 + n_neg))
    order = rng.permutation(len(users))
    for start in range(0, len(order), per_chunk):
        idx = order[start : start + per_chunk]
        m = len(idx)
        pu, pi = users[idx], items[idx]
        neg = sampler.sample(rng, pu, n_neg).ravel()
        # row r of the shuffled chunk is row rows[r] of [positives; negatives]
        rows = rng.permutation(m * (1 + n_neg))
        u = np.concatenate([pu, np.repeat(pu, n_neg)])[rows]
        i = np.concatenate([pi, neg])[rows]
        y = (rows < m).astype(np.float32)
        del pu, pi, neg, rows  # not kept while the chunk trains
        yield u, i, y
        del u, i, y  # nor while the next one is drawn


def pairwise_chunks(users: np.ndarray, items: np.ndarray, sampler: NegativeSampler, n_neg: int,
                    rng: np.random.Generator, batch_size: int, chunk_rows: int | None = None
                    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of (user, positive, negatives) triples, chunk by chunk: every positive once,
    in a fresh random order, with `n_neg` fresh negatives from `sampler`.

    A chunk holds a whole number of batches (`batch_size` positives each) and at most
    `chunk_rows` negatives (one batch when a batch alone has more), so batches sliced from
    the chunks are those of one shuffled epoch-wide array, in O(chunk) memory.

    Args:
        users, items: positive interactions (model indices), int64, shape (n,).
        sampler: negatives uniform over the items each user has not interacted with.
        n_neg: negatives per positive.
        rng: the fit's seeded generator (order and negatives come from it).
        batch_size: positives per training step.
        chunk_rows: negatives per chunk; None reads `NEGATIVE_CHUNK_ROWS`.

    Yields:
        (user_idx (m,), item_idx (m,), negatives (m, n_neg)), int64.
    """
    chunk_rows = NEGATIVE_CHUNK_ROWS if chunk_rows is None else int(chunk_rows)
    per_chunk = batch_size * max(1, chunk_rows // (batch_size * n_neg))
    order = rng.permutation(len(users))
    for start in range(0, len(order), per_chunk):
        idx = order[start : start + per_chunk]
        pu = users[idx]
        chunk = (pu, items[idx], sampler.sample(rng, pu, n_neg))
        del pu
        yield chunk
        del chunk  # not kept while the next one is drawn


def chunked_batches(chunks: Iterable[tuple[np.ndarray, ...]], batch_size: int, device: torch.device
                    ) -> Iterator[tuple[torch.Tensor, ...]]:
    """Chunks of aligned arrays, each moved to `device` whole, re-sliced into batches of
    `batch_size` rows.

    A chunk's last rows that do not fill a batch start the next batch, so every batch but
    the epoch's last has exactly `batch_size` rows, as slicing one epoch-wide array would.
    """
    import torch

    carry: tuple[torch.Tensor, ...] | None = None
    for arrays in chunks:
        chunk = tuple(torch.as_tensor(a, device=device) for a in arrays)
        del arrays
        start = 0
        if carry is not None:
            start = batch_size - len(carry[0])
            carry = tuple(torch.cat([c, t[:start]]) for c, t in zip(carry, chunk))
            if len(carry[0]) < batch_size:  # a chunk smaller than the gap
                continue
            yield carry
            carry = None
        n = len(chunk[0])
        full = start + (n - start) // batch_size * batch_size
        for s in range(start, full, batch_size):
            yield tuple(t[s : s + batch_size] for t in chunk)
        if full < n:  # a copy: a view would keep the whole chunk alive
            carry = tuple(t[full:].clone() for t in chunk)
        del chunk
    if carry is not None:
        yield carry


def holdout_last(users: np.ndarray, items: np.ndarray, times: np.ndarray, min_history: int = 3) -> np.ndarray:
    """Mask of the interactions to hold out: each user's latest one (by timestamp, ties
    broken by position), for users with at least `min_history` interactions.

    Returns:
        bool array, shape (n,), True for held-out rows.
    """
    n = len(users)
    order = np.lexsort((np.arange(n), times, users))
    su = users[order]
    is_last = np.ones(n, dtype=bool)
    is_last[:-1] = su[1:] != su[:-1]
    counts = np.bincount(su, minlength=int(su.max()) + 1 if n else 0)
    held_sorted = is_last & (counts[su] >= min_history)
    held = np.zeros(n, dtype=bool)
    held[order] = held_sorted
    return held


def dcg_discounts(k: int) -> np.ndarray:
    """1 / log2(rank + 1) for ranks 1..k, shape (k,)."""
    return 1.0 / np.log2(np.arange(2, k + 2))


@dataclass
class RankingValidator:
    """NDCG@k of a scoring function on held-out interactions, ranking every item.

    Args:
        users: users evaluated (model indices), shape (n,).
        relevant: users x items binary CSR of held-out positives.
        exclude: users x items binary CSR of the items removed from each ranking (training
            interactions).
        k: cut-off.
    """

    users: np.ndarray
    relevant: sp.csr_matrix
    exclude: sp.csr_matrix
    k: int = 10

    def __call__(self, score_users: Callable[[np.ndarray], np.ndarray]) -> float:
        """Mean NDCG@k; `score_users(user_idx) -> scores (len, n_items)` (numpy float32)."""
        if len(self.users) == 0:
            return 0.0
        n_items = self.relevant.shape[1]
        k = min(self.k, n_items)
        disc = dcg_discounts(k)
        chunk = max(1, _VALIDATION_CHUNK_PAIRS // max(n_items, 1))
        total = 0.0
        for start in range(0, len(self.users), chunk):
            rows = self.users[start : start + chunk]
            scores = np.array(score_users(rows), dtype=np.float32, copy=True)
            ex = self.exclude[rows]
            r, c = ex.nonzero()
            scores[r, c] = -np.inf
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(scores, top, axis=1)
            top = np.take_along_axis(top, np.argsort(-vals, axis=1, kind="stable"), axis=1)
            rel = self.relevant[rows]
            hits = np.asarray(rel[np.arange(len(rows))[:, None], top].todense()) > 0
            dcg = (hits * disc).sum(axis=1)
            n_rel = np.minimum(np.diff(rel.indptr), k)
            idcg = np.cumsum(disc)[np.maximum(n_rel - 1, 0)]
            total += float(np.where(n_rel > 0, dcg / idcg, 0.0).sum())
        return total / len(self.users)


def _validator(relevant: sp.csr_matrix, exclude: sp.csr_matrix, k: int, max_val_users: int | None,
               rng: np.random.Generator) -> RankingValidator | None:
    """A RankingValidator over the users with held-out items (a seeded sample of at most
    `max_val_users` of them, to keep epochs fast), or None when there are none."""
    val_users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if max_val_users is not None and len(val_users) > max_val_users:
        val_users = np.sort(rng.choice(val_users, size=max_val_users, replace=False))
    if len(val_users) == 0:
        return None
    return RankingValidator(val_users, relevant.tocsr(), exclude.tocsr(), k)


def fit_ranking_model(model: Any, train: Dataset, validation: Dataset | None, k: int = 10,
                      max_val_users: int | None = 2000) -> EarlyStopResult:
    """The training of the PyTorch ranking models (`neumf`, `mf-rank`), on the shared policy.

    Early stopping watches NDCG@k (every item ranked, training items excluded) on the
    `validation` Dataset's users, or, without one, on each user's latest training
    interaction (users with >= 3) held out internally; with the internal hold-out and
    `model.refit`, a fresh network is then trained on all interactions for the best epoch
    count (see `movierec.training.early_stopping`). Called from the model's `_fit_epochs`
    (threads, device and the distributed run are `TorchRecommender`'s), with `train` this
    process's shard of the training data.

    The model supplies `min_rating`, `epochs`, `patience`, `refit`, `_seed` and
    `_train(users, items, epochs, validator, seed) -> (module, History)`. Returns the
    policy's result (the module moved to the CPU).
    """
    users, items, times = implicit_interactions(train, model.min_rating)
    if len(users) == 0:
        raise ConfigError("No interactions left to train on; lower min_rating.")
    n_users, n_items = train.n_users, train.n_items
    seed = int(model._seed)
    rng = np.random.default_rng(seed)
    given = None
    if model.patience > 0 and validation is not None and validation.n_ratings > 0:
        vu, vi, _ = implicit_interactions(validation, model.min_rating)
        relevant = interaction_matrix(vu, vi, n_users, n_items)
        exclude = interaction_matrix(users, items, n_users, n_items)
        # a validation item already in train cannot be recommended: drop it
        relevant = relevant - relevant.multiply(exclude)
        relevant.eliminate_zeros()
        given = _validator(relevant, exclude, k, max_val_users, rng)

    def holdout(pairs: tuple[np.ndarray, np.ndarray]):
        u, i = pairs
        held = holdout_last(u, i, times)
        if not held.any():
            return None
        fit = (u[~held], i[~held])
        validator = _validator(interaction_matrix(u[held], i[held], n_users, n_items),
                               interaction_matrix(*fit, n_users, n_items), k, max_val_users, rng)
        return None if validator is None else (fit, validator)

    def train_one(pairs, validator, epochs, refitting):
        return model._train(pairs[0], pairs[1], epochs, validator, seed)

    result = early_stop_then_refit(train_one, (users, items), given, holdout, epochs=int(model.epochs),
                                   patience=int(model.patience), refit=bool(model.refit))
    result.module = result.module.cpu()
    return result

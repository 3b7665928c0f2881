"""Sampled-negative evaluation: rank each test item among N random unrated items instead
of the whole catalog. On request only, with fixed seeds and cached negatives: it is known
to reorder models relative to full ranking (Krichene & Rendle, 2020).

The candidates of one (train, test, n_negatives, seed) are drawn once and kept in a
bounded in-memory cache (`NegativeCache`, least recently used out first) and, when a
folder is given, on disk, so every model of a comparison ranks the same candidates.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from movierec.errors import ConfigError

if TYPE_CHECKING:
    import scipy.sparse as sp

    from movierec.data.dataset import Dataset

SAMPLED_WARNING = (
    "Sampled-negative evaluation ranks each user's test items among a few random items "
    "instead of the whole catalog; its numbers are inflated and can reorder models "
    "compared with full ranking (Krichene & Rendle, 2020). Use it only to compare with "
    "papers that report it."
)


class SampledEvaluationWarning(UserWarning):
    """Issued whenever sampled-negative candidates are built."""


class NegativeCache:
    """A bounded in-memory cache of sampled-negative candidate matrices, least recently
    used out first.

    Args:
        maxsize: how many candidate matrices to keep (each is one bool CSR matrix of
            about (n_negatives + test items) entries per test user).
    """

    def __init__(self, maxsize: int = 4):
        if maxsize < 1:
            raise ConfigError(f"A negative cache holds at least one entry, got maxsize={maxsize!r}.")
        self.maxsize = int(maxsize)
        self._entries: OrderedDict[str, sp.csr_matrix] = OrderedDict()

    def get(self, key: str) -> sp.csr_matrix | None:
        """The matrix stored under `key` (now the most recently used), or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: sp.csr_matrix) -> None:
        """Store `value` under `key`, dropping the least recently used entry when full."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries


#: the cache `sample_negatives` uses unless given another
DEFAULT_NEGATIVE_CACHE = NegativeCache()


def negatives_key(train: Dataset, test: Dataset, n_negatives: int, seed: int) -> str:
    """The cache key of one draw: the data fingerprints, `n_negatives` and `seed`."""
    h = hashlib.sha256()
    h.update(train.fingerprint().encode())
    h.update(test.fingerprint().encode())
    h.update(f"{n_negatives}:{seed}".encode())
    return h.hexdigest()[:24]


def sample_negatives(train: Dataset, test: Dataset, n_negatives: int = 100, seed: int = 0,
                     cache_dir: str | Path | None = None, cache: NegativeCache | None = None) -> sp.csr_matrix:
    """Per-user candidate sets for sampled-negative evaluation.

    Each test user's candidates are their test items plus `n_negatives` items drawn
    uniformly (seeded) among the items they have in neither train nor test. The result
    is cached in memory (`cache`, default `DEFAULT_NEGATIVE_CACHE`) and in `cache_dir` as
    .npz when given, keyed by the data fingerprints, `n_negatives` and `seed`, so every
    model sees the same candidates.

    Issues a `SampledEvaluationWarning` (see SAMPLED_WARNING).

    Returns:
        bool CSR matrix, shape (n_users, n_items): True = candidate for that user.
        Rows of users without test interactions are empty.
    """
    import numpy as np
    import scipy.sparse as sp

    warnings.warn(SAMPLED_WARNING, SampledEvaluationWarning, stacklevel=2)
    if n_negatives < 1:
        raise ConfigError(f"n_negatives must be at least 1, got {n_negatives!r}.")
    cache = DEFAULT_NEGATIVE_CACHE if cache is None else cache
    key = negatives_key(train, test, n_negatives, seed)
    cached = cache.get(key)
    if cached is not None:
        return cached
    path = Path(cache_dir) / f"negatives-{key}.npz" if cache_dir else None
    if path is not None and path.is_file():
        cand = sp.load_npz(path).tocsr().astype(bool)
        cache.put(key, cand)
        return cand

    n_users, n_items = train.n_users, train.n_items
    rng = np.random.default_rng(seed)
    users = np.unique(test.user_idx)
    seen = (train.to_csr("ones") + test.to_csr("ones")).tocsr()
    seen.sum_duplicates()
    seen.sort_indices()
    row_of = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(seen.indptr))
    seen_keys = row_of * n_items + seen.indices.astype(np.int64)
    available = n_items - np.diff(seen.indptr)[users]
    want = np.minimum(n_negatives, available)
    chosen = [np.empty(0, np.int64)] * len(users)
    todo = np.arange(len(users))
    for _ in range(64):  # rejection sampling, vectorised over users
        if len(todo) == 0:
            break
        draw = rng.integers(0, n_items, size=(len(todo), 2 * n_negatives + 8))
        keys = users[todo, None].astype(np.int64) * n_items + draw
        pos = np.minimum(np.searchsorted(seen_keys, keys), max(len(seen_keys) - 1, 0))
        bad = seen_keys[pos] == keys if len(seen_keys) else np.zeros_like(keys, bool)
        still = []
        for row, t in enumerate(todo):
            got = np.concatenate([chosen[t], draw[row][~bad[row]]])
            _, first = np.unique(got, return_index=True)
            got = got[np.sort(first)][: want[t]]
            chosen[t] = got
            if len(got) < want[t]:
                still.append(t)
        todo = np.asarray(still, dtype=np.int64)
    for t in todo:  # very dense users: take the rest exactly
        free = np.setdiff1d(np.arange(n_items), seen[users[t]].indices)
        chosen[t] = rng.choice(free, size=want[t], replace=False)
    rows = np.concatenate([np.full(len(c), u, np.int64) for u, c in zip(users, chosen)] + [test.user_idx.astype(np.int64)])
    cols = np.concatenate(list(chosen) + [test.item_idx.astype(np.int64)])
    cand = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n_users, n_items))
    cand.sum_duplicates()
    cand.sort_indices()
    cache.put(key, cand)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        sp.save_npz(tmp, cand.astype(np.uint8), compressed=True)
        tmp.replace(path)
    return cand


__all__ = ["DEFAULT_NEGATIVE_CACHE", "NegativeCache", "SAMPLED_WARNING", "SampledEvaluationWarning",
           "negatives_key", "sample_negatives"]

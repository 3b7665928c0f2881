"""Top-k lists: the `Recommendations` value and the one chunked ranker every query uses.

Models answer through `rank_top_k`, so a batch of users, a single user and a new
(folded-in) person are ranked by the same code: scores in memory-bounded chunks, seen or
excluded movies masked, candidates restricted, each user's list as long as that user's
allowed movies permit (never cut to the shortest list in the batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: score-matrix elements computed at once when ranking, so memory stays bounded for large catalogs
SCORE_CHUNK_ELEMENTS = 20_000_000


@dataclass
class Recommendations:
    """Top-k lists for a batch of users, in raw IDs.

    Lists can differ in length (a user with few allowed movies gets a shorter list);
    arrays are padded on the right: `item_ids` with a fill value (-1 for numeric IDs, ""
    for string IDs) and `scores` with -inf. Use `lengths`, iteration or `to_frame()`,
    which skip the padding.

    Attributes:
        user_ids: raw user IDs, shape (n,) (-1 for a new person folded in).
        item_ids: raw movie IDs, shape (n, k), best first.
        scores: model scores, float32, shape (n, k).
        lengths: number of real entries per row, shape (n,).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray
    lengths: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.lengths is None:
            self.lengths = np.isfinite(self.scores).sum(axis=1).astype(np.int64) if self.scores.ndim == 2 else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.user_ids)

    def __iter__(self) -> Iterator[tuple[object, np.ndarray, np.ndarray]]:
        """(user ID, movie IDs, scores) per user, padding removed."""
        for row, user in enumerate(self.user_ids):
            n = int(self.lengths[row])
            yield user, self.item_ids[row, :n], self.scores[row, :n]

    def items_of(self, row: int) -> np.ndarray:
        """Raw movie IDs of row `row`, best first, without padding."""
        return self.item_ids[row, : int(self.lengths[row])]

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (user, rank), padding left out."""
        n, k = self.item_ids.shape
        keep = (np.arange(k)[None, :] < self.lengths[:, None]).ravel()
        return pd.DataFrame(
            {
                "user": np.repeat(self.user_ids, k)[keep],
                "rank": np.tile(np.arange(1, k + 1), n)[keep],
                "item": self.item_ids.ravel()[keep],
                "score": self.scores.ravel()[keep],
            }
        ).reset_index(drop=True)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a score matrix, best first: (indices, values), shape (n, min(k, m)).

    Uses torch.topk when torch is already imported (multi-threaded, ~10x faster than
    argpartition on wide rows), else NumPy's argpartition, so a light process (the CLI
    answering from a saved model) never imports torch. Both are deterministic; the path
    depends only on whether torch is loaded, never on the batch size, so a batch and a
    single user are ranked alike.
    """
    n, m = scores.shape
    k = min(int(k), m)
    if k <= 0:
        return np.empty((n, 0), dtype=np.int64), np.empty((n, 0), dtype=scores.dtype)
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        values, indices = torch.from_numpy(np.ascontiguousarray(scores)).topk(k, dim=1, sorted=True)
        return indices.numpy().astype(np.int64, copy=False), values.numpy()
    if k < m:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return idx, np.take_along_axis(vals, order, axis=1)


def rank_top_k(
    score_rows: Callable[[np.ndarray], np.ndarray],
    rows: np.ndarray,
    n_items: int,
    k: int,
    exclude: sp.csr_matrix | None = None,
    candidates: np.ndarray | None = None,
    exclude_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item indices and scores for many rows, scored in memory-bounded chunks.

    Args:
        score_rows: maps a chunk of row keys (shape (c,)) to scores, shape (c, n_items).
        rows: row keys (usually user indices), shape (n,).
        n_items: number of items (columns of every score matrix).
        k: list length.
        exclude: matrix whose non-zeros are removed; its row `exclude_rows[j]` (or
            `rows[j]` when `exclude_rows` is None) masks output row j.
        candidates: boolean mask over items, shape (n_items,), of allowed items.
        exclude_rows: row numbers into `exclude`, shape (n,), when they differ from `rows`.

    Returns:
        (indices, scores), each shape (n, min(k, n_items)). Slots beyond a row's number
        of allowed items hold index -1 and score -inf.
    """
    rows = np.asarray(rows)
    kk = min(int(k), int(n_items))
    out_idx = np.full((len(rows), kk), -1, dtype=np.int64)
    out_val = np.full((len(rows), kk), -np.inf, dtype=np.float32)
    if kk == 0 or len(rows) == 0:
        return out_idx, out_val
    ex_rows = rows if exclude_rows is None else np.asarray(exclude_rows)
    chunk = max(1, SCORE_CHUNK_ELEMENTS // max(int(n_items), 1))
    for start in range(0, len(rows), chunk):
        stop = min(start + chunk, len(rows))
        scores = np.array(score_rows(rows[start:stop]), dtype=np.float32, copy=True)
        if scores.shape != (stop - start, n_items):
            raise ValueError(f"score function returned shape {scores.shape}, expected {(stop - start, n_items)}")
        if candidates is not None:
            scores[:, ~candidates] = -np.inf
        if exclude is not None:
            r, c = exclude[ex_rows[start:stop]].nonzero()
            scores[r, c] = -np.inf
        idx, val = top_k(scores, kk)
        finite = np.isfinite(val)
        out_idx[start:stop] = np.where(finite, idx, -1)
        out_val[start:stop] = np.where(finite, val, -np.inf)
    return out_idx, out_val


def to_recommendations(user_ids: np.ndarray, idx: np.ndarray, val: np.ndarray, raw_items: np.ndarray) -> Recommendations:
    """Recommendations in raw IDs from index lists padded with -1 (see `rank_top_k`)."""
    valid = idx >= 0
    fill = "" if raw_items.dtype.kind in "OUS" else -1
    if raw_items.dtype.kind in "OUS":
        ids = np.full(idx.shape, fill, dtype=raw_items.dtype if raw_items.dtype.kind != "O" else object)
    else:
        ids = np.full(idx.shape, fill, dtype=raw_items.dtype)
    ids[valid] = raw_items[idx[valid]]
    scores = np.where(valid, val, -np.inf).astype(np.float32)
    return Recommendations(user_ids=np.asarray(user_ids), item_ids=ids, scores=scores,
                           lengths=valid.sum(axis=1).astype(np.int64))


__all__ = ["Recommendations", "top_k", "rank_top_k", "to_recommendations", "SCORE_CHUNK_ELEMENTS"]

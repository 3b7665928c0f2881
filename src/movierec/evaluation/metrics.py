"""Pure metric functions. They never see a model: only predictions, rankings and truths.

Ranking metrics take

* ``ranked``: item indices, shape (n_users, L), best first. Row u is user u's list;
  slots holding ``-1`` are empty (fewer than L items were available). A list must not
  repeat an item.
* ``relevant``: the relevant items of each user, either a users x items sparse matrix
  (row u = user u, same row order as ``ranked``; a non-zero value is the item's gain,
  e.g. its rating) or a sequence of n_users item collections (iterables of item indices,
  or mappings item index -> gain).

and return one value per user (shape (n_users,), float64), except the catalog-level
metrics (coverage, Gini) which return one float. Everything is vectorised over users.

Definitions (K = cut-off, rel_u = relevant set of user u, hit_i = 1 if the item at
rank i is relevant):

* Precision@K = (sum_{i<=K} hit_i) / K. The denominator is K even when fewer than K
  items could be recommended (empty slots count as misses).
* Recall@K = (sum_{i<=K} hit_i) / |rel_u| (the classic definition, "normalize='relevant'").
  The variant ``normalize='min'`` divides by min(K, |rel_u|), so a perfect list scores 1
  even when a user has more than K relevant items ("capped recall").
* HR@K (hit rate) = 1 if any of the top K is relevant, else 0.
* NDCG@K = DCG@K / IDCG@K with DCG@K = sum_{i<=K} g_i / log2(i + 1). Binary: g_i = hit_i.
  Graded: g_i = the item's gain (``gain='linear'``) or 2^gain - 1 (``gain='exp'``);
  IDCG@K is the DCG of the user's relevant items sorted by gain.
* MAP@K: AP@K = sum_{i<=K} Precision@i * hit_i / D with D = min(K, |rel_u|) by default
  (``normalize='min'``, the usual recommender definition) or D = |rel_u|
  (``normalize='relevant'``, the TREC / ranx definition).
* MRR (reciprocal rank) = 1 / rank of the first relevant item in the (truncated) list,
  0 when none is there.

Users with no relevant item get NaN for recall, NDCG and MAP (undefined), and 0 for
precision, HR and MRR.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

# --------------------------------------------------------------------------------------
# rating metrics


def rmse(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error of rating predictions, shapes (n,)."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    if predicted.shape != truth.shape or predicted.size == 0:
        raise ValueError("predicted and truth must be non-empty and of the same shape")
    return float(np.sqrt(np.mean((predicted - truth) ** 2)))


def mae(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error of rating predictions, shapes (n,)."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    if predicted.shape != truth.shape or predicted.size == 0:
        raise ValueError("predicted and truth must be non-empty and of the same shape")
    return float(np.mean(np.abs(predicted - truth)))


# --------------------------------------------------------------------------------------
# input normalisation


def as_ranked(ranked) -> np.ndarray:
    """Ranked lists as an int64 array (n_users, L); ragged lists are padded with -1."""
    if isinstance(ranked, np.ndarray):
        arr = ranked
    else:
        rows = [np.asarray(list(r), dtype=np.int64) for r in ranked]
        width = max((len(r) for r in rows), default=0)
        arr = np.full((len(rows), width), -1, dtype=np.int64)
        for u, r in enumerate(rows):
            arr[u, : len(r)] = r
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ValueError(f"ranked must be 2-D (n_users, L), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError("ranked must hold integer item indices (-1 for an empty slot)")
    return arr.astype(np.int64, copy=False)


def relevance_matrix(relevant, n_items: int | None = None) -> sp.csr_matrix:
    """Relevant items as a canonical users x items CSR matrix of gains (float64).

    Args:
        relevant: a sparse matrix (non-zeros are relevant, values are gains) or a
            sequence with, per user, an iterable of item indices (gain 1) or a mapping
            item index -> gain.
        n_items: number of columns when built from a sequence (default: max index + 1).

    Returns:
        CSR matrix with sorted indices, no duplicates and no explicit zeros.
    """
    if sp.issparse(relevant):
        m = sp.csr_matrix(relevant, dtype=np.float64, copy=True)
    else:
        rows, cols, vals = [], [], []
        for u, rel in enumerate(relevant):
            if isinstance(rel, Mapping):
                items = np.fromiter(rel.keys(), dtype=np.int64, count=len(rel))
                gains = np.fromiter(rel.values(), dtype=np.float64, count=len(rel))
            else:
                items = np.unique(np.fromiter(rel, dtype=np.int64))
                gains = np.ones(len(items), dtype=np.float64)
            rows.append(np.full(len(items), u, dtype=np.int64))
            cols.append(items)
            vals.append(gains)
        n_users = len(rows)
        r = np.concatenate(rows) if rows else np.empty(0, np.int64)
        c = np.concatenate(cols) if cols else np.empty(0, np.int64)
        v = np.concatenate(vals) if vals else np.empty(0, np.float64)
        if c.size and c.min() < 0:
            raise ValueError("relevant item indices must be >= 0")
        width = max(int(c.max()) + 1 if c.size else 0, n_items or 0)
        m = sp.csr_matrix((v, (r, c)), shape=(n_users, width))
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    return m


def hit_gains(ranked, relevant) -> np.ndarray:
    """Gain of the item in each slot of the ranked lists (0 = not relevant / empty).

    Args:
        ranked: item indices, shape (n_users, L), -1 = empty slot.
        relevant: see the module docstring; n_users rows.

    Returns:
        float64 array, shape (n_users, L).
    """
    ranked = as_ranked(ranked)
    rel = relevance_matrix(relevant)
    n, width = ranked.shape
    if rel.shape[0] != n:
        raise ValueError(f"ranked has {n} rows but relevant has {rel.shape[0]}")
    if width == 0 or rel.nnz == 0:
        return np.zeros((n, width), dtype=np.float64)
    n_cols = int(max(rel.shape[1], ranked.max() + 1, 1))
    row_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(rel.indptr))
    keys = row_of * n_cols + rel.indices.astype(np.int64)  # sorted: rows then columns
    valid = ranked >= 0
    query = np.arange(n, dtype=np.int64)[:, None] * n_cols + np.where(valid, ranked, 0)
    pos = np.searchsorted(keys, query)
    pos_c = np.minimum(pos, len(keys) - 1)
    found = valid & (keys[pos_c] == query)
    return np.where(found, rel.data[pos_c], 0.0)


def n_relevant(relevant) -> np.ndarray:
    """Number of relevant items per user, shape (n_users,)."""
    return np.diff(relevance_matrix(relevant).indptr).astype(np.int64)


def _cut(arr: np.ndarray, k: int) -> np.ndarray:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return arr[:, :k]


def _prep(ranked, relevant, k):
    gains = hit_gains(ranked, relevant)
    hits = (_cut(gains, k) > 0).astype(np.float64)
    return hits, n_relevant(relevant)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


# --------------------------------------------------------------------------------------
# accuracy metrics (per user)


def precision_at_k(ranked, relevant, k: int) -> np.ndarray:
    """Precision@K: relevant items among the top K, divided by K. Shape (n_users,)."""
    hits, _ = _prep(ranked, relevant, k)
    return hits.sum(axis=1) / k


def recall_at_k(ranked, relevant, k: int, normalize: str = "relevant") -> np.ndarray:
    """Recall@K: relevant items in the top K over |relevant| ("relevant") or over
    min(K, |relevant|) ("min", capped recall). NaN for users with nothing relevant."""
    hits, n_rel = _prep(ranked, relevant, k)
    if normalize == "relevant":
        den = n_rel
    elif normalize == "min":
        den = np.minimum(n_rel, k)
    else:
        raise ValueError("normalize must be 'relevant' or 'min'")
    return _safe_div(hits.sum(axis=1), den)


def hit_rate_at_k(ranked, relevant, k: int) -> np.ndarray:
    """HR@K: 1.0 if at least one of the top K is relevant, else 0.0."""
    hits, _ = _prep(ranked, relevant, k)
    return (hits.sum(axis=1) > 0).astype(np.float64)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(ranked, relevant, k: int, graded: bool = False, gain: str = "linear") -> np.ndarray:
    """NDCG@K, binary (graded=False) or graded by the values of `relevant`.

    Args:
        gain: for graded NDCG, "linear" (g = value) or "exp" (g = 2**value - 1).

    Returns:
        shape (n_users,), in [0, 1]; NaN for users with nothing relevant.
    """
    rel = relevance_matrix(relevant)
    gains_full = hit_gains(ranked, rel)
    g = _cut(gains_full, k)
    if not graded:
        g = (g > 0).astype(np.float64)
        data = np.ones_like(rel.data)
    else:
        if gain == "exp":
            g = np.where(g > 0, np.exp2(g) - 1.0, 0.0)
            data = np.exp2(rel.data) - 1.0
        elif gain == "linear":
            data = rel.data
        else:
            raise ValueError("gain must be 'linear' or 'exp'")
    disc = _discounts(k)
    dcg = g @ disc[: g.shape[1]]
    n = rel.shape[0]
    counts = np.diff(rel.indptr)
    if not graded:
        cum = np.concatenate([[0.0], np.cumsum(disc)])
        idcg = cum[np.minimum(counts, k)]
    else:
        row_of = np.repeat(np.arange(n), counts)
        order = np.lexsort((-data, row_of))
        pos = np.arange(len(order)) - rel.indptr[row_of[order]]
        keep = pos < k
        ideal = np.zeros((n, k), dtype=np.float64)
        ideal[row_of[order][keep], pos[keep]] = data[order][keep]
        idcg = ideal @ disc
    return _safe_div(dcg, idcg)


def average_precision_at_k(ranked, relevant, k: int, normalize: str = "min") -> np.ndarray:
    """AP@K (its mean over users is MAP@K).

    Args:
        normalize: "min" divides by min(K, |relevant|) (recommender convention: a
            perfect list scores 1); "relevant" divides by |relevant| (TREC / ranx).

    Returns:
        shape (n_users,); NaN for users with nothing relevant.
    """
    hits, n_rel = _prep(ranked, relevant, k)
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    prec = np.cumsum(hits, axis=1) / ranks
    num = (prec * hits).sum(axis=1)
    if normalize == "min":
        den = np.minimum(n_rel, k)
    elif normalize == "relevant":
        den = n_rel
    else:
        raise ValueError("normalize must be 'min' or 'relevant'")
    return _safe_div(num, den)


def reciprocal_rank(ranked, relevant, k: int | None = None) -> np.ndarray:
    """1 / rank of the first relevant item within the top K (whole list if k is None);
    0 when none is there. Its mean over users is MRR. Shape (n_users,)."""
    gains = hit_gains(ranked, relevant)
    if k is not None:
        gains = _cut(gains, k)
    hits = gains > 0
    any_hit = hits.any(axis=1)
    first = np.argmax(hits, axis=1)
    return np.where(any_hit, 1.0 / (first + 1.0), 0.0)


ACCURACY_METRICS = ("precision", "recall", "recall_capped", "ndcg", "ndcg_graded", "hr", "map", "mrr")


def ranking_metrics(ranked, relevant, ks: Sequence[int], metrics: Sequence[str] = ACCURACY_METRICS,
                    graded_gain: str = "linear") -> dict[str, np.ndarray]:
    """Several accuracy metrics at several cut-offs in one pass (the hit lookup is done once).

    Args:
        ranked: item indices, shape (n_users, L), -1 = empty slot.
        relevant: see the module docstring.
        ks: cut-offs.
        metrics: names from ACCURACY_METRICS: "precision", "recall", "recall_capped"
            (recall normalised by min(K, |relevant|)), "ndcg" (binary), "ndcg_graded",
            "hr", "map" (AP@K normalised by min(K, |relevant|)), "mrr".

    Returns:
        "name@K" -> per-user values, shape (n_users,). Equal to the single functions.
    """
    unknown = set(metrics) - set(ACCURACY_METRICS)
    if unknown:
        raise ValueError(f"unknown ranking metrics {sorted(unknown)}; choose from {ACCURACY_METRICS}")
    rel = relevance_matrix(relevant)
    gains = hit_gains(ranked, rel)
    n_rel = np.diff(rel.indptr).astype(np.int64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        g = _cut(gains, k)
        hits = (g > 0).astype(np.float64)
        n_hits = hits.sum(axis=1)
        for name in metrics:
            key = f"{name}@{k}"
            if name == "precision":
                out[key] = n_hits / k
            elif name == "recall":
                out[key] = _safe_div(n_hits, n_rel)
            elif name == "recall_capped":
                out[key] = _safe_div(n_hits, np.minimum(n_rel, k))
            elif name == "hr":
                out[key] = (n_hits > 0).astype(np.float64)
            elif name == "map":
                ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
                out[key] = _safe_div((np.cumsum(hits, axis=1) / ranks * hits).sum(axis=1), np.minimum(n_rel, k))
            elif name == "mrr":
                first = np.argmax(hits > 0, axis=1)
                out[key] = np.where(n_hits > 0, 1.0 / (first + 1.0), 0.0)
            elif name == "ndcg":
                disc = _discounts(k)
                cum = np.concatenate([[0.0], np.cumsum(disc)])
                out[key] = _safe_div(hits @ disc[: hits.shape[1]], cum[np.minimum(n_rel, k)])
            elif name == "ndcg_graded":
                out[key] = ndcg_at_k(ranked, rel, k, graded=True, gain=graded_gain)
    return out


# --------------------------------------------------------------------------------------
# beyond accuracy


def _valid_items(ranked, k: int) -> np.ndarray:
    arr = _cut(as_ranked(ranked), k)
    return arr[arr >= 0]


def recommendation_counts(ranked, n_items: int, k: int) -> np.ndarray:
    """How often each item appears in the top K lists, shape (n_items,)."""
    items = _valid_items(ranked, k)
    if items.size and items.max() >= n_items:
        raise ValueError("ranked holds an item index >= n_items")
    return np.bincount(items, minlength=n_items)


def catalog_coverage(ranked, n_items: int, k: int) -> float:
    """Share of the catalog (n_items) that appears in at least one top-K list, in [0, 1]."""
    if n_items <= 0:
        raise ValueError("n_items must be positive")
    return float((recommendation_counts(ranked, n_items, k) > 0).sum() / n_items)


def gini_index(ranked, n_items: int, k: int) -> float:
    """Gini coefficient of how often each catalog item is recommended in the top K.

    0 = every item recommended equally often; close to 1 = a few items take all
    recommendations (maximum 1 - 1/n_items). Items never recommended count as 0.
    NaN when nothing is recommended.
    """
    counts = np.sort(recommendation_counts(ranked, n_items, k)).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    n = len(counts)
    i = np.arange(1, n + 1, dtype=np.float64)
    return float((2.0 * (i * counts).sum()) / (n * total) - (n + 1.0) / n)


def intra_list_diversity(ranked, item_features: np.ndarray, k: int, chunk: int = 4096) -> np.ndarray:
    """Mean pairwise cosine distance (1 - cosine similarity) between the items of each
    top-K list, by item features (e.g. the genre multi-hot matrix, or item embeddings).

    Args:
        item_features: shape (n_items, d), row i describes item index i. An all-zero
            row (e.g. an item with no genre) has distance 1 to every item.

    Returns:
        shape (n_users,); NaN for lists with fewer than two items.
    """
    arr = _cut(as_ranked(ranked), k)
    feats = np.asarray(item_features, dtype=np.float64)
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    unit = feats / np.where(norms > 0, norms, 1.0)
    out = np.empty(arr.shape[0], dtype=np.float64)
    for s in range(0, arr.shape[0], chunk):
        block = arr[s : s + chunk]
        valid = block >= 0
        emb = unit[np.where(valid, block, 0)] * valid[..., None]
        sim = np.einsum("nkd,njd->nkj", emb, emb)
        pair = valid[:, :, None] & valid[:, None, :]
        kk = block.shape[1]
        pair &= ~np.eye(kk, dtype=bool)[None]
        m = valid.sum(axis=1).astype(np.float64)
        dist = ((1.0 - sim) * pair).sum(axis=(1, 2))
        out[s : s + chunk] = _safe_div(dist, m * (m - 1))
    return out


def calibration_kl(ranked, history, genre_matrix: np.ndarray, k: int, alpha: float = 0.01) -> np.ndarray:
    """Miscalibration of each top-K list (Steck, RecSys 2018): KL(p || q~) between the genre
    distribution p of the user's history and that of the list, q, smoothed as
    q~ = (1 - alpha) q + alpha p (the paper's alpha = 0.01). 0 = the list's genres are in
    the history's proportions; log(1 / alpha) (about 4.6) at most. Lower is better.

    A movie spreads one unit over its genres; a set's distribution is the normalised sum
    (movies without a genre add nothing; a list without any genre has q = 0).

    Args:
        ranked: item indices, shape (n_users, L), -1 = empty slot.
        history: each user's history (e.g. training items), same row order as `ranked`:
            a users x items sparse matrix (non-zeros count, values ignored) or a sequence
            of item-index collections.
        genre_matrix: multi-hot genres, shape (n_items, n_genres).
        alpha: smoothing in (0, 1].

    Returns:
        shape (n_users,); NaN for an empty list, or a history without any genre.
    """
    arr = _cut(as_ranked(ranked), k)
    genres = np.asarray(genre_matrix, dtype=np.float64)
    n_items = genres.shape[0]
    if not 0 < alpha <= 1:
        raise ValueError("alpha must lie in (0, 1]")
    hist = relevance_matrix(history, n_items)
    if hist.shape[0] != arr.shape[0]:
        raise ValueError(f"ranked has {arr.shape[0]} rows but history has {hist.shape[0]}")
    if genres.ndim != 2 or genres.shape[1] == 0:
        return np.full(arr.shape[0], np.nan)
    counts = genres.sum(axis=1, keepdims=True)
    spread = np.divide(genres, counts, out=np.zeros_like(genres), where=counts > 0)  # (n_items, g)
    hist = sp.csr_matrix((np.ones_like(hist.data), hist.indices, hist.indptr), shape=(hist.shape[0], n_items))
    p_mass = np.asarray(hist @ spread)
    valid = arr >= 0
    q_mass = (spread[np.where(valid, arr, 0)] * valid[..., None]).sum(axis=1)
    p_total = p_mass.sum(axis=1, keepdims=True)
    q_total = q_mass.sum(axis=1, keepdims=True)
    p = np.divide(p_mass, p_total, out=np.zeros_like(p_mass), where=p_total > 0)
    q = np.divide(q_mass, q_total, out=np.zeros_like(q_mass), where=q_total > 0)
    smoothed = (1.0 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(p > 0, smoothed, 1.0)), 0.0)
    out = terms.sum(axis=1)
    return np.where((p_total[:, 0] > 0) & valid.any(axis=1), out, np.nan)


def item_self_information(item_counts: np.ndarray, n_users: int) -> np.ndarray:
    """-log2 p_i with p_i = max(count_i, 1) / n_users: the surprise of recommending item i
    (count_i = training users who interacted with it). Shape (n_items,)."""
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0)
    p = np.minimum(counts / max(n_users, 1), 1.0)
    return -np.log2(p)


def novelty(ranked, item_counts: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """Mean self-information (bits) of the items in each top-K list; higher = less
    popular items. See `item_self_information`. Shape (n_users,); NaN for empty lists."""
    arr = _cut(as_ranked(ranked), k)
    info = item_self_information(item_counts, n_users)
    valid = arr >= 0
    total = np.where(valid, info[np.where(valid, arr, 0)], 0.0).sum(axis=1)
    return _safe_div(total, valid.sum(axis=1))


def long_tail_mask(item_counts: np.ndarray, head_fraction: float = 0.2) -> np.ndarray:
    """True for long-tail items: all but the `head_fraction` most popular items
    (popularity = training count; ties broken by item index). Shape (n_items,)."""
    counts = np.asarray(item_counts)
    n_head = int(round(len(counts) * head_fraction))
    order = np.argsort(-counts, kind="stable")
    tail = np.ones(len(counts), dtype=bool)
    tail[order[:n_head]] = False
    return tail


def long_tail_share(ranked, item_counts: np.ndarray, k: int, head_fraction: float = 0.2) -> np.ndarray:
    """Share of each top-K list that lies in the long tail (see `long_tail_mask`).
    Shape (n_users,); NaN for empty lists."""
    arr = _cut(as_ranked(ranked), k)
    tail = long_tail_mask(item_counts, head_fraction)
    valid = arr >= 0
    n_tail = np.where(valid, tail[np.where(valid, arr, 0)], False).sum(axis=1)
    return _safe_div(n_tail.astype(np.float64), valid.sum(axis=1))


__all__ = [
    "rmse",
    "mae",
    "as_ranked",
    "relevance_matrix",
    "hit_gains",
    "n_relevant",
    "precision_at_k",
    "recall_at_k",
    "hit_rate_at_k",
    "ndcg_at_k",
    "average_precision_at_k",
    "reciprocal_rank",
    "ACCURACY_METRICS",
    "ranking_metrics",
    "recommendation_counts",
    "catalog_coverage",
    "gini_index",
    "intra_list_diversity",
    "calibration_kl",
    "item_self_information",
    "novelty",
    "long_tail_mask",
    "long_tail_share",
]

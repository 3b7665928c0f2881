"""Evaluate a fitted model on a test Dataset: per-user metric frames and summaries.

Ranking evaluation is full ranking over the whole catalog by default, with each user's
training items removed from the candidates (`exclude_train=True`). Pass a boolean item
mask as `candidates` to restrict every user to the same items, or a users x items
boolean sparse matrix (e.g. from `protocols.sample_negatives`) for per-user candidate
sets. Rankings are computed once at max(ks) and cut for smaller K.

A test user is evaluated when at least one of their test interactions is relevant
(rating >= `relevance_threshold`, or any interaction when the threshold is None).

With a re-ranker (`rerank`, see `movierec.rerank`), each user's top `rerank.pool(max(ks))`
is taken from the model and re-ranked down to max(ks) before any metric is computed, with
the user's training items as their history (calibration) and the model's movie vectors
(MMR's similarity), as the answer layer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import CapabilityError, ConfigError
from movierec.evaluation import metrics as M
from movierec.ranking import SCORE_CHUNK_ELEMENTS, top_k
from movierec.rerank import Reranker, RerankInput

#: per-user beyond-accuracy metrics (means over users in the summary)
PER_USER_BEYOND = ("novelty", "diversity_genre", "diversity_emb", "long_tail", "calibration_kl")
#: per-user metrics where lower is better (significance's "better" is a lower mean)
LOWER_IS_BETTER = ("calibration_kl",)
#: catalog-level metrics (one number per model and K)
CATALOG_METRICS = ("coverage", "gini")
ALL_METRICS = M.ACCURACY_METRICS + PER_USER_BEYOND + CATALOG_METRICS
DEFAULT_METRICS = ("precision", "recall", "ndcg", "hr", "map", "mrr",
                   "coverage", "gini", "novelty", "diversity_genre", "calibration_kl", "long_tail")
#: training-history lengths separating cold | warm | heavy users
DEFAULT_STRATA = (10, 100)
#: (user, movie) pairs predicted at once by `evaluate_ratings`, so a test part of millions of
#: ratings (25M ratings hold 5M test ratings) never meets a model's per-call temporaries at once
PREDICT_CHUNK_PAIRS = 1_000_000


@dataclass
class RankingResult:
    """What `evaluate_ranking` found.

    Attributes:
        per_user: one row per evaluated test user; index = raw user ID ("user");
            columns "metric@K" (e.g. "ndcg@10"), "mrr" (reciprocal rank within the top
            max(ks)), "n_train" (training-history length), "n_relevant", "stratum".
        summary: "metric@K" -> mean over users (NaN-skipping), plus catalog metrics
            "coverage@K" and "gini@K" and "mrr".
        recommendations: item indices, shape (n_eval_users, max(ks)), rows in the
            order of `per_user`; -1 = empty slot.
        user_idx: user indices of the rows, shape (n_eval_users,).
        ks: the cut-offs.
        info: counts (test users, skipped users), threshold, candidate mode.
    """

    per_user: pd.DataFrame
    summary: dict[str, float]
    recommendations: np.ndarray
    user_idx: np.ndarray
    ks: tuple[int, ...]
    info: dict = field(default_factory=dict)

    def metric_columns(self) -> list[str]:
        """Per-user metric columns (everything but n_train, n_relevant, stratum)."""
        return [c for c in self.per_user.columns if c not in ("n_train", "n_relevant", "stratum")]

    def by_stratum(self) -> pd.DataFrame:
        """Mean of every per-user metric per user stratum (rows), with a user count."""
        frame = self.per_user.groupby("stratum", observed=True)[self.metric_columns()].mean()
        frame.insert(0, "n_users", self.per_user.groupby("stratum", observed=True).size())
        return frame


def _check_ks(ks) -> tuple[int, ...]:
    if isinstance(ks, (int, np.integer)):
        ks = (int(ks),)
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise ConfigError(f"Cut-offs K must be positive whole numbers, got {ks!r}.")
    return tuple(sorted(set(ks)))


def relevant_matrix(test: Dataset, relevance_threshold: float | None = None) -> sp.csr_matrix:
    """Relevant test interactions as users x items CSR with the rating as gain.

    A rating of 0 (implicit data) is stored as gain 1. Repeated (user, item) pairs keep
    the highest rating.
    """
    keep = np.ones(test.n_ratings, dtype=bool) if relevance_threshold is None else test.rating >= relevance_threshold
    u = test.user_idx[keep].astype(np.int64)
    i = test.item_idx[keep].astype(np.int64)
    r = test.rating[keep].astype(np.float64)
    r = np.where(r > 0, r, 1.0)
    if len(u):
        key = u * test.n_items + i
        order = np.lexsort((-r, key))
        first = np.concatenate([[True], key[order][1:] != key[order][:-1]])
        sel = order[first]
        u, i, r = u[sel], i[sel], r[sel]
    m = sp.csr_matrix((r, (u, i)), shape=(test.n_users, test.n_items))
    m.sort_indices()
    return m


def _check_compatible(model, train: Dataset, test: Dataset) -> None:
    model.check_is_fitted()
    if len(model.items_) != train.n_items or len(model.users_) != train.n_users:
        raise ConfigError(
            "The model was fitted on other data than this split (its user/movie ID maps differ); "
            "fit it on this split's train part."
        )
    if train.n_items != test.n_items or train.n_users != test.n_users:
        raise ConfigError("train and test must be parts of the same Dataset (their ID maps differ).")


def _rank_per_user_candidates(model, users: np.ndarray, k: int, cand: sp.csr_matrix,
                              exclude: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k among each user's own candidate set, scored in memory-bounded chunks:
    (indices, scores), shape (n, min(k, n_items)); -1 and -inf in empty slots."""
    n_items = cand.shape[1]
    kk = min(k, n_items)
    out = np.full((len(users), kk), -1, dtype=np.int64)
    out_scores = np.full((len(users), kk), -np.inf, dtype=np.float32)
    chunk = max(1, SCORE_CHUNK_ELEMENTS // max(n_items, 1))
    for s in range(0, len(users), chunk):
        rows = users[s : s + chunk]
        scores = np.array(model.score_indices(rows), dtype=np.float32)
        allowed = cand[rows].toarray().astype(bool)
        if exclude is not None:
            r, c = exclude[rows].nonzero()
            allowed[r, c] = False
        scores[~allowed] = -np.inf
        idx, val = top_k(scores, kk)
        out[s : s + len(rows)] = np.where(np.isfinite(val), idx, -1)
        out_scores[s : s + len(rows)] = val
    return out, out_scores


def _strata(n_train: np.ndarray, edges: Sequence[int]) -> pd.Categorical:
    lo, hi = edges
    labels = np.where(n_train < lo, "cold", np.where(n_train < hi, "warm", "heavy"))
    return pd.Categorical(labels, categories=["cold", "warm", "heavy"])


def item_vectors(model) -> np.ndarray | None:
    """Movie vectors of a fitted model, shape (n_items, d), through its declared API:
    the vectors `similar_items` compares (models declaring similar_items), else the item
    side of `embeddings()` (models declaring embeddings); None when it declares neither
    (or computes similarities without vectors)."""
    vectors = model.item_vectors()
    if vectors is not None:
        return vectors
    if model.capabilities.embeddings:
        return model.embeddings().items
    return None


def unit_rows(vectors: np.ndarray | None) -> np.ndarray | None:
    """Rows scaled to unit length (zero rows stay zero), float32; None stays None."""
    if vectors is None:
        return None
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)


def rerank_lists(reranker: Reranker, idx: np.ndarray, scores: np.ndarray, k: int, history: sp.csr_matrix,
                 users: np.ndarray, genre_matrix: np.ndarray, vectors: np.ndarray | None) -> np.ndarray:
    """Each user's candidate list re-ranked down to `k`.

    Args:
        reranker: see `movierec.rerank`.
        idx, scores: candidate item indices and scores, best first, shape (n, c); -1 / -inf
            in empty slots.
        k: list length kept.
        history: users x items matrix of every user's history (rows: user indices).
        users: the user index of each row, shape (n,).
        genre_matrix: multi-hot genres, shape (n_items, n_genres).
        vectors: unit movie vectors, shape (n_items, d), or None.

    Returns:
        item indices, shape (n, k), -1 in empty slots.
    """
    out = np.full((len(idx), k), -1, dtype=np.int64)
    for row, u in enumerate(users.tolist()):
        keep = idx[row] >= 0
        cand, val = idx[row][keep], scores[row][keep]
        chosen = np.asarray(reranker.rerank(RerankInput(
            item_idx=cand, scores=val, k=k, history_idx=history.indices[history.indptr[u]:history.indptr[u + 1]],
            genre_matrix=genre_matrix, item_vectors=vectors)), dtype=np.int64)
        out[row, : len(chosen)] = cand[chosen]
    return out


def evaluate_ranking(
    model,
    train: Dataset,
    test: Dataset,
    ks: Sequence[int] | int = (10,),
    metrics: Sequence[str] | None = None,
    relevance_threshold: float | None = None,
    exclude_train: bool = True,
    candidates=None,
    strata: Sequence[int] = DEFAULT_STRATA,
    head_fraction: float = 0.2,
    rerank: Reranker | None = None,
) -> RankingResult:
    """Top-K ranking quality of a fitted model for every test user.

    Args:
        model: a fitted Recommender (fitted on `train`, or on a part of the same Dataset).
        train: interactions known before the test period: they are excluded from the
            candidates (when `exclude_train`), define history length (strata) and item
            popularity (novelty, long tail). Pass `split.train_full()` to also exclude
            validation interactions.
        test: held-out interactions, same Dataset (same ID maps).
        ks: cut-offs, e.g. (10, 20).
        metrics: names from ALL_METRICS (default DEFAULT_METRICS). Accuracy: precision,
            recall, recall_capped, ndcg, ndcg_graded, hr, map, mrr; beyond accuracy:
            novelty, diversity_genre, diversity_emb (needs a model that declares
            `similar_items` or `embeddings`; NaN with a note in `info["notes"]` otherwise),
            long_tail, coverage, gini, calibration_kl (genre miscalibration against the
            user's training history; NaN without genres). See `movierec.evaluation.metrics`
            for definitions.
        relevance_threshold: test ratings >= this are relevant; None = all test items.
        exclude_train: remove each user's training items from their candidates.
        candidates: None (all items), a boolean mask over item indices (n_items,)
            shared by all users, or a users x items boolean sparse matrix of per-user
            candidate sets (sampled-negative evaluation).
        strata: two history lengths (lo, hi): cold < lo <= warm < hi <= heavy.
        head_fraction: share of most popular items that is not "long tail".
        rerank: a re-ranker (`movierec.rerank.parse_rerank`): every list is the re-ranked
            top `rerank.pool(max(ks))` of the model; None: the model's own lists.

    Returns:
        RankingResult (per-user frame, summary, recommendations).
    """
    ks = _check_ks(ks)
    metrics = tuple(DEFAULT_METRICS if metrics is None else metrics)
    unknown = sorted(set(metrics) - set(ALL_METRICS))
    if unknown:
        raise ConfigError(f"Unknown metric(s) {', '.join(unknown)}; choose from: {', '.join(ALL_METRICS)}.")
    _check_compatible(model, train, test)
    max_k = max(ks)

    rel_all = relevant_matrix(test, relevance_threshold)
    n_rel_all = np.diff(rel_all.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    n_test_users = int(len(np.unique(test.user_idx)))
    exclude = train.to_csr("ones") if exclude_train else None

    mode = "full"
    depth = max_k if rerank is None else max(max_k, int(rerank.pool(max_k)))
    if candidates is None:
        idx, scores = model.rank_indices(users, depth, exclude, None)
    elif sp.issparse(candidates):
        cand = sp.csr_matrix(candidates, dtype=bool)
        if cand.shape != (train.n_users, train.n_items):
            raise ConfigError(f"Per-user candidates must have shape (n_users, n_items) = {(train.n_users, train.n_items)}.")
        idx, scores = _rank_per_user_candidates(model, users, depth, cand, exclude)
        mode = "per-user candidates"
    else:
        mask = np.asarray(candidates)
        if mask.dtype != bool or mask.shape != (train.n_items,):
            raise ConfigError("candidates must be a boolean mask over all movies (n_items,) or a users x items sparse matrix.")
        idx, scores = model.rank_indices(users, depth, exclude, mask)
        mode = "shared candidate mask"
    genre = getattr(train.catalog, "genre_matrix", None)
    # the same users x items matrix as `exclude`: built once (at 25M ratings each copy is ~250 MB)
    history = exclude if exclude is not None else train.to_csr("ones")
    if rerank is not None:
        genres = genre if genre is not None else np.zeros((train.n_items, 0))
        idx = rerank_lists(rerank, idx, scores, max_k, history, users, genres, unit_rows(item_vectors(model)))
    if idx.shape[1] < max_k:  # tiny catalogs: pad to max_k
        idx = np.hstack([idx, np.full((len(idx), max_k - idx.shape[1]), -1, np.int64)])

    rel = rel_all[users]
    acc = [m for m in metrics if m in M.ACCURACY_METRICS]
    cols: dict[str, np.ndarray] = {}
    if acc:
        cols.update(M.ranking_metrics(idx, rel, ks, acc))
    item_counts = train.item_counts()
    n_train_users = int((train.user_counts() > 0).sum())
    notes: list[str] = []
    emb = item_vectors(model) if "diversity_emb" in metrics else None
    if "diversity_emb" in metrics and emb is None:
        notes.append(f"diversity_emb skipped: model {model.name!r} has no movie vectors "
                     "(it declares neither vector-based similar_items nor embeddings).")
    for k in ks:
        if "novelty" in metrics:
            cols[f"novelty@{k}"] = M.novelty(idx, item_counts, n_train_users, k)
        if "diversity_genre" in metrics:
            if genre is not None and genre.shape[1] > 0:
                cols[f"diversity_genre@{k}"] = M.intra_list_diversity(idx, genre, k)
            else:
                cols[f"diversity_genre@{k}"] = np.full(len(users), np.nan)
        if "diversity_emb" in metrics:
            if emb is not None:
                cols[f"diversity_emb@{k}"] = M.intra_list_diversity(idx, np.asarray(emb), k)
            else:
                cols[f"diversity_emb@{k}"] = np.full(len(users), np.nan)
        if "long_tail" in metrics:
            cols[f"long_tail@{k}"] = M.long_tail_share(idx, item_counts, k, head_fraction)
        if "calibration_kl" in metrics:
            if genre is not None and genre.shape[1] > 0:
                cols[f"calibration_kl@{k}"] = M.calibration_kl(idx, history[users], genre, k)
            else:
                cols[f"calibration_kl@{k}"] = np.full(len(users), np.nan)
    if "mrr" in metrics:
        cols["mrr"] = cols[f"mrr@{max_k}"]

    n_train = train.user_counts()[users].astype(np.int64)
    per_user = pd.DataFrame(cols, index=pd.Index(train.users.raw(users), name="user"))
    per_user["n_train"] = n_train
    per_user["n_relevant"] = n_rel_all[users].astype(np.int64)
    per_user["stratum"] = _strata(n_train, strata)

    summary: dict[str, float] = {}
    for c in cols:
        vals = per_user[c].to_numpy(dtype=np.float64)
        summary[c] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    for k in ks:
        if "coverage" in metrics:
            summary[f"coverage@{k}"] = M.catalog_coverage(idx, train.n_items, k)
        if "gini" in metrics:
            summary[f"gini@{k}"] = M.gini_index(idx, train.n_items, k)
    info = {
        "n_test_users": n_test_users,
        "n_evaluated_users": int(len(users)),
        "n_users_without_relevant": int(n_test_users - len(users)),
        "relevance_threshold": relevance_threshold,
        "exclude_train": exclude_train,
        "candidates": mode,
        "ks": list(ks),
        "notes": notes,
        "rerank": None if rerank is None else str(rerank),
    }
    return RankingResult(per_user=per_user, summary=summary, recommendations=idx, user_idx=users, ks=ks, info=info)


def evaluate_ratings(model, test: Dataset) -> dict:
    """RMSE and MAE of a rating model's predictions for the test interactions.

    Returns:
        {"rmse": float, "mae": float, "n": number of test ratings}.

    Raises:
        CapabilityError: the model does not predict ratings.
        ConfigError: the test set is empty or from other data.
    """
    if not model.capabilities.predicts_ratings:
        raise CapabilityError(f"Model {model.name!r} ranks movies; it does not predict ratings (no RMSE).")
    model.check_is_fitted()
    if test.n_ratings == 0:
        raise ConfigError("The test set is empty; nothing to evaluate.")
    if len(model.items_) != test.n_items or len(model.users_) != test.n_users:
        raise ConfigError("The model was fitted on other data than this test set (ID maps differ).")
    pred = np.empty(test.n_ratings, dtype=np.float64)
    for start in range(0, test.n_ratings, PREDICT_CHUNK_PAIRS):  # bounded memory for millions of test ratings
        stop = start + PREDICT_CHUNK_PAIRS
        pred[start:stop] = model.predict_indices(test.user_idx[start:stop], test.item_idx[start:stop])
    truth = test.rating.astype(np.float64)
    return {"rmse": M.rmse(pred, truth), "mae": M.mae(pred, truth), "n": int(test.n_ratings)}


__all__ = [
    "RankingResult",
    "evaluate_ranking",
    "evaluate_ratings",
    "relevant_matrix",
    "ALL_METRICS",
    "DEFAULT_METRICS",
    "item_vectors",
    "unit_rows",
    "rerank_lists",
    "DEFAULT_STRATA",
]


# --------------------------------------------------------------------------------------
# comparing several models on one split

#: names of the non-personalised baselines (the reference of significance tests)
BASELINES = ("random", "pop", "pop-recent")


@dataclass
class Comparison:
    """Several models evaluated on exactly the same split and candidates.

    Attributes:
        results: model name -> RankingResult.
        reference: the model every other is tested against (the best baseline).
        primary: the metric used to choose the reference, e.g. "ndcg@10".
        significance: `stats.compare_to_reference` frame.
        ci: model -> metric -> [low, high] (bootstrap 95%).
        info: protocol, split summary, relevance threshold, ks, timings.
    """

    results: dict[str, RankingResult]
    reference: str
    primary: str
    significance: pd.DataFrame
    ci: dict[str, dict[str, list[float]]]
    info: dict = field(default_factory=dict)

    def summary_frame(self) -> pd.DataFrame:
        """models (rows) x metrics (columns) of mean values."""
        return pd.DataFrame({name: r.summary for name, r in self.results.items()}).T

    def to_json(self) -> dict:
        """One JSON-ready object: {"models": {name: {"ndcg@10": ...}}, "protocol", "split",
        "significance", "ci", ...}."""
        sig = self.significance.to_dict(orient="records")
        return _json_clean({
            "models": {name: dict(r.summary) for name, r in self.results.items()},
            "protocol": self.info.get("protocol"),
            "split": self.info.get("split", {}),
            "ks": self.info.get("ks"),
            "relevance_threshold": self.info.get("relevance_threshold"),
            "candidates": self.info.get("candidates", "full"),
            "rerank": self.info.get("rerank"),
            "evaluated_users": {name: r.info["n_evaluated_users"] for name, r in self.results.items()},
            "significance": {"reference": self.reference, "primary": self.primary,
                             "tests": ["paired t-test", "Wilcoxon signed-rank"], "correction": "holm",
                             "alpha": self.info.get("alpha", 0.05), "comparisons": sig},
            "ci": {"level": 0.95, "method": "percentile bootstrap", "seed": self.info.get("seed", 0),
                   "values": self.ci},
            "timing": self.info.get("timing", {}),
            "models_config": self.info.get("models_config", {}),
            "notes": self.info.get("notes", []),
            **({"rerank_curves": self.info["rerank_curves"]} if self.info.get("rerank_curves") else {}),
        })


def _json_clean(obj):
    """Plain Python values for JSON: numpy scalars unwrapped, NaN/inf -> None."""
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_json_clean(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def compare_models(models: dict, train: Dataset, test: Dataset, ks: Sequence[int] | int = (10,),
                   metrics: Sequence[str] | None = None, relevance_threshold: float | None = None,
                   candidates=None, seed: int = 0, alpha: float = 0.05, n_resamples: int = 1000,
                   info: dict | None = None, rerank: Reranker | None = None) -> Comparison:
    """Evaluate fitted models on the same data and test them against the best baseline.

    Args:
        models: name -> fitted Recommender (all fitted on parts of the same Dataset).
        train, test, ks, metrics, relevance_threshold, candidates: as `evaluate_ranking`;
            identical for every model.
        seed: bootstrap seed.
        alpha: significance level after Holm correction.
        info: extra facts stored in `Comparison.info` (protocol, split summary...).
        rerank: a re-ranker applied to every model's lists (see `evaluate_ranking`).

    Returns:
        Comparison. The reference is the best of the baselines present (by NDCG at the
        smallest K, or the first metric computed), else the best model overall.
    """
    import time

    from movierec.evaluation import stats

    if not models:
        raise ConfigError("Give at least one model to compare.")
    ks = _check_ks(ks)
    results: dict[str, RankingResult] = {}
    timing: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        results[name] = evaluate_ranking(model, train, test, ks=ks, metrics=metrics,
                                         relevance_threshold=relevance_threshold, candidates=candidates,
                                         rerank=rerank)
        timing[name] = {"eval_s": time.perf_counter() - t0}
    first = next(iter(results.values()))
    cols = [c for c in first.metric_columns() if c != "mrr"]
    primary = f"ndcg@{ks[0]}" if f"ndcg@{ks[0]}" in cols else cols[0]
    pool = [n for n in results if n in BASELINES] or list(results)
    reference = max(pool, key=lambda n: np.nan_to_num(results[n].summary.get(primary, np.nan), nan=-np.inf))
    per_user = {n: r.per_user for n, r in results.items()}
    significance = stats.compare_to_reference(per_user, reference, cols, alpha=alpha)
    if not significance.empty:
        lower = significance["metric"].str.split("@").str[0].isin(LOWER_IS_BETTER)
        significance.loc[lower, "better"] = significance.loc[lower, "diff"] < 0
    ci = stats.confidence_intervals(per_user, cols, n_resamples=n_resamples, seed=seed)
    notes = [n for r in results.values() for n in r.info.get("notes", [])]
    meta = {"ks": list(ks), "relevance_threshold": relevance_threshold, "alpha": alpha, "seed": seed,
            "candidates": first.info["candidates"], "rerank": None if rerank is None else str(rerank),
            **(info or {})}
    meta["notes"] = list(meta.get("notes", [])) + notes
    meta.setdefault("timing", {})
    for n, t in timing.items():
        meta["timing"].setdefault(n, {}).update(t)
    return Comparison(results=results, reference=reference, primary=primary, significance=significance, ci=ci, info=meta)


__all__ += ["BASELINES", "Comparison", "compare_models"]

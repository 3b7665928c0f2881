"""Evaluation speed: movierec's full-ranking evaluation vs ranx and implicit, same run.

What is measured (the evaluation, not a model): a random-factor model (users x dim,
items x dim; score = dot product) ranks every ML-100K item for every test user of a
seeded 80/20 random split, training items excluded, K = 10.

1. movierec `evaluate_ranking` end to end (scoring + exclusion + top-K + all accuracy
   metrics + beyond-accuracy metrics), and implicit's `ranking_metrics_at_k` (which
   scores and ranks itself from the same factors).
2. ranx against movierec doing the *same work*: both start from the same top-10 lists
   (users x 10 item indices) and the same test interactions, build their own inputs
   (ranx: Run + Qrels; movierec: the relevance matrix) and compute the same 6 accuracy
   metrics. The headline ratio is ranx (build + evaluate) / movierec (build + metrics),
   each timed as one call (numba JIT warmed up first); the parts are timed separately
   too. Values are checked to agree.
3. Scale: 100k users x 50k items (synthetic factors, 20 training items per user),
   evaluated in chunks; time and peak traced memory of the evaluation.

Writes its figures to benchmarks/results/eval_speed.json (`--out` elsewhere), which
`benchmarks/render.py` turns into BENCHMARKS.md's "Evaluation speed" section.

Run: .venv/bin/python benchmarks/eval_speed.py [--skip-scale] [--scale-users N --scale-items M] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

os.environ.setdefault("MOVIEREC_MIRROR", str(__import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "datasets"))

from movierec.data import load_movielens  # noqa: E402
from movierec.data.dataset import Dataset  # noqa: E402
from movierec.data.idmap import IdMap  # noqa: E402
from movierec.data.split import random_split  # noqa: E402
from movierec.evaluation import metrics as M  # noqa: E402
from movierec.evaluation.runner import evaluate_ranking, relevant_matrix  # noqa: E402
from movierec.models.base import Capabilities, Recommender  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import write_results  # noqa: E402


class RandomFactors(Recommender):
    """A factor model with random (seeded) factors: stands in for any trained factor model."""

    name = "random-factors"
    capabilities = Capabilities(embeddings=True, similar_items=True)

    def __init__(self, dim: int = 64, seed: int = 0):
        self.dim = dim
        self.seed = seed

    def _fit(self, train, validation):
        rng = np.random.default_rng(self.seed)
        pop = np.log1p(train.item_counts()).astype(np.float32)
        self.user_embeddings_ = rng.normal(size=(train.n_users, self.dim)).astype(np.float32)
        self.user_embeddings_[:, 0] = 3.0  # a popularity direction so metrics are not ~0
        self.item_embeddings_ = rng.normal(size=(train.n_items, self.dim)).astype(np.float32)
        self.item_embeddings_[:, 0] = pop

    def _score(self, user_idx):
        return self.user_embeddings_[user_idx] @ self.item_embeddings_.T

    def _embeddings(self):
        return self.user_embeddings_, self.item_embeddings_

    def _similarity_vectors(self):
        return self.item_embeddings_

    def _state(self):
        return {"user_embeddings": self.user_embeddings_, "item_embeddings": self.item_embeddings_}

    def _set_state(self, state):
        self.user_embeddings_, self.item_embeddings_ = state["user_embeddings"], state["item_embeddings"]


def best_of(fn, repeats: int = 5):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def ml100k_part(repeats: int) -> dict:
    """The ML-100K comparison; returns its figures (times in ms, see the module docstring)."""
    ds = load_movielens("ml-100k")
    split = random_split(ds, test_fraction=0.2, seed=42)
    train, test = split.train, split.test
    model = RandomFactors().fit(train)
    k = 10
    acc = ("precision", "recall", "ndcg", "hr", "map", "mrr")
    evaluate_ranking(model, train, test, ks=(k,))  # warm-up
    t_full, res = best_of(lambda: evaluate_ranking(model, train, test, ks=(k,)), repeats)
    t_acc, _ = best_of(lambda: evaluate_ranking(model, train, test, ks=(k,), metrics=acc), repeats)
    users, recs = res.user_idx, res.recommendations
    # movierec's side of the same work: its input (the relevance matrix of the evaluated
    # users, from the test interactions) and the metrics over the given top-10 lists
    t_ours_build, rel = best_of(lambda: relevant_matrix(test)[users], repeats)
    t_metrics, ours = best_of(lambda: M.ranking_metrics(recs, rel, ks=(k,), metrics=acc), repeats)
    t_ours_total, _ = best_of(
        lambda: M.ranking_metrics(recs, relevant_matrix(test)[users], ks=(k,), metrics=acc), repeats)
    ours = {n: float(np.mean(v)) for n, v in ours.items()}
    ours["map_trec@10"] = float(np.mean(M.average_precision_at_k(recs, rel, k, normalize="relevant")))
    print(f"ML-100K random 80/20 split: {len(users)} test users x {train.n_items} items, K={k}, dim=64")
    print(f"  movierec evaluate_ranking, all default metrics : {t_full * 1000:8.1f} ms (best of {repeats})")
    print(f"  movierec evaluate_ranking, accuracy only       : {t_acc * 1000:8.1f} ms")
    print(f"  movierec build relevance matrix (test users)   : {t_ours_build * 1000:8.1f} ms")
    print(f"  movierec metrics only, given the top-10 lists  : {t_metrics * 1000:8.1f} ms")
    print(f"  movierec build + metrics (one call)            : {t_ours_total * 1000:8.1f} ms")

    # ---- ranx on the very same top-10 lists and test interactions
    from ranx import Qrels, Run, evaluate

    sc = np.arange(k, 0, -1, dtype=float)
    uid = [str(u) for u in users]
    wanted = set(uid)
    test_u, test_i = test.user_idx.tolist(), test.item_idx.tolist()

    def build():
        run = Run({u: {str(i): float(s) for i, s in zip(row, sc) if i >= 0} for u, row in zip(uid, recs)})
        q: dict[str, dict[str, int]] = {}
        for u, i in zip(test_u, test_i):
            q.setdefault(str(u), {})[str(i)] = 1
        qrels = Qrels({u: q[u] for u in q if u in wanted})
        return run, qrels

    names = ["precision@10", "recall@10", "ndcg@10", "hit_rate@10", "map@10", "mrr@10"]
    run, qrels = build()
    evaluate(qrels, run, names)  # numba JIT warm-up
    t_build, (run, qrels) = best_of(build, repeats)
    t_ranx, theirs = best_of(lambda: evaluate(qrels, run, names, make_comparable=True), repeats)
    t_ranx_total, _ = best_of(lambda: evaluate(*build()[::-1], names, make_comparable=True), repeats)
    pairs = {"precision@10": "precision@10", "recall@10": "recall@10", "ndcg@10": "ndcg@10",
             "hit_rate@10": "hr@10", "map@10": "map_trec@10", "mrr@10": "mrr@10"}
    diff = max(abs(theirs[a] - ours[b]) for a, b in pairs.items())
    same_work = t_ranx_total / t_ours_total
    print(f"  ranx build Run+Qrels (same lists, same test)   : {t_build * 1000:8.1f} ms")
    print(f"  ranx evaluate (6 metrics, JIT warm)            : {t_ranx * 1000:8.1f} ms")
    print(f"  ranx build + evaluate (one call)               : {t_ranx_total * 1000:8.1f} ms")
    print(f"  ratio, same work (ranx build+evaluate / movierec build+metrics): {same_work:.1f}x")
    print(f"  ratio ranx (build+evaluate) / movierec end-to-end accuracy eval (incl. scoring): "
          f"{t_ranx_total / t_acc:.2f}x")
    print(f"  values agree with ranx: max |diff| = {diff:.2e}  "
          + "  ".join(f"{b}={ours[b]:.4f}/{theirs[a]:.4f}" for a, b in pairs.items()))
    assert diff < 1e-9, "movierec and ranx disagree"
    ms = lambda t: None if t is None else t * 1000  # noqa: E731
    figures = {
        "test_users": int(len(users)), "n_items": int(train.n_items), "k": k, "dim": model.dim, "repeats": repeats,
        "ms": {"full": ms(t_full), "accuracy": ms(t_acc), "movierec_build": ms(t_ours_build),
               "movierec_metrics": ms(t_metrics), "movierec_total": ms(t_ours_total), "ranx_build": ms(t_build),
               "ranx_evaluate": ms(t_ranx), "ranx_total": ms(t_ranx_total), "implicit": None},
        "ratios": {"ranx_vs_same_work": same_work, "ranx_vs_end_to_end": t_ranx_total / t_acc,
                   "ranx_vs_metrics_only": t_ranx_total / t_metrics, "implicit_vs_end_to_end": None},
        "values": {b: ours[b] for b in pairs.values()},
        "max_abs_diff": diff,
        "implicit": None,
    }

    # ---- implicit: scores and ranks itself from the same factors
    try:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.evaluation import ranking_metrics_at_k
    except ImportError:  # pragma: no cover
        print("  implicit not installed; skipped")
        return figures
    imp = AlternatingLeastSquares(factors=64, random_state=0)
    imp.user_factors = model.user_embeddings_
    imp.item_factors = model.item_embeddings_
    tr = train.to_csr("ones").astype(np.float32)
    te = test.to_csr("ones").astype(np.float32)
    ranking_metrics_at_k(imp, tr, te, K=k, show_progress=False)
    t_imp, got = best_of(lambda: ranking_metrics_at_k(imp, tr, te, K=k, show_progress=False), repeats)
    print(f"  implicit ranking_metrics_at_k (scores+ranks itself): {t_imp * 1000:8.1f} ms; "
          f"ratio implicit / movierec accuracy eval: {t_imp / t_acc:.2f}x")
    # implicit's "precision" is sum(hits) / sum(min(K, |relevant|)) over all users: a
    # micro-averaged capped recall, not precision@K
    hits = (M.hit_gains(recs, rel)[:, :k] > 0).sum(axis=1)
    micro_capped = float(hits.sum() / np.minimum(M.n_relevant(rel), k).sum())
    print(f"  implicit 'precision'={got['precision']:.4f} = movierec micro-averaged capped recall {micro_capped:.4f} "
          f"(true precision@10={ours['precision@10']:.4f}); implicit ndcg={got['ndcg']:.4f} vs ours {ours['ndcg@10']:.4f}")
    figures["ms"]["implicit"] = ms(t_imp)
    figures["ratios"]["implicit_vs_end_to_end"] = t_imp / t_acc
    figures["implicit"] = {"ndcg": float(got["ndcg"]), "precision": float(got["precision"]),
                           "micro_capped_recall": micro_capped}
    return figures


def scale_part(n_users: int, n_items: int, per_user: int = 20, dim: int = 32) -> dict:
    """The scale run; returns its figures."""
    rng = np.random.default_rng(0)
    n = n_users * (per_user + 2)
    u = np.repeat(np.arange(n_users, dtype=np.int32), per_user + 2)
    # Zipf-ish item popularity; duplicates within a user are harmless for the benchmark
    i = np.minimum(rng.zipf(1.3, size=n) - 1, n_items - 1).astype(np.int32)
    i = (i + rng.integers(0, n_items, size=n) * (rng.random(n) < 0.5)).astype(np.int32) % n_items
    ts = np.tile(np.arange(per_user + 2, dtype=np.int64), n_users)
    ds = Dataset("synthetic", IdMap(np.arange(n_users), kind="user"), IdMap(np.arange(n_items), kind="movie"),
                 u, i, np.ones(n, np.float32), ts)
    train, test = ds.subset(ts < per_user), ds.subset(ts >= per_user)
    model = RandomFactors(dim=dim).fit(train)
    tracemalloc.start()
    t0 = time.perf_counter()
    res = evaluate_ranking(model, train, test, ks=(10,), metrics=("precision", "recall", "ndcg", "hr", "map", "mrr", "coverage"))
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dense = n_users * n_items * 4 / 2**30
    print(f"Scale: {n_users:,} users x {n_items:,} items, {train.n_ratings:,} train / {test.n_ratings:,} test interactions")
    print(f"  movierec evaluate_ranking: {dt:.1f} s for {len(res.per_user):,} users "
          f"({len(res.per_user) / dt:,.0f} users/s); peak traced memory {peak / 2**20:,.0f} MiB "
          f"(a dense score matrix would need {dense:,.1f} GiB); ndcg@10={res.summary['ndcg@10']:.4f}")
    n_eval = len(res.per_user)
    return {"users": n_users, "evaluated_users": n_eval, "items": n_items, "train": int(train.n_ratings), "test": int(test.n_ratings),
            "dim": dim, "k": 10, "seconds": dt, "users_per_s": n_eval / dt, "peak_mib": peak / 2**20,
            "dense_gib": dense, "ndcg@10": float(res.summary["ndcg@10"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--scale-users", type=int, default=100_000)
    parser.add_argument("--scale-items", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/results/eval_speed.json)")
    args = parser.parse_args()
    figures = {"ml100k": ml100k_part(args.repeats), "scale": None}
    if not args.skip_scale:
        figures["scale"] = scale_part(args.scale_users, args.scale_items)
    print(f"results: {write_results('eval_speed', figures, args.out)}")


if __name__ == "__main__":
    main()

"""Retrieval benchmark (issue 10, item 6): one command, every figure side by side.

(a) ML-100K: fitted embedding models (als, mf-rank; two-tower when it exists). For each,
    single-query latency (p50/p99) of ONE query through `ModelIndex.recommend` (user
    encoding + search + seen filter + exact re-score) for the exact, IVF and HNSW
    indexes, and of the model's own brute-force `recommend`; batch throughput (users/s,
    all users at once) and the top-10 overlap with the model's own `recommend`.
(b) A synthetic catalog of 1,000,000 movies at dim 64, clustered (a Gaussian mixture of
    1,000 standard-normal centres, spread --noise, popularity-like log-normal norms),
    queries drawn the same way, each with 50 excluded ("seen") movies: p50/p99 single-query latency and recall@100
    against exact search for our IVF and HNSW indexes, an exact FAISS IndexFlatIP and
    NumPy matrix product + argpartition; build time, index bytes and RSS growth.

Single queries run with one thread (`movierec.retrieval.single_thread`); batches use
every core. The load average is recorded with the figures: compare runs only on a quiet
machine and on the same hardware.

Run:  .venv/bin/python benchmarks/retrieval.py            (1M movies; several minutes)
      .venv/bin/python benchmarks/retrieval.py --quick    (100k movies, fewer queries)
Writes benchmarks/results/retrieval.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MOVIEREC_MIRROR", str(ROOT.parent / "shared" / "datasets"))

import numpy as np  # noqa: E402

#: default spread of the synthetic clusters (centres are standard normal, dim 64): at 0.6 a
#: movie sits at cosine ~0.86 from its centre; larger values make the clusters overlap and
#: every approximate index work harder (see --noise)
NOISE = 0.6


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4),
            "n_queries": len(ms)}


def timed(fn, args_list, warmup: int = 20) -> dict:
    for a in args_list[:warmup]:
        fn(a)
    lat = []
    for a in args_list:
        t0 = time.perf_counter()
        fn(a)
        lat.append(time.perf_counter() - t0)
    return percentiles(lat)


# -- (a) ML-100K -----------------------------------------------------------------------
def bench_ml100k(models: list[str], rounds: int) -> dict:
    from movierec.data import load_movielens
    from movierec.experiments.train import fit_model
    from movierec.retrieval import ModelIndex, single_thread

    ds = load_movielens("ml-100k")
    out = {}
    for name in models:
        t0 = time.perf_counter()
        model = fit_model(name, ds, seed=0).model
        fit_s = time.perf_counter() - t0
        users = model.users_.raw_ids
        ref = model.recommend(users, k=10)
        queries = list(np.tile(users, rounds))
        rows = {}

        def brute(u):
            with single_thread():
                model.recommend([u], k=10)

        rows["model.recommend"] = {**timed(brute, queries), **throughput(lambda: model.recommend(users, k=10), users)}
        for kind in ("exact", "ivf", "hnsw"):
            t0 = time.perf_counter()
            mi = ModelIndex.build(model, kind)
            build_s = time.perf_counter() - t0
            got = mi.recommend(users, k=10)
            overlap = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 10
                                     for a, b in zip(ref.item_ids, got.item_ids)]))
            rows[kind] = {**timed(lambda u: mi.recommend([u], k=10), queries),
                          **throughput(lambda: mi.recommend(users, k=10), users),
                          "overlap@10": round(overlap, 4), "build_seconds": round(build_s, 3),
                          "index_bytes": mi.index.nbytes(), "params": mi.index.params,
                          "tuned": mi.index.header.get("tuned")}
        out[name] = {"fit_seconds": round(fit_s, 2), "dim": int(model.embeddings().items.shape[1]),
                     "n_users": len(users), "n_items": len(model.items_), "rows": rows}
        print(f"[ml-100k] {name}: " + ", ".join(f"{k} p99 {v['p99_ms']:.3f} ms" for k, v in rows.items()),
              file=sys.stderr)
    return out


def throughput(fn, users, repeats: int = 3) -> dict:
    best = min(_once(fn) for _ in range(repeats))
    return {"batch_users_per_s": round(len(users) / best, 1)}


def _once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- (b) synthetic catalog ---------------------------------------------------------------
def clustered(rng, centres: np.ndarray, n: int, norms: bool, noise: float) -> np.ndarray:
    """Gaussian-mixture vectors around `centres` (spread `noise`, unit length), times
    log-normal(0, 0.3) norms when `norms`."""
    x = centres[rng.integers(0, len(centres), n)] + noise * rng.standard_normal((n, centres.shape[1]), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    if norms:
        x *= rng.lognormal(0.0, 0.3, (n, 1)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def bench_synthetic(n_items: int, dim: int, n_queries: int, n_brute: int, k: int, target: float,
                    seed: int, noise: float = NOISE) -> dict:
    import faiss
    from threadpoolctl import threadpool_limits

    from movierec.retrieval import VectorIndex, single_thread

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    items = np.empty((n_items, dim), dtype=np.float32)
    for start in range(0, n_items, 100_000):
        stop = min(start + 100_000, n_items)
        items[start:stop] = clustered(rng, centres, stop - start, True, noise)
    queries = clustered(rng, centres, n_queries, False, noise)
    tune = clustered(rng, centres, 200, False, noise)
    seen = [rng.choice(n_items, 50, replace=False) for _ in range(n_queries)]
    # ground truth: exact top-k with the seen movies removed
    truth = np.empty((n_queries, k), dtype=np.int64)
    for start in range(0, n_queries, 100):
        s = queries[start:start + 100] @ items.T
        for j, ex in enumerate(seen[start:start + 100]):
            s[j, ex] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        truth[start:start + 100] = part

    def recall(found: np.ndarray) -> float:
        """recall@k of the first len(found) queries."""
        return round(float(np.mean([len(np.intersect1d(f, t)) / k for f, t in zip(found, truth)])), 4)

    rows = {}
    # NumPy matrix product + argpartition (one BLAS thread per query)
    def numpy_query(i):
        s = items @ queries[i]
        s[seen[i]] = -np.inf
        top = np.argpartition(-s, k - 1)[:k]
        return top[np.argsort(-s[top])]

    with threadpool_limits(1, "blas"):
        lat = timed(numpy_query, list(range(n_brute)), warmup=3)
    found = np.array([numpy_query(i) for i in range(min(n_brute, 50))])
    rows["numpy"] = {**lat, "recall@100": recall(found), "build_seconds": 0.0,
                     "index_bytes": int(items.nbytes), "rss_delta_bytes": 0}
    print(f"[synthetic] numpy p99 {lat['p99_ms']:.2f} ms", file=sys.stderr)

    # exact FAISS flat index (one OpenMP thread per query), filtering by over-fetch
    rss0, t0 = rss_bytes(), time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(items)
    build = time.perf_counter() - t0

    def flat_query(i):
        _, ids = flat.search(queries[i:i + 1], k + 50)
        keep = ids[0][~np.isin(ids[0], seen[i])]
        return keep[:k]

    with single_thread():
        lat = timed(flat_query, list(range(n_brute)), warmup=3)
        found = np.array([flat_query(i) for i in range(min(n_brute, 50))])
    rows["faiss-flat"] = {**lat, "recall@100": recall(found),
                          "build_seconds": round(build, 3), "index_bytes": int(faiss.serialize_index(flat).nbytes),
                          "rss_delta_bytes": rss_bytes() - rss0}
    del flat
    print(f"[synthetic] faiss-flat p99 {lat['p99_ms']:.2f} ms", file=sys.stderr)

    for kind in ("ivf", "hnsw"):
        rss0, t0 = rss_bytes(), time.perf_counter()
        index = VectorIndex.build(items, kind, target_recall=target, recall_k=k, tune_queries=tune, seed=seed)
        build = time.perf_counter() - t0
        lat = timed(lambda i: index.search(queries[i], k, exclude=[seen[i]]), list(range(n_queries)))
        found, _ = index.search(queries, k, exclude=seen)
        rows[f"ours-{kind}"] = {**lat, "recall@100": recall(found), "build_seconds": round(build, 3),
                                "index_bytes": index.nbytes(), "rss_delta_bytes": rss_bytes() - rss0,
                                "params": index.params, "tuned": index.header.get("tuned")}
        print(f"[synthetic] ours-{kind} p99 {lat['p99_ms']:.3f} ms recall {rows[f'ours-{kind}']['recall@100']}",
              file=sys.stderr)
        del index
    return {"n_items": n_items, "dim": dim, "n_centres": 1000, "noise": noise, "norms": "log-normal(0, 0.3)",
            "n_queries": n_queries, "n_queries_brute": n_brute, "k": k, "excluded_per_query": 50,
            "target_recall": target, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k movies and fewer queries")
    parser.add_argument("--items", type=int, default=None, help="synthetic catalog size (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=None, help="single queries per index (default 1000)")
    parser.add_argument("--models", default=None, help="ML-100K models (default als,mf-rank[,two-tower])")
    parser.add_argument("--target-recall", type=float, default=0.95, help="recall@100 the indexes are tuned to")
    parser.add_argument("--skip-ml100k", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--noise", type=float, default=NOISE, help="spread of the synthetic clusters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "retrieval.json")
    args = parser.parse_args()

    import faiss

    models = args.models.split(",") if args.models else (
        ["als", "mf-rank"] + (["two-tower"] if (ROOT / "src" / "movierec" / "models" / "two_tower.py").exists() else []))
    n_items = args.items or (100_000 if args.quick else 1_000_000)
    n_queries = args.queries or (200 if args.quick else 1000)
    doc = {"command": " ".join(["python", "benchmarks/retrieval.py", *sys.argv[1:]]), "quick": args.quick,
           "cpu_count": os.cpu_count(), "faiss_version": faiss.__version__, "loadavg_start": os.getloadavg()}
    if not args.skip_ml100k:
        doc["ml100k"] = bench_ml100k(models, rounds=1 if args.quick else 3)
    if not args.skip_synthetic:
        doc["synthetic"] = bench_synthetic(n_items, 64, n_queries, max(20, n_queries // 5), 100, args.target_recall,
                                           args.seed, args.noise)
    doc["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    print(json.dumps({"out": str(args.out), "loadavg": doc["loadavg_end"]}))
    for section in ("ml100k", "synthetic"):
        if section not in doc:
            continue
        blocks = doc[section].items() if section == "ml100k" else [("synthetic", doc[section])]
        for name, block in blocks:
            for row, fig in block["rows"].items():
                extra = f" recall@100 {fig['recall@100']}" if "recall@100" in fig else (
                    f" overlap@10 {fig.get('overlap@10', 1.0)} batch {fig['batch_users_per_s']}/s")
                print(f"{section:9s} {name:10s} {row:16s} p50 {fig['p50_ms']:8.3f} ms  p99 {fig['p99_ms']:8.3f} ms"
                      f"{extra}")


if __name__ == "__main__":
    main()

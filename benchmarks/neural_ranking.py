"""NeuMF vs the dot product (mf-rank) on ML-100K, beside popularity, EASE and implicit's ALS/BPR.

Protocols: leave-last-1 (every test item relevant) and last-20% per user (relevant:
rating >= 4). Models are fitted on train + validation (`Split.train_full()`); ours
early-stop on an internal holdout of it, then refit. NDCG@10 ranks every movie, training
items excluded.

Run: .venv/bin/python benchmarks/neural_ranking.py [--models neumf,mf-rank,...]
"""

from __future__ import annotations

import argparse
import time

from movierec.data import load_movielens
from movierec.data.split import leave_last_k_split
from movierec.evaluation.runner import evaluate_ranking
from movierec.experiments import build_model
from movierec.experiments.train import history_summary
from movierec.models import available

PROTOCOLS = [("leave-last-1", 1, None), ("last-20% (rating>=4)", 0.2, 4.0)]
DEFAULT_MODELS = ["pop", "ease", "als", "bpr", "mf-rank", "mf-rank-bpr", "neumf"]


def make(name: str):
    if name == "mf-rank-bpr":
        return build_model("mf-rank", {"loss": "bpr", "n_neg": 4, "lr": 0.005, "reg": 1e-3}, seed=42)
    return build_model(name, seed=42 if name in ("mf-rank", "neumf") else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n in available() or n == "mf-rank-bpr"]
    ds = load_movielens("ml-100k")
    print(f"{'protocol':24s} {'model':12s} {'NDCG@10':>8s} {'fit wall s':>10s} {'fit cpu s':>9s} {'epochs':>6s}")
    for label, k, threshold in PROTOCOLS:
        split = leave_last_k_split(ds, k)
        train = split.train_full()
        for name in names:
            model = make(name)
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(train)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            ndcg = evaluate_ranking(model, train, split.test, ks=(10,), relevance_threshold=threshold).summary["ndcg@10"]
            epochs = history_summary(model).get("best_epoch")
            print(f"{label:24s} {name:12s} {ndcg:8.4f} {wall:10.1f} {cpu:9.1f} {epochs if epochs else '':>6}", flush=True)


if __name__ == "__main__":
    main()

"""NeuMF vs the dot product (mf-rank) on ML-100K, beside popularity, EASE and implicit's ALS/BPR.

Protocols: leave-last-1 (every test item relevant) and last-20% per user (relevant:
rating >= 4). Models are fitted on train + validation (`Split.train_full()`); ours
early-stop on an internal holdout of it, then refit. NDCG@10 ranks every movie, training
items excluded.

The epochs column is the epoch count each PyTorch model kept (`best_epoch_`: the best
early-stopping epoch, which the refit then trains for); empty for the other models.

Writes its figures to benchmarks/results/neural_ranking.json (`--out` elsewhere), which
`benchmarks/render.py` turns into BENCHMARKS.md's "NeuMF vs dot product" table.

Run: .venv/bin/python benchmarks/neural_ranking.py [--models neumf,mf-rank,...] [--epochs N] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from movierec.data import load_movielens
from movierec.data.split import leave_last_k_split
from movierec.evaluation.runner import evaluate_ranking
from movierec.experiments import build_model
from movierec.experiments.train import history_summary
from movierec.models import available
from movierec.training.options import RuntimeOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import write_results  # noqa: E402

PROTOCOLS = [("leave-last-1", 1, None), ("last-20%, rating>=4 relevant", 0.2, 4.0)]
DEFAULT_MODELS = ["pop", "ease", "als", "bpr", "mf-rank", "mf-rank-bpr", "neumf"]
NEURAL = ("mf-rank", "neumf")
SEED = 42


def make(name: str, epochs: int | None = None):
    extra = {"epochs": epochs} if epochs is not None else {}
    if name == "mf-rank-bpr":
        return build_model("mf-rank", {"loss": "bpr", "n_neg": 4, "lr": 0.005, "reg": 1e-3, **extra})
    if name in NEURAL:
        return build_model(name, extra or None)
    return build_model(name, seed=None)


def epochs_of(model) -> tuple[int | None, int | None]:
    """(epochs kept, epochs run by early stopping) of a fitted model; (None, None) without training epochs."""
    summary = history_summary(model)
    best = model.best_epoch_
    best = summary.get("best_epoch") if best is None else best
    return (None if best is None else int(best)), summary.get("epochs_run")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--epochs", type=int, default=None,
                        help="maximum epochs of the PyTorch models (default: their own; small for a quick run)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/results/neural_ranking.json)")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n in available() or n == "mf-rank-bpr"]
    ds = load_movielens("ml-100k")
    rows = []
    print(f"{'protocol':30s} {'model':12s} {'NDCG@10':>8s} {'fit wall s':>10s} {'fit cpu s':>9s} {'epochs':>6s}")
    for label, k, threshold in PROTOCOLS:
        split = leave_last_k_split(ds, k)
        train = split.train_full()
        for name in names:
            model = make(name, args.epochs)
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(train, runtime=RuntimeOptions(seed=SEED))  # the torch models' seed (others ignore it)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            ndcg = evaluate_ranking(model, train, split.test, ks=(10,), relevance_threshold=threshold).summary["ndcg@10"]
            epochs, epochs_run = epochs_of(model)
            rows.append({"protocol": label, "model": name, "ndcg@10": float(ndcg), "fit_s": wall, "fit_cpu_s": cpu,
                         "epochs": epochs, "epochs_run": epochs_run})
            shown = "" if epochs is None else epochs
            print(f"{label:30s} {name:12s} {ndcg:8.4f} {wall:10.1f} {cpu:9.1f} {shown:>6}", flush=True)
    print(f"results: {write_results('neural_ranking', {'seed': 42, 'epochs': args.epochs, 'rows': rows}, args.out)}")


if __name__ == "__main__":
    main()

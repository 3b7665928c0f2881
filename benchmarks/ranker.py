"""The two-stage ranker against the best single model, NDCG@10 (quality only, no timings).

For each dataset (ML-100K, ml-latest-small) and protocol (leave-last: each person's last
rating; temporal: the latest 10% of all ratings), `movierec.experiments.compare` fits the
single models (pop, ease, als, seq-ease; tuned configs where `configs/tuned/<dataset>/
<protocol key>/` has them, else defaults, exactly as `movierec compare` picks them) and
the ranker on the same split: its stage-2 settings are its defaults, its generators
(seq-ease, ease, als, pop: the kinds of its default generators) get the configs the
single models get. The best single model by NDCG@10 is the
reference: the ranker is tested against it with the project's paired tests (t-test and
Wilcoxon, Holm-corrected; `movierec.evaluation.stats.compare_to_reference`), and its
ratio to the reference is set against the goal (>= 1.05x). The ranker's stage-2 feature
importance (gain share) is recorded too, from a ranker refitted on the same history
(`compare` keeps no fitted model), and plotted.

Writes benchmarks/results/ranker.json (`--out` elsewhere) and, beside it,
ranker_importance.png.

Run: .venv/bin/python benchmarks/ranker.py [--datasets ml-100k,ml-latest-small]
     [--protocols leave-last,temporal] [--ranker-params '{"n_candidates": 100}'] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from movierec.data import load_movielens
from movierec.evaluation import stats
from movierec.evaluation.protocols import get_protocol
from movierec.experiments import build_model
from movierec.experiments.compare import CompareSpec, compare, model_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import ROOT, write_results  # noqa: E402

SINGLES = ["pop", "ease", "als", "seq-ease"]
#: the ranker's generators (its defaults' kinds), with the singles' configs
GENERATORS = ["seq-ease", "ease", "als", "pop"]
GOAL = 1.05
METRIC = "ndcg@10"


def run_one(dataset: str, protocol: str, ranker_params: dict, seed: int) -> dict:
    """One dataset x protocol: every model's NDCG@10, the reference and the ranker's test."""
    # the ranker's generators are the single models with the very configs `compare` gives them
    key = get_protocol(protocol).config_key(None)
    tuned = model_settings(SINGLES, dataset, key, seed)
    generators = [[n, tuned[n]["params"]] for n in GENERATORS]
    spec = CompareSpec(dataset=dataset, protocol=protocol, models=[*SINGLES, "ranker"], ks=(10,), seed=seed,
                       params={"ranker": {"generators": generators, **ranker_params}})
    comp = compare(spec)
    summary = {name: float(r.summary[METRIC]) for name, r in comp.results.items()}
    best = max(SINGLES, key=lambda n: summary[n])
    per_user = {n: comp.results[n].per_user for n in (best, "ranker")}
    test = stats.compare_to_reference(per_user, best, [METRIC]).to_dict(orient="records")[0]
    ranker = comp.results["ranker"]
    model_info = comp.info["models_config"]
    # `compare` keeps no fitted model: refit the ranker on the same history for its importances
    split = get_protocol(protocol).splits(load_movielens(dataset), None, seed)[0]
    fitted = build_model("ranker", model_info["ranker"]["params"], seed).fit(split.train_full())
    gains = fitted.feature_importance()
    total = sum(gains.values()) or 1.0
    return {
        "dataset": dataset, "protocol": protocol, "ndcg@10": summary, "best_single": best,
        "ratio": summary["ranker"] / summary[best] if summary[best] else float("nan"),
        "goal": GOAL, "meets_goal": bool(summary["ranker"] >= GOAL * summary[best]),
        "test": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in test.items()},
        "ci": {n: comp.ci[n][METRIC] for n in comp.ci},
        "configs": {n: model_info[n]["config"] and os.path.relpath(model_info[n]["config"], ROOT)
                    for n in model_info},
        "ranker_params": model_info["ranker"]["params"],
        "evaluated_users": int(ranker.info["n_evaluated_users"]),
        "relevance_threshold": comp.info.get("relevance_threshold"),
        "feature_importance_gain_share": {k: v / total for k, v in gains.items()},
        "stage2": fitted.stage2_,
    }


def plot_importance(rows: list[dict], path: Path) -> None:
    """One bar chart of the stage-2 features' gain share per dataset x protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 5.5), sharey=True, squeeze=False)
    for ax, row in zip(axes[0], rows):
        shares = row["feature_importance_gain_share"]
        names = list(shares)
        ax.barh(range(len(names)), [shares[n] for n in names], color="#4c72b0")
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{row['dataset']}, {row['protocol']}", fontsize=9)
        ax.set_xlabel("share of total gain")
    fig.suptitle("ranker: LightGBM feature importance (gain)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--protocols", default="leave-last,temporal")
    parser.add_argument("--ranker-params", default="{}", help="JSON of ranker hyperparameters (default: its own)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    ranker_params = json.loads(args.ranker_params)
    rows = []
    header = f"{'dataset':<16}{'protocol':<12}" + "".join(f"{n:>10}" for n in [*SINGLES, "ranker"]) \
        + f"{'best':>10}{'ratio':>8}{'p(holm)':>10}"
    print(header)
    for dataset in args.datasets.split(","):
        for protocol in args.protocols.split(","):
            row = run_one(dataset, protocol, ranker_params, args.seed)
            rows.append(row)
            vals = "".join(f"{row['ndcg@10'][n]:>10.4f}" for n in [*SINGLES, "ranker"])
            p = max(row["test"]["p_t_holm"], row["test"]["p_w_holm"])
            print(f"{dataset:<16}{protocol:<12}{vals}{row['best_single']:>10}{row['ratio']:>8.3f}{p:>10.2g}",
                  flush=True)
    path = write_results("ranker", {"metric": METRIC, "goal": GOAL, "singles": SINGLES, "rows": rows}, args.out)
    figure = path.with_name(path.stem + "_importance.png")
    plot_importance(rows, figure)
    print(f"wrote {path} and {figure}")


if __name__ == "__main__":
    main()

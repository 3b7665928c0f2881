"""Choose two-tower's `cold_dropout` / `id_dropout` for the cold-movie protocol on validation.

Fits two-tower with a dataset's tuned cold config (configs/tuned/<dataset>/cold/two-tower.json)
plus the given overrides on the fit part of the `cold-movies` split, and prints recall@20 on
the validation cold movies (what the choice is made on) and, refitted on train + validation,
on the test cold movies (reported only).

Run:  .venv/bin/python benchmarks/cold_dropout.py ml-100k '{"cold_dropout": false}'
      .venv/bin/python benchmarks/cold_dropout.py ml-100k '{"cold_dropout": true, "id_dropout": 0.6}'
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MOVIEREC_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))

import movierec as mr  # noqa: E402
from movierec.evaluation.cold_movies import evaluate_cold  # noqa: E402
from movierec.evaluation.protocols import build_split  # noqa: E402
from movierec.experiments.configs import TunedConfig, protocol_key, tuned_path  # noqa: E402


def main(argv: list[str]) -> None:
    dataset = argv[0] if argv else "ml-100k"
    overrides = json.loads(argv[1]) if len(argv) > 1 else {}
    params = {**TunedConfig.load(tuned_path("two-tower", dataset, protocol_key("cold-movies"))).params, **overrides}
    ds = mr.load_movielens(dataset)
    split = build_split(ds, "cold-movies", holdout=None, seed=42)
    start = time.time()
    val = evaluate_cold(mr.create("two-tower", **params).fit(split.train), split, part="validation")
    test = evaluate_cold(mr.create("two-tower", **params).fit(split.train_full()), split, part="test")
    print(json.dumps({"dataset": dataset, "overrides": overrides,
                      "validation_recall@20": round(float(val.summary["recall@20"]), 4),
                      "test_recall@20": round(float(test.summary["recall@20"]), 4),
                      "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main(sys.argv[1:])

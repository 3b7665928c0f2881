#!/usr/bin/env bash
# Set everything up and run the main job on MovieLens 100K:
# fetch + verify, describe, evaluate against baselines, train, recommend, similar movies.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
source scripts/env.sh
MR=.venv/bin/movierec
OUT=runs/ml-100k
mkdir -p "$OUT"

echo "== 1. Fetch and verify MovieLens 100K"
$MR data fetch ml-100k

echo "== 2. Describe it (plots in $OUT/plots)"
$MR data describe ml-100k --plots "$OUT/plots"

echo "== 3. Rating prediction on the canonical folds u1..u5: baselines vs BiasedMF"
for model in global-mean bias mf; do
  $MR evaluate --dataset ml-100k --model "$model" --protocol ml100k-folds
done

echo "== 4. Top-10 ranking, per-user temporal last-20% split (tuned configs from configs/tuned/ml-100k/last20)"
$MR compare --dataset ml-100k --protocol leave-last --holdout 0.2 --models random,pop,mf,als,ease,seq-ease -k 10,20 --out "$OUT/compare"

echo "== 5. Train BiasedMF on all of ML-100K (model folder: $OUT/mf; also a version in the registry $OUT/registry)"
$MR train --dataset ml-100k --model mf --out "$OUT/mf" --registry "$OUT/registry"
$MR models list --registry "$OUT/registry"

echo "== 6. Pictures: learning curve and t-SNE map of the movie embeddings ($OUT)"
$MR plot learning-curve --model-dir "$OUT/mf" --out "$OUT/learning_curve.png"
$MR plot tsne --model-dir "$OUT/mf" --out "$OUT/tsne.png"

echo "== 7. Recommendations for user 42 (from the registry's current mf), and the movies most like Star Wars (movie 50)"
$MR recommend --registry "$OUT/registry" --name mf --user 42 -k 10
$MR similar --model-dir "$OUT/mf" --movie 50 -k 10

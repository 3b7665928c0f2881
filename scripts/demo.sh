#!/usr/bin/env bash
# Set everything up and run the main job on MovieLens 100K:
# fetch + verify, describe, evaluate against baselines, compare rankers, train the strongest,
# recommend (for a known user and for a new person), similar movies, teaching plots;
# then serve the trained model: the web page and the JSON API (Ctrl-C stops it).
# Scripted runs skip serving with MOVIEREC_NO_SERVE=1 or --no-serve; MOVIEREC_PORT picks the port.
set -euo pipefail
cd "$(dirname "$0")/.."
NO_SERVE="${MOVIEREC_NO_SERVE:-0}"
for arg in "$@"; do
  case "$arg" in
    --no-serve) NO_SERVE=1 ;;
    *) echo "error: unknown option $arg (the only option is --no-serve)." >&2; exit 1 ;;
  esac
done
bash scripts/setup.sh dev
source scripts/env.sh
MR=.venv/bin/movierec
OUT=runs/ml-100k
mkdir -p "$OUT"

echo "== 1. Fetch and verify MovieLens 100K"
$MR data fetch ml-100k

echo "== 2. Describe it (plots in $OUT/plots)"
$MR data describe --dataset ml-100k --plots "$OUT/plots"

echo "== 3. Rating prediction on the canonical folds u1..u5: baselines vs BiasedMF"
for model in global-mean bias mf; do
  $MR evaluate --dataset ml-100k --model "$model" --protocol ml100k-folds
done

echo "== 4. Top-10 ranking, leave-last protocol: each user's last 20% held out (tuned configs from configs/tuned/ml-100k/last20)"
$MR compare --dataset ml-100k --protocol leave-last --holdout 0.2 --models random,pop,mf,als,ease,seq-ease -k 10,20 --out "$OUT/compare"

echo "== 5. Train SeqEASE, step 4's strongest ranker, on all of ML-100K with its tuned config"
echo "      (model folder: $OUT/seq-ease; also a version in the registry $OUT/registry)"
$MR train --dataset ml-100k --model seq-ease --config configs/tuned/ml-100k/last20/seq-ease.json \
  --out "$OUT/seq-ease" --overwrite --registry "$OUT/registry"
$MR models list --registry "$OUT/registry"

echo "== 6. Recommendations for user 42 (from the registry's current seq-ease; movies with 20+ ratings only),"
echo "      and the movies most like Star Wars (movie 50)"
$MR recommend --registry "$OUT/registry" --name seq-ease --user 42 -k 10 --min-ratings 20
$MR similar --model-dir "$OUT/seq-ease" --movie 50 -k 10

echo "== 7. Cold start: a new person who liked Star Wars, Empire Strikes Back and Return of the Jedi,"
echo "      and one who liked Toy Story, The Lion King, Aladdin and Beauty and the Beast (no retraining)"
$MR recommend --model-dir "$OUT/seq-ease" --liked 50,172,181 -k 10 --min-ratings 20
$MR recommend --model-dir "$OUT/seq-ease" --liked 1,71,95,588 -k 10 --min-ratings 20
echo "      Likes and dislikes: five science-fiction films at 5 stars and four romances at 1 star; a rating"
echo "      below the liked threshold (3.5 stars) is never \"more like this\" and never a reason"
$MR recommend --model-dir "$OUT/seq-ease" --rated 50=5,172=5,183=5,195=5,96=5,88=1,66=1,70=1,255=1 -k 10

echo "== 8. Two-tower retrieval: train the two-tower model (features + IDs) with an IVF index stored in its bundle,"
echo "      answer user 42 from the index, and a new person from their liked movies through the user tower"
$MR train --dataset ml-100k --model two-tower --out "$OUT/two-tower" --overwrite --index ivf
$MR recommend --model-dir "$OUT/two-tower" --user 42 -k 10 --index ivf
$MR recommend --model-dir "$OUT/two-tower" --liked 50,172,181 -k 10 --index ivf

echo "== 9. Teaching pictures from BiasedMF ($OUT/mf): learning curve and t-SNE map of its movie embeddings"
$MR train --dataset ml-100k --model mf --out "$OUT/mf" --overwrite
$MR plot learning-curve --model-dir "$OUT/mf" --out "$OUT/learning_curve.png"
$MR plot tsne --model-dir "$OUT/mf" --out "$OUT/tsne.png"

if [ "$NO_SERVE" != "0" ]; then
  echo "== 10. Serving skipped (MOVIEREC_NO_SERVE=1 or --no-serve); serve later with:"
  echo "      $MR serve --registry $OUT/registry --model seq-ease"
  exit 0
fi
echo "== 10. Serve the registry's current seq-ease: rate movies in the browser, or call the API (Ctrl-C stops it)"
exec $MR serve --registry "$OUT/registry" --model seq-ease --port "${MOVIEREC_PORT:-8000}"

#!/usr/bin/env bash
# Set everything up and run the main job on MovieLens 100K.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
source scripts/env.sh
MR=.venv/bin/movierec
$MR data fetch ml-100k
$MR data describe ml-100k --plots runs/ml-100k/plots

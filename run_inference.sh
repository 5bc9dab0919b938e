#!/usr/bin/env bash
# Bulk inference benchmark: every model x fold x trial -> one CSV (see util/run_inference.py --help).
#   ./run_inference.sh results.csv                       # paper protocol (batch 1024, fp16, 10 trials)
#   QUICK=1 ./run_inference.sh quick.csv                 # every model and fold in a few minutes
#   ALIGN=8 PAD_INPUT=1 ./run_inference.sh aligned.csv   # widths and input channels rounded to 8
#   BAND_LIMIT=50 ./run_inference.sh band50.csv          # band-limited CNNs, 50% of each spectrum cut
# Settings are environment variables (MODELS FOLDS TRIALS ITERS WARMUP BATCH BACKEND PRECISION
# ALIGN PAD_INPUT CHANNELS_LAST DEVICE E2E BAND_LIMIT BAND_ALGORITHM TIMEOUT QUICK ORIGINAL_NAMES) or the flags of
# util/run_inference.py. ORIGINAL_NAMES=1 names NoScope rows as the released script did (coral).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PY" util/run_inference.py "$@"

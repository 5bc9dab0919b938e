#!/usr/bin/env bash
# Band-limited V1 and N1 on ZigZag's Eyeriss-like and TPU-like accelerators: the original and
# f = 4 at 0 / 50 / 75% of the spectrum discarded, beside the same networks without
# band-limiting, all searched with the same (small) mapping settings, fusion off. Writes
# OUT/band_table.csv (default model_files/accel), which util/accel_report.py puts in the
# report's "Band-limiting" section. About 15 minutes on 2 cores. From the repository root:
#   bash model_files/accel/band_table.sh && .venv/bin/python util/accel_report.py --report-only \
#       --relu-density model_files/accel/relu_density.csv
set -euo pipefail
PY=${PY:-.venv/bin/python}; OUT=${OUT:-model_files/accel}
SEARCH="--lpf-limit 2 --spatial-mappings 1 --workers 1 --cache-dir ${CACHE:-/tmp/accel_band_cache}"
parts=$(mktemp -d)
for m in game_lol/goldnumber-fraction noscope_coral; do
  for b in none 0 50 75; do
    extra=(); [ "$b" != none ] && extra=(--band-limit "$b")
    $PY util/accel_sim.py "$m" --folds 1 4 "${extra[@]}" --hardware eyeriss_like tpu_like $SEARCH \
      --quiet --csv "$parts/$(echo "$m" | tr / _)_$b.csv" | tail -1
  done
done
$PY - "$parts" "$OUT/band_table.csv" <<'PYEOF'
import sys
from pathlib import Path
from util.accel.table import read_csv, write_csv
rows = [r for p in sorted(Path(sys.argv[1]).glob("*.csv")) for r in read_csv(p)]
write_csv(rows, sys.argv[2])
print(f"{len(rows)} rows -> {sys.argv[2]}")
PYEOF
rm -rf "$parts"

#!/usr/bin/env bash
# The fused backend beside triton and compile: every benchmark model at f = 1..4 in one CSV
# ($OUT/fused_h200.csv), then end to end on V2 and N1 ($OUT/e2e_h200.csv) and the per-layer
# scoreboard of N4 ($OUT/layers_taipei.csv). Run from the repository root on a CUDA machine:
#   BUDGET=560 OUT=/tmp/out bash model_files/h200/fused_table.sh
#   MODELS="game_lol/goldnumber-fraction noscope_coral" STEPS="fused triton" BUDGET=560 OUT=/tmp/out \
#     bash model_files/h200/fused_table.sh
# MODELS narrows the table to some benchmark models and STEPS (default: fused triton e2e compile
# layers) to some of its parts, so that a table too long for one call (560 s timed the fused rows of
# every model and the triton rows of two) is split over several. STEPS=fusedlayers (not in the
# default) writes the fused kernel's per-layer scoreboard of N4 and V1 at f = 1 and 4
# ($OUT/layers_fused_*.csv): its time split over its layers by their cycle counts.
# Compiling dominates (the triton backend: ~10 minutes for every model and fold, one process
# at a time), so a prepass compiles everything in parallel processes first, timing nothing; the
# timed pass then runs one process at a time and re-runs each Triton autotune alone, so
# concurrent prepass work never picks a kernel. Steps the budget cuts leave no rows.
set -uo pipefail
export PYTHONUNBUFFERED=1
t0=$(date +%s); BUDGET=${BUDGET:-560}; OUT=${OUT:-/tmp}; mkdir -p $OUT
el() { echo $(( $(date +%s) - t0 )); }
left() { l=$(( BUDGET - $(el) - ${1:-0} )); echo $(( l > 1 ? l : 1 )); }
ALL=${MODELS:-$(python3 -c "from config.tasks import bench_entries; print(' '.join(e.name for e in bench_entries()))")}
ORIG=$(python3 -c "import sys; from config.tasks import bench_entries
print(' '.join(e.name for e in bench_entries(('game', 'noscope')) if e.name in sys.argv[1:]))" $ALL)
E2EM="game_apex/squad_count_v2 noscope_coral"
STEPS=${STEPS:-"fused triton e2e compile layers"}
has() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
P="TRIALS=1 ITERS=1 WARMUP=1"
TRITON="BACKEND=triton ALIGN=8 PAD_INPUT=1"
pre() { tr ' ' '\n' | grep . | timeout 190 xargs -P $1 -I{} sh -c "$2 MODELS={} bash run_inference.sh /tmp/prepass.csv >/dev/null 2>&1"; }
# the peaks every row is divided by, measured (and cached) while nothing else runs
python3 -c "import torch; from util.bench.peak import peak_flops, peak_bandwidth, h2d_bandwidth as h
d = torch.device('cuda'); print('peak', peak_flops(torch.float16, d), peak_bandwidth(d), h(d))"
has fused && ( echo $ALL | pre 4 "$P BACKEND=fused FOLDS='1 2 3 4'" ) &
has triton && ( echo $ALL | pre 6 "$P $TRITON FOLDS='1 2 3 4'" ) &
has compile && ( echo $ORIG | pre 2 "$P BACKEND=compile FOLDS=1" ) &
has e2e && ( echo $E2EM | pre 2 "$P BACKEND=fused E2E=1 FOLDS='1 4'"; echo $E2EM | pre 2 "$P $TRITON E2E=1 FOLDS='1 4'" ) &
wait; echo "prepass done at $(el) s"
C=$OUT/fused_h200.csv; T="TRIALS=3 ITERS=300 WARMUP=30 TIMEOUT=90"
if has fused; then
  env $T BACKEND=fused MODELS="$ALL" FOLDS="1 2 3 4" timeout $(left) bash run_inference.sh $C >> $OUT/fused.log 2>&1
  echo "fused done at $(el) s"; fi
if has triton; then
  env $T $TRITON MODELS="$ALL" FOLDS="1 2 3 4" timeout $(left 100) bash run_inference.sh $C >> $OUT/triton.log 2>&1
  echo "triton done at $(el) s"; fi
if has e2e; then
  for b in "BACKEND=fused" "$TRITON"; do
    env $T $b E2E=1 MODELS="$E2EM" FOLDS="1 4" timeout $(left) bash run_inference.sh $OUT/e2e_h200.csv >> $OUT/e2e.log 2>&1
  done; echo "end to end done at $(el) s"; fi
if has compile && [ -n "$ORIG" ]; then
  env $T BACKEND=compile MODELS="$ORIG" FOLDS=1 timeout $(left 40) bash run_inference.sh $C >> $OUT/compile.log 2>&1
  echo "compile done at $(el) s"; fi
if has layers; then
  timeout $(left) python3 util/profile_model.py noscope_taipei --folds 1 4 --layers --backend triton \
    --channel-align 8 --pad-input --csv $OUT/layers_taipei.csv > $OUT/layers_taipei.txt 2>&1; fi
if has fusedlayers; then
  for m in noscope_taipei game_lol/goldnumber-fraction; do n=$(basename ${m#*_})
    timeout $(left) python3 util/profile_model.py $m --folds 1 4 --layers --backend fused \
      --csv $OUT/layers_fused_$n.csv > $OUT/layers_fused_$n.txt 2>&1; done; fi
echo "total $(el) s"

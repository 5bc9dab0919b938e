#!/usr/bin/env bash
# Game rows of the accuracy table: V1-V6 at f = 1 and the EfficientNet-style V1-V4 at batch BATCH
# (256) with AMP (bf16) numerics, and V1-V6 at f = 2..4 at the recipe's batch 32 in fp32 (at batch
# 256 the folded networks underfit: paper-h200/README.md, "Why the folded game runs fall behind"),
# into its own savedir; all at once under MPS on one GPU.
# Every run resumes after its last completed epoch, so the table can be trained in pieces:
#   BUDGET=S    train for S seconds, then stop every run (each keeps its last epoch)
#   RESUME_FROM=DIR  unpack DIR/game_runs.tgz.* (a previous piece's output) when runs/ has none
# After training, runs/paper-h200, runs/paper-h200-batch32 (and -batch64, -lr<rate>) are packed as $OUT/game_runs.tgz.*
# (15 MB parts; a finished run without current.pth, and without best.pth once SHIPPED, default
# model_files/paper-h200, holds it). runs/ is made in the current folder. On a CUDA machine, from the repository root:
#   BUDGET=540 OUT=/tmp/out bash model_files/paper-h200/game_table.sh
# Every run starts at once (one train.py per task and kind of run), each as soon as its task's data
# is ready: the data is drawn in the background, smallest task first, while the GPU trains.
# DATA_ROOT (/tmp/gd), WORK (logs, /tmp/gwork), DEVICE (cuda:0) and SCALE (of the data, 1) are for
# other machines; tests/test_game_table.py runs two tiny pieces on the CPU with DEVICE=cpu AMP=none.
# TASKS (at FOLDS, default 1), EFF (EfficientNet tasks), B32_TASKS and B32_FOLDS (the runs at batch 32:
# TASKS at f = 2 3 4 by default) narrow a piece to some runs, e.g. to finish V1 first:
# TASKS=lol/goldnumber-fraction EFF= B32_FOLDS= (empty: none). FOLDS="1 2 3 4" trains the folded
# runs at batch BATCH as well (the shipped V1-V3 folded rows at batch 256).
# B64_TASKS with B64_FOLDS (default 4) trains those runs at batch 64 in fp32 into runs/paper-h200-batch64:
# whether batch 64 trains the folded networks as the recipe's 32 does (V3 at f = 4: it does not; none by default).
# LRS="8e-4 2.8e-4" with LR_TASKS (and LR_FOLDS, default 4) trains those runs at batch BATCH with
# each learning rate instead of the recipe's, into runs/paper-h200-lr<rate>: whether a rate scaled
# with the batch trains the folded networks as batch 32 does (none by default).
# BANDS="0 25 50 75" with BAND_TASKS (default apex/squad_count_v2) and BAND_FOLDS (default 1 4)
# trains the band-limited CNNs of the band-limiting comparison as the others: f = 1 at batch BATCH
# with AMP numerics into runs/paper-h200, folded ones at batch 32 in fp32 into runs/paper-h200-batch32
# (folders fold<f>-band<CR>; none by default).
# COMPILE=1 trains every run with --compile-step (compiled forward and loss, fused optimizer,
# cudnn.benchmark: fewer kernels per step). COMPILE=auto first measures V3 at f = 2 at batch 32 in
# fp32 with 1 and 8 runs under MPS without and with it (util/train_throughput.py, into STEP_CSV, default
# $OUT/train_throughput_step.csv, copied to $OUT) and trains with it if its 8 runs train at least 5%
# more images/s; a later piece given the same STEP_CSV (on the same machine) decides from it again
# without measuring. Default 0.
# CHECK=1 first trains the first task at f = 1 for 8 epochs with and without the CUDA graph.
# PROBE=1 first measures the aggregate training throughput of V1 at f = 1, 4 with 1 and 8 runs
# under MPS at this batch and numerics (util/train_throughput.py, CSV in $OUT).
set -uo pipefail
# one Inductor compile thread per run: two dozen runs compiling at once must not start 16 workers each
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-1}
t0=$(date +%s); BUDGET=${BUDGET:-560}; left() { echo $(( t0 + BUDGET - $(date +%s) )); }
# runs/ is made in the current folder; the code is this script's repository
REPO=$(cd "$(dirname "$0")/../.." && pwd); export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-/tmp}; D=${DATA_ROOT:-/tmp/gd}; W=${WORK:-/tmp/gwork}; S=runs/paper-h200; B=runs/paper-h200-batch32
mkdir -p $W $OUT
BATCH=${BATCH:-256}; AMP=${AMP:-bf16}; DEVICE=${DEVICE:-cuda:0}; SCALE=${SCALE:-1}
# the longest runs first (V1, V5, V6), so the last ones to finish are short
TASKS=${TASKS-"lol/goldnumber-fraction lol/goldnumber-int lol/timer-minutes sot/timer3 apex/squad_count_v2 sot/coin_count-digits_3_4-v2"}
FOLDS=${FOLDS-1}
EFF=${EFF-"lol/goldnumber-fraction sot/timer3 apex/squad_count_v2 sot/coin_count-digits_3_4-v2"}
B32_FOLDS=${B32_FOLDS-"2 3 4"}; B32_TASKS=${B32_TASKS-$TASKS}
B64_TASKS=${B64_TASKS-}; B64_FOLDS=${B64_FOLDS-4}
LRS=${LRS-}; LR_TASKS=${LR_TASKS-}; LR_FOLDS=${LR_FOLDS-4}
BANDS=${BANDS-}; BAND_TASKS=${BAND_TASKS-apex/squad_count_v2}; BAND_FOLDS=${BAND_FOLDS-"1 4"}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'
if [ ! -d $S ] && [ -n "${RESUME_FROM:-}" ] && ls $RESUME_FROM/game_runs.tgz.* >/dev/null 2>&1; then
  cat $RESUME_FROM/game_runs.tgz.* | tar xzf - && echo "runs resumed from $RESUME_FROM"; fi
ls -d $S >/dev/null 2>&1 && echo "runs present: $(find runs -name stats.csv | wc -l) with stats"
# Data is made one task at a time in the background, the smallest first, and each task's runs start
# as soon as its data is complete (ROOT/<task>/.complete), so the GPU trains while the rest is drawn.
ALL=$(echo $TASKS $EFF $B32_TASKS $B64_TASKS $LR_TASKS ${BANDS:+$BAND_TASKS} | tr " " "\n" | sort -u)
by_size() { python3 -c 'import sys; from config.tasks import get_task
print(" ".join(sorted(sys.argv[1:], key=lambda t: sum(get_task(t).data.images_per_class.values()) * get_task(t).num_classes)))' "$@"; }
( for t in $(by_size $ALL); do python3 $REPO/util/make_game_data.py $D --tasks $t --scale $SCALE --workers $(nproc) 2>&1 | tr '\r' '\n' | grep -v '%|'; done
  echo "data ready at $(( $(date +%s) - t0 )) s" ) > $W/data.log 2>&1 &
DATA=$!
ready() { for t in "$@"; do until [ -f $D/$t/.complete ]; do
  [ $(left) -gt 0 ] || { echo "$t: its data was not ready within the budget" >&2; return 1; }
  kill -0 $DATA 2>/dev/null || [ -f $D/$t/.complete ] || {
  echo "no data for $t: see $W/data.log" >&2; tail -3 $W/data.log >&2; return 1; }; sleep 2; done; done; }
if [ "${PROBE:-0}" = 1 ]; then
  ready lol/goldnumber-fraction || exit 1
  for f in 1 4; do
    timeout 150 python3 $REPO/util/train_throughput.py --data-root $D --folds $f --runs 1 8 --mps on --epochs 30 \
      --batch-size $BATCH --amp $AMP --csv $OUT/train_throughput_b$BATCH.csv --append 2>&1 | grep -E "^\[N=|Error|error"
  done
  echo "probe done at $(( $(date +%s) - t0 )) s"
fi
COMPILE=${COMPILE:-0}
if [ "$COMPILE" = auto ]; then
  SC=${STEP_CSV:-$OUT/train_throughput_step.csv}
  # 1 or 0 from the 8-run rows of STEP_CSV; fails while either row is missing
  decide() { python3 - $SC 2>/dev/null <<'PY'
import csv, sys
rate = {r["step"]: float(r["aggregate_imgs_per_s"]) for r in csv.DictReader(open(sys.argv[1])) if r["runs"] == "8"}
print(1 if rate["compiled"] >= 1.05 * rate["graph"] else 0)
PY
  }
  if ! COMPILE=$(decide); then
    t=sot/coin_count-digits_3_4-v2; ready $t || exit 1
    for c in "" --compile-step; do
      timeout 240 python3 $REPO/util/train_throughput.py --data-root $D --tasks $t --folds 2 --runs 1 8 --mps on \
        --epochs 20 $c --csv $SC --append 2>&1 | grep -E "^\[N=|Error|error"
    done
    COMPILE=$(decide) || COMPILE=0
  fi
  [ -f $SC ] && { cp $SC $OUT/ 2>/dev/null; cat $SC; }
  echo "compiled step: COMPILE=$COMPILE at $(( $(date +%s) - t0 )) s"
fi
CS=$([ "$COMPILE" = 1 ] && echo --compile-step)
if [ "${CHECK:-0}" = 1 ]; then  # the CUDA-graph steps train as the eager ones do (8 epochs each)
  t=$(echo $TASKS | cut -d" " -f1); ready $t || exit 1
  for g in "" --no-cuda-graph; do
    python3 $REPO/fold_trainer.py $t 1 $W/check$g --epochs 8 --batch-size $BATCH --amp $AMP --data-root $D --no-progress $g \
      | grep -E "epoch [0-7]:|rror" | sed "s|^|${g:-graph} |"; done
  echo "check done at $(( $(date +%s) - t0 )) s"
fi
if command -v nvidia-cuda-mps-control >/dev/null; then
  nvidia-cuda-mps-control -d 2>/dev/null && echo "MPS started" || echo "MPS: $(echo get_server_list | nvidia-cuda-mps-control 2>&1 | head -1)"; fi
C="--data-root $D --devices $DEVICE --no-progress $CS"
epochs() { for s in $(find runs -name stats.csv | sort); do echo "$(dirname $s) $(( $(wc -l < $s) - 1 ))"; done; }
# every 30 s: GPU utilisation and memory, CPU load, and each run's epochs so far (monitor.log)
( while sleep 30; do echo "$(( $(date +%s) - t0 )) s | $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null) | load $(cut -d' ' -f1 /proc/loadavg) | epochs $(epochs | cut -d' ' -f2 | tr '\n' ' ')"; done ) > $W/monitor.log 2>&1 &
MON=$!
epochs > $W/epochs_before.txt; t_train=$(date +%s)
n() { echo $# ; }
# one train.py per task and kind of run, each started when its task's data is ready; every run at once
launch() { local t=$1 log=$2; shift 2; ( ready $t && timeout $(left) python3 $REPO/train.py "$@" --tasks $t $C >> $W/$log.log 2>&1 ) & }
# one run per fold of FOLDS (none when it is empty), each folded run's order agreement measured
per_fold() { local t=$1 log=$2 dir=$3 folds=$4; shift 4
  [ -n "$folds" ] && launch $t $log $dir --folds $folds --eval-orders 10 --jobs $(n $folds) "$@"; }
for t in $TASKS; do per_fold $t train $S "$FOLDS" --batch-size $BATCH --amp $AMP; done
for t in $EFF; do launch $t eff $S --efficientnet --jobs 1 --batch-size $BATCH --amp $AMP; done
for t in $B32_TASKS; do per_fold $t b32 $B "$B32_FOLDS"; done
for t in $B64_TASKS; do per_fold $t b64 runs/paper-h200-batch64 "$B64_FOLDS" --batch-size 64; done
for lr in $LRS; do for t in $LR_TASKS; do per_fold $t lr$lr runs/paper-h200-lr$lr "$LR_FOLDS" --batch-size $BATCH --amp $AMP --lr $lr; done; done
# band-limited runs as the others: f = 1 at batch BATCH into runs/paper-h200, folded at batch 32 into B
BAND1=$(for f in $BAND_FOLDS; do [ $f = 1 ] && echo 1; done); BANDF=$(for f in $BAND_FOLDS; do [ $f != 1 ] && echo $f; done)
for t in $BAND_TASKS; do [ -n "$BANDS" ] || continue
  [ -n "$BAND1" ] && launch $t band $S --folds 1 --band-limit $BANDS --jobs $(n $BANDS) --batch-size $BATCH --amp $AMP
  [ -n "$BANDF" ] && launch $t band32 $B --folds $BANDF --band-limit $BANDS --eval-orders 10 \
    --jobs $(( $(n $BANDF) * $(n $BANDS) )); done
P=$(jobs -p | grep -v -e "^$MON$" -e "^$DATA$"); [ -n "$P" ] && wait $P; kill $MON 2>/dev/null
pkill -P $DATA 2>/dev/null; kill $DATA 2>/dev/null && echo "data still being made at the end: stopped (its finished tasks are kept)"
echo "trained until $(( $(date +%s) - t0 )) s"; cat $W/monitor.log
# per run: epochs, and this piece's wall seconds per epoch next to the trainer's own
# train / train+eval seconds (the rest is saving and the host's share of the GPU)
python3 - $W/epochs_before.txt $(( $(date +%s) - t_train )) <<'PY'
import csv, pathlib, sys
before = dict(l.split() for l in open(sys.argv[1]) if l.strip())
wall = float(sys.argv[2])
for s in sorted(pathlib.Path("runs").rglob("stats.csv")):
    rows = list(csv.DictReader(open(s))); new = rows[int(before.get(str(s.parent), 0)):]
    done = " done" if (s.parent / "done.json").exists() else ""
    if not new:
        print(f"{str(s.parent):62s} {len(rows):5d} epochs{done}"); continue
    sec = sum(float(r["seconds"]) for r in new) / len(new); tr = sum(float(r["train_seconds"]) for r in new) / len(new)
    print(f"{str(s.parent):62s} {len(rows):5d} epochs (+{len(new)}) | wall/epoch {wall / len(new):.3f} s, "
          f"train {tr:.3f} s, train+eval {sec:.3f} s{done}")
PY
for log in $(ls $W/*.log | grep -v /monitor.log); do tail -n 2 $log; done  # data and every kind of run
# a finished run needs no current.pth to be skipped next time (done.json says it is done), nor its
# best.pth once the repository ships it (SHIPPED: runs/paper-h200 -> SHIPPED, -batch32 -> SHIPPED/batch32)
SHIPPED=${SHIPPED:-$REPO/model_files/paper-h200}
shipped() { case $1 in runs/paper-h200/*) echo $SHIPPED/${1#runs/paper-h200/};;
  runs/paper-h200-batch32/*) echo $SHIPPED/batch32/${1#runs/paper-h200-batch32/};; esac; }
tar czf - $(for d in $(find runs -name done.json -printf "%h\n"); do echo "--exclude=$d/current.pth"
  s=$(shipped $d); [ -n "$s" ] && [ -f $s/best.pth ] && [ -f $s/done.json ] && echo "--exclude=$d/best.pth"; done) \
  $(ls -d runs/paper-h200* 2>/dev/null) | split -b 15M - $OUT/game_runs.tgz.
ls -la $OUT; echo "total $(( $(date +%s) - t0 )) s"

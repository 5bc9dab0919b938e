#!/usr/bin/env bash
# Game rows of the accuracy table: V1-V6 at f = 1..4 and the EfficientNet-style V1-V4, at batch
# BATCH (256) with AMP (bf16) numerics, all at once under MPS on one GPU; and V1 at f = 1, 4 with
# the recipe's batch 32 in fp32 (the check that the larger batch trains as well), in its own savedir.
# Every run resumes after its last completed epoch, so the table can be trained in pieces:
#   BUDGET=S    train for S seconds, then stop every run (each keeps its last epoch)
#   RESUME_FROM=DIR  unpack DIR/game_runs.tgz.* (a previous piece's output) when runs/ has none
# After training, runs/paper-h200, runs/paper-h200-batch32 (and -lr<rate>) are packed as $OUT/game_runs.tgz.*
# (15 MB parts). Run from the repository root on a CUDA machine:
#   BUDGET=540 OUT=/tmp/out bash model_files/paper-h200/game_table.sh
# TASKS (at FOLDS, default 1 2 3 4), EFF (EfficientNet tasks), B32_TASKS and B32_FOLDS (the runs of the batch-32 check, V1 at
# f = 1, 4 by default) narrow a piece to some runs, e.g. to finish V1 first:
# TASKS=lol/goldnumber-fraction EFF= B32_FOLDS= (empty: none). B32_TASKS="lol/goldnumber-fraction
# sot/coin_count-digits_3_4-v2" adds V3 at batch 32, the test of whether batch 256 underfits V3.
# LRS="8e-4 2.8e-4" with LR_TASKS (and LR_FOLDS, default 4) trains those runs at batch BATCH with
# each learning rate instead of the recipe's, into runs/paper-h200-lr<rate>: whether a rate scaled
# with the batch trains the folded networks as batch 32 does (none by default).
# BANDS="0 25 50 75" with BAND_TASKS (default apex/squad_count_v2) and BAND_FOLDS (default 1 4)
# trains the band-limited CNNs of the band-limiting comparison at batch BATCH, AMP numerics, into
# runs/paper-h200 (folders fold<f>-band<CR>; none by default).
# CHECK=1 first trains the first task at f = 1 for 8 epochs with and without the CUDA graph.
# PROBE=1 first measures the aggregate training throughput of V1 at f = 1, 4 with 1 and 8 runs
# under MPS at this batch and numerics (util/train_throughput.py, CSV in $OUT).
set -uo pipefail
export PYTHONUNBUFFERED=1
t0=$(date +%s); BUDGET=${BUDGET:-560}; left() { echo $(( t0 + BUDGET - $(date +%s) )); }
OUT=${OUT:-/tmp}; D=/tmp/gd; S=runs/paper-h200; B=runs/paper-h200-batch32; W=/tmp/gwork; mkdir -p $W $OUT
BATCH=${BATCH:-256}; AMP=${AMP:-bf16}; JOBS=${JOBS:-12}
# the longest runs first (V1, V5, V6), so the last ones to finish are short
TASKS=${TASKS-"lol/goldnumber-fraction lol/goldnumber-int lol/timer-minutes sot/timer3 apex/squad_count_v2 sot/coin_count-digits_3_4-v2"}
FOLDS=${FOLDS-"1 2 3 4"}
EFF=${EFF-"lol/goldnumber-fraction sot/timer3 apex/squad_count_v2 sot/coin_count-digits_3_4-v2"}
B32_FOLDS=${B32_FOLDS-"1 4"}; B32_TASKS=${B32_TASKS-lol/goldnumber-fraction}
LRS=${LRS-}; LR_TASKS=${LR_TASKS-}; LR_FOLDS=${LR_FOLDS-4}
BANDS=${BANDS-}; BAND_TASKS=${BAND_TASKS-apex/squad_count_v2}; BAND_FOLDS=${BAND_FOLDS-"1 4"}
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'
if [ ! -d $S ] && [ -n "${RESUME_FROM:-}" ] && ls $RESUME_FROM/game_runs.tgz.* >/dev/null 2>&1; then
  cat $RESUME_FROM/game_runs.tgz.* | tar xzf - && echo "runs resumed from $RESUME_FROM"; fi
ls -d $S >/dev/null 2>&1 && echo "runs present: $(find runs -name stats.csv | wc -l) with stats"
python3 util/make_game_data.py $D --tasks $(echo $TASKS $EFF $B32_TASKS $LR_TASKS ${BANDS:+$BAND_TASKS} | tr " " "\n" | sort -u) --workers $(nproc) > $W/data.log 2>&1
echo "data ready at $(( $(date +%s) - t0 )) s"; tail -3 $W/data.log
if [ "${PROBE:-0}" = 1 ]; then
  for f in 1 4; do
    timeout 150 python3 util/train_throughput.py --data-root $D --folds $f --runs 1 8 --mps on --epochs 30 \
      --batch-size $BATCH --amp $AMP --csv $OUT/train_throughput_b$BATCH.csv --append 2>&1 | grep -E "^\[N=|Error|error"
  done
  echo "probe done at $(( $(date +%s) - t0 )) s"
fi
if [ "${CHECK:-0}" = 1 ]; then  # the CUDA-graph steps train as the eager ones do (8 epochs each)
  t=$(echo $TASKS | cut -d" " -f1)
  for g in "" --no-cuda-graph; do
    python3 fold_trainer.py $t 1 $W/check$g --epochs 8 --batch-size $BATCH --amp $AMP --data-root $D --no-progress $g \
      | grep -E "epoch [0-7]:|rror" | sed "s|^|${g:-graph} |"; done
  echo "check done at $(( $(date +%s) - t0 )) s"
fi
nvidia-cuda-mps-control -d 2>/dev/null && echo "MPS started" || echo "MPS: $(echo get_server_list | nvidia-cuda-mps-control 2>&1 | head -1)"
C="--data-root $D --devices cuda:0 --no-progress"
touch $W/train.log $W/eff.log $W/b32.log
epochs() { for s in $(find runs -name stats.csv | sort); do echo "$(dirname $s) $(( $(wc -l < $s) - 1 ))"; done; }
# every 30 s: GPU utilisation and memory, CPU load, and each run's epochs so far (monitor.log)
( while sleep 30; do echo "$(( $(date +%s) - t0 )) s | $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader) | load $(cut -d' ' -f1 /proc/loadavg) | epochs $(epochs | cut -d' ' -f2 | tr '\n' ' ')"; done ) > $W/monitor.log 2>&1 &
MON=$!
epochs > $W/epochs_before.txt; t_train=$(date +%s)
[ -n "$TASKS" ] && [ -n "$FOLDS" ] && timeout $(left) python3 train.py $S --tasks $TASKS --folds $FOLDS --eval-orders 10 --jobs $JOBS --batch-size $BATCH --amp $AMP $C > $W/train.log 2>&1 &
[ -n "$EFF" ] && timeout $(left) python3 train.py $S --tasks $EFF --efficientnet --jobs 4 --batch-size $BATCH --amp $AMP $C > $W/eff.log 2>&1 &
[ -n "$B32_FOLDS" ] && [ -n "$B32_TASKS" ] && timeout $(left) python3 train.py $B --tasks $B32_TASKS --folds $B32_FOLDS --eval-orders 10 --jobs $(( $(echo $B32_TASKS | wc -w) * $(echo $B32_FOLDS | wc -w) )) $C > $W/b32.log 2>&1 &
for lr in $LRS; do [ -n "$LR_TASKS" ] && timeout $(left) python3 train.py runs/paper-h200-lr$lr --tasks $LR_TASKS --folds $LR_FOLDS --eval-orders 10 --jobs $(( $(echo $LR_TASKS | wc -w) * $(echo $LR_FOLDS | wc -w) )) --batch-size $BATCH --amp $AMP --lr $lr $C > $W/lr$lr.log 2>&1 & done
[ -n "$BANDS" ] && timeout $(left) python3 train.py $S --tasks $BAND_TASKS --folds $BAND_FOLDS --band-limit $BANDS --jobs $(( $(echo $BAND_TASKS | wc -w) * $(echo $BAND_FOLDS | wc -w) * $(echo $BANDS | wc -w) )) --batch-size $BATCH --amp $AMP $C > $W/band.log 2>&1 &
P=$(jobs -p | grep -v "^$MON$"); [ -n "$P" ] && wait $P; kill $MON 2>/dev/null
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
for log in $W/train.log $W/eff.log $W/b32.log $(ls $W/lr*.log $W/band.log 2>/dev/null); do tail -n 2 $log; done
# a finished run needs no current.pth to be skipped next time (done.json says it is done)
tar czf - $(for d in $(find runs -name done.json -printf "%h\n"); do echo "--exclude=$d/current.pth"; done) \
  $(ls -d $S $B runs/paper-h200-lr* 2>/dev/null) | split -b 15M - $OUT/game_runs.tgz.
ls -la $OUT; echo "total $(( $(date +%s) - t0 )) s"

#!/usr/bin/env bash
# NoScope rows of the accuracy table (N1-N4 at f = 1..4, recipe: 50 epochs, batch 32, RMSprop)
# and N1's band-limited runs (f = 1, 4 at 0/25/50/75% discarded), all concurrently on one GPU.
# Run from the repository root on a CUDA machine: bash model_files/paper-h200/noscope_table.sh
# (DEV=cpu EXTRA="--epochs 1" FRAMES_DIV=60 makes a small CPU check of the same steps).
set -uo pipefail
export PYTHONUNBUFFERED=1
D=/tmp/nsdata; S=runs/paper-h200; W=/tmp/nswork
DEV=${DEV:-cuda:0}; EXTRA=${EXTRA:-}; FRAMES_DIV=${FRAMES_DIV:-1}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'
if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d; then echo "MPS on"; else echo "MPS not available"; fi
gen() {  # camera frames
  local c=$1 n=$2; mkdir -p $W/$c
  python3 util/make_noscope_video.py $c $W/$c/$c.mp4 $W/$c/$c.csv --frames $n --quiet &&
  python3 util/noscope_video_save.py $W/$c/$c.mp4 $W/$c/frames --quiet &&
  python3 util/noscope_split.py $c $D/noscope-$c-subset --infile $W/$c/$c.csv --indir $W/$c/frames --print_stats --quiet
}
t0=$(date +%s)
left() { echo $(( t0 + 380 - $(date +%s) )); }  # every run resumes, so a cut run loses only its epoch
for spec in coral:16000 night:16000 roundabout:16000 taipei:32000; do
  c=${spec%%:*}; n=$(( ${spec##*:} / FRAMES_DIV ))
  ( gen $c $n > $W.$c.gen.log 2>&1; echo "[$c] data in $(( $(date +%s) - t0 )) s"; cat $W.$c.gen.log | tail -4
    if [ $c = coral ]; then
      ( timeout $(left) python3 train.py $S --tasks noscope-coral --folds 1 4 --band-limit 0 25 50 75 --data-root $D --jobs 8 --devices $DEV $EXTRA > $W.band.train.log 2>&1
        echo "[coral band] trained in $(( $(date +%s) - t0 )) s (rc $?)"; tail -12 $W.band.train.log ) &
    fi
    timeout $(left) python3 train.py $S --tasks noscope-$c --folds 1 2 3 4 --data-root $D --jobs 4 --devices $DEV $EXTRA > $W.$c.train.log 2>&1
    echo "[$c] trained in $(( $(date +%s) - t0 )) s (rc $?)"; tail -8 $W.$c.train.log
    wait ) &
done
wait
echo quit | nvidia-cuda-mps-control 2>/dev/null
cat $S/results.csv
mkdir -p $S/logs && cp $W.*.log $S/logs/
echo "total $(( $(date +%s) - t0 )) s"

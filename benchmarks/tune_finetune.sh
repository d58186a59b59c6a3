#!/usr/bin/env bash
# Recipe exploration for experiment=finetune on noise types that benchmarks/targeted.py does not report:
# the shipped model fine-tuned for SECONDS on a type's first 5 dev recordings, then scored next to the
# generic model on the 55 dev utterances mixed with those recordings (SNR -5..15 dB, seed 2024: the
# "recorded noise" condition of targeted.py, without peers or the forgetting check), and on the type's other
# dev recordings, which it was not fine-tuned on (eval_unseen/: what carries over to another take).
#
#   benchmarks/tune_finetune.sh NAME "TYPES" SECONDS [overrides...]
#   e.g. benchmarks/tune_finetune.sh lr4e-3 "esc10_rain esc10_fire_crackling" 300 model.optimizer.lr=4e-3
#
# Writes outputs/bench/tune_finetune/NAME/TYPE/{train,eval,eval_unseen}/ and prints each type's summary.csv.
# Budgets are wall-clock: run nothing else on the machine meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; types=$2; secs=$3; shift 3
PY=${PY:-.venv/bin/python}
DATA=${DENOISELAB_SHARED_DATA:-../shared/data}
for t in $types; do
  d=outputs/bench/tune_finetune/$name/$t
  rm -rf "$d"; mkdir -p "$d/noise"
  for f in $(ls "$DATA"/dev/noise/"${t}"_*.flac | head -5); do ln -s "$(realpath "$f")" "$d/noise/"; done
  "$PY" -m denoiselab.cli.train experiment=finetune init_from=default data.clean="$DATA/train/clean" \
      data.noise="$d/noise" time_budget="$secs" trainer.max_time=null finetune.generic_noise="$DATA/train/noise" \
      logger=csv hydra.run.dir="$d/train" "$@" > "$d/train.log" 2>&1
  "$PY" -m denoiselab.cli.evaluate "ckpt=[default,$d/train/checkpoints/last.ckpt]" "names=['generic','fine-tuned']" \
      data.clean="$DATA/dev/clean" data.noise="$d/noise" data.every_snr=false data.seed=2024 baselines=[noisy] \
      metrics=[pesq_wb,estoi,si_sdr] num_workers=2 examples=0 plots=false hydra.run.dir="$d/eval" > "$d/eval.log" 2>&1
  # the same two models on the type's other dev recordings (not fine-tuned on): what carries over
  mkdir -p "$d/unseen_noise"
  for f in $(ls "$DATA"/dev/noise/"${t}"_*.flac | tail -n +6); do ln -s "$(realpath "$f")" "$d/unseen_noise/"; done
  if [ -n "$(ls "$d/unseen_noise")" ]; then
    "$PY" -m denoiselab.cli.evaluate "ckpt=[default,$d/train/checkpoints/last.ckpt]" "names=['generic','fine-tuned']" \
        data.clean="$DATA/dev/clean" data.noise="$d/unseen_noise" data.every_snr=false data.seed=2024 baselines=[noisy] \
        metrics=[pesq_wb,estoi,si_sdr] num_workers=2 examples=0 plots=false hydra.run.dir="$d/eval_unseen" > "$d/eval_unseen.log" 2>&1
  fi
  echo "== $name $t: $(grep -o 'reached at step [0-9]*' "$d/train.log" | tail -n 1)"
  cut -d, -f1-5 "$d/eval/summary.csv"
  [ -f "$d/eval_unseen/summary.csv" ] && cut -d, -f1-5 "$d/eval_unseen/summary.csv"
done

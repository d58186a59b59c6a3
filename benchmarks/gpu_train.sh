#!/usr/bin/env bash
# One run on a lent GPU machine, under 9 minutes: GPU tests, training throughput (fp32 vs bf16-mixed, share
# of a step waiting for data), then training of the shipped model's recipe (default_model) for the time left; results in $OUT.
#   here:    python benchmarks/gpu_pack.py                      # wheels + a data subset into .gpu/
#   device:  run(command="bash benchmarks/gpu_train.sh", carry=[".gpu"], timeout_s=560)
# GPU_BUDGET_S (default 500) bounds the whole script; GPU_RECIPE (default default_model) picks the experiment;
# GPU_OVERRIDES adds space-separated overrides (e.g. model.frontend.n_bands=96: finer bands, which raise the
# oracle ceiling of benchmarks/results/oracle_bands.md and cost a GPU little);
# the lr follows a warm-up + cosine decay over the time left (model/scheduler=cosine_time; the recipe's
# one-cycle total_steps is removed, so GPU_RECIPE must be one built on linear_bins, as every from-scratch recipe is).
# On a CPU box, GPU_DRY=1 runs the same steps on the CPU with a 120-second budget (a check of the script: at 60
# seconds the training step was left out).
set -euo pipefail
BUDGET=${GPU_BUDGET_S:-500}
RECIPE=${GPU_RECIPE:-default_model}
ACC=gpu; PREC=bf16-mixed; PRECS=32-true,bf16-mixed; STEPS=30; BATCH=32; WORKERS=8
if [ "${GPU_DRY:-0}" = 1 ]; then ACC=cpu; PREC=32-true; PRECS=32-true; STEPS=3; BATCH=4; WORKERS=2; BUDGET=${GPU_BUDGET_S:-120}; fi
START=$(date +%s)
source "$(dirname "$0")/_gpu_env.sh"
echo "== GPU tests $(date +%T)"
python3 -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tail -20 > "$OUT/gpu_tests.log" || true
cat "$OUT/gpu_tests.log"
echo "== throughput $(date +%T)"
python3 benchmarks/throughput.py --data "$DATA" --accelerator "$ACC" --precision "$PRECS" --nets dpunet \
    --bands linear,erb --steps "$STEPS" --batch "$BATCH" --workers "$WORKERS" --skip-cache --out "$OUT/throughput.md"
LEFT=$(( BUDGET - ($(date +%s) - START) - 45 ))
echo "== training $RECIPE for ${LEFT}s $(date +%T)"
if [ "$LEFT" -gt 30 ]; then
  python3 -m denoiselab.cli.train "experiment=$RECIPE" "shared_data=$DATA" trainer.accelerator="$ACC" \
      trainer.precision="$PREC" "time_budget=$LEFT" trainer.max_steps=-1 model/scheduler=cosine_time "~model.scheduler.total_steps" \
      trainer.max_time=null \
      data.batch_size="$BATCH" data.num_workers="$WORKERS" trainer.val_check_interval=200 \
      trainer.check_val_every_n_epoch=null logger=csv "hydra.run.dir=$OUT/run" ${GPU_OVERRIDES:-} 2>&1 | tail -40
  cp "$OUT/run/train.log" "$OUT/train.log"; cp "$OUT/run/metrics.jsonl" "$OUT/metrics.jsonl"
  cp "$OUT/run/checkpoints/last.ckpt" "$OUT/last.ckpt"
  BEST=$(python3 -c "from denoiselab.core.checkpoints import best_checkpoint; print(best_checkpoint('$OUT/run') or '')")
  [ -n "$BEST" ] && cp "$BEST" "$OUT/best.ckpt"
  rm -rf "$OUT/run"  # what comes back: at most 8 files, two folders deep
fi
echo "== done in $(( $(date +%s) - START ))s"

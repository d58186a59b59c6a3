#!/usr/bin/env bash
# #15's open question on a lent GPU machine: what 5 minutes of experiment=finetune give there. The recipe and
# data split of benchmarks/targeted.py (each type's first 5 dev recordings as the lab's noise, train speech, the
# train noise as the general pool), one fine-tuning run per type, the types side by side on the one GPU (both
# fit in one device call of under 10 minutes); each run's last.ckpt, train.log and metrics.jsonl land in $OUT.
#   here:    python benchmarks/gpu_pack.py --clean-minutes 35 --noise-minutes 15 --finetune-types esc10_chainsaw,esc10_helicopter
#   device:  run(command="bash benchmarks/gpu_finetune.sh", carry=[".gpu"], timeout_s=480)
#   here:    for t in esc10_chainsaw esc10_helicopter; do mkdir -p outputs/bench/gpu_ft/$t;
#              cp FILES_AT/${t}_finetuned.ckpt outputs/bench/gpu_ft/$t/finetuned_5min.ckpt; done
#            python benchmarks/targeted.py --types esc10_chainsaw,esc10_helicopter --minutes 5 --reuse \
#              --out outputs/bench/gpu_ft --generic-noise ../shared/data/train/noise --results targeted_gpu.md \
#              --finetuned-on "an NVIDIA H200 (benchmarks/gpu_finetune.sh; speech and general pool: gpu_pack.py's subsets)"
# (scoring, the peers and the forgetting check run here, on the CPU, exactly as for the CPU runs.)
# FT_TYPES picks the types, FT_SECONDS the budget (300); FT_OVERRIDES adds space-separated overrides.
# On a CPU box, GPU_DRY=1 runs the same steps on the CPU for 20 seconds (a check of the script).
set -euo pipefail
TYPES=${FT_TYPES:-esc10_chainsaw,esc10_helicopter}
SECONDS_EACH=${FT_SECONDS:-300}
ACC=gpu
if [ "${GPU_DRY:-0}" = 1 ]; then ACC=cpu; SECONDS_EACH=${FT_SECONDS:-20}; fi
START=$(date +%s)
source "$(dirname "$0")/_gpu_env.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/machine.txt" 2>/dev/null || echo "no GPU" > "$OUT/machine.txt"
echo "$(nproc) CPU cores" >> "$OUT/machine.txt"
pids=()
for t in ${TYPES//,/ }; do
  noise=$DATA/finetune/$t
  if [ ! -d "$noise" ]; then  # the shared data itself (a dry run here): targeted.py's split, the first 5
    noise=/tmp/dl_finetune/$t; rm -rf "$noise"; mkdir -p "$noise"
    for f in $(ls "$DATA"/dev/noise/"${t}"_*.flac 2>/dev/null | sort | head -5); do ln -s "$(realpath "$f")" "$noise/"; done
  fi
  if [ -z "$(ls "$noise")" ]; then echo "no recordings of $t in $DATA (pack it: gpu_pack.py --finetune-types $t)"; exit 2; fi
  echo "== fine-tuning $t for ${SECONDS_EACH}s on $ACC $(date +%T) ($(ls "$noise" | wc -l) noise files)"
  python3 -m denoiselab.cli.train experiment=finetune init_from=default "data.clean=$DATA/train/clean" \
      "data.noise=$noise" "finetune.generic_noise=$DATA/train/noise" "time_budget=$SECONDS_EACH" \
      trainer.max_time=null trainer.accelerator="$ACC" logger=csv "hydra.run.dir=$OUT/run_$t" \
      ${FT_OVERRIDES:-} > "$OUT/${t}_console.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for t in ${TYPES//,/ }; do
  tail -12 "$OUT/${t}_console.log"
  if [ -f "$OUT/run_$t/checkpoints/last.ckpt" ]; then
    cp "$OUT/run_$t/checkpoints/last.ckpt" "$OUT/${t}_finetuned.ckpt"
    cp "$OUT/run_$t/train.log" "$OUT/${t}_train.log"; cp "$OUT/run_$t/metrics.jsonl" "$OUT/${t}_metrics.jsonl"
  fi
  rm -rf "$OUT/run_$t" "$OUT/${t}_console.log"  # what comes back: a few files, one folder deep
done
echo "== done in $(( $(date +%s) - START ))s"
exit $status

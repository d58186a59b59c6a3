# Sourced by the scripts that run on a lent GPU machine (gpu_train.sh, gpu_finetune.sh): the repository root
# as working folder, the wheels the image lacks from .gpu/wheels (benchmarks/gpu_pack.py), the data from
# .gpu/data (else ../shared/data), offline W&B, a cache outside the tree, progress lines every 20 s.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-outputs/gpu}
mkdir -p "$OUT"
if [ "${GPU_DRY:-0}" != 1 ] && ls .gpu/wheels/*.whl > /dev/null 2>&1; then  # a dry run uses this venv
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/dl_site .gpu/wheels/*.whl
  export PYTHONPATH=/tmp/dl_site:$PWD/src
else
  export PYTHONPATH=${PYTHONPATH:-}:$PWD/src
fi
DATA=${GPU_DATA:-.gpu/data}
[ -d "$DATA" ] || DATA=../shared/data
export WANDB_MODE=offline DENOISELAB_CACHE_DIR=/tmp/dl_cache DENOISELAB_PROGRESS_SECONDS=20

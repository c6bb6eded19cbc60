#!/usr/bin/env bash
# featx GPU checks, one prepared run: extraction vs forward-only, per-backbone speeds, probes.
# Run from the repo root on a CUDA machine. Packages missing there travel as wheels in .whl/
# (see docs/benchmarks.md for the download command); results are also written to $OUT.
set -uo pipefail
DRY_RUN=0; [ "${1:-}" = "--dry-run" ] && DRY_RUN=1  # CPU check of this script: GPU steps are listed, dry-run steps run
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
[ "$DRY_RUN" = 1 ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
[ "$DRY_RUN" = 1 ] || python3 -c "import torch, timm, zarr; print('torch', torch.__version__, 'timm', timm.__version__, 'zarr', zarr.__version__)" | tee -a "$OUT/gpu.txt"

step() {  # name, time limit (s), command...
  local name=$1 limit=$2; shift 2
  if [ "$DRY_RUN" = 1 ]; then echo "=== $name (dry run, not run): $*"; return; fi
  echo "=== $name"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
  echo "=== $name exit ${PIPESTATUS[0]}"
}

step extract 240 python3 benchmarks/extract.py --device cuda --backbones dinov2_vitl14 --size 224 \
  --n 32768 --batch 256 --workers 14 --rss-sizes 2048 8192
# Pixel store -> finished feature store against forward-only, same run and batch size (issue 13 targets:
# >= 0.95 for ViT-L/14 at 224 and 448, >= 0.8 for ViT-S/14 at 224), then the 1024 px 16-bit PNG side-by-side.
step extract-pixels-l14-224 180 python3 benchmarks/extract.py --device cuda --backbones dinov2_vitl14 --size 224 \
  --n 16384 --batch 256 --skip-raw --rss-sizes 0 0
step extract-pixels-l14-448 180 python3 benchmarks/extract.py --device cuda --backbones dinov2_vitl14 --size 448 \
  --n 4096 --batch 64 --skip-raw --rss-sizes 0 0
step extract-pixels-s14-224 150 python3 benchmarks/extract.py --device cuda --backbones dinov2_vits14 --size 224 \
  --n 32768 --batch 512 --skip-raw --rss-sizes 0 0
step extract-png16 300 python3 benchmarks/extract.py --device cuda --backbones dinov2_vits14 dinov2_vitl14 \
  --size 224 --n 512 --batch 256 --workers 14 --skip-raw --rss-sizes 0 0 --png16 2048
step probes 150 python3 benchmarks/probes.py --device cuda
step probes-knn-bf16 60 python3 benchmarks/probes.py --device cuda --knn-dtype bfloat16 --skip linear bootstrap paper
step backbones 120 python3 benchmarks/backbones.py --device cuda --set paper --sizes 224 448 --batch 64 --random-init
step backbones-new 300 python3 benchmarks/backbones.py --device cuda --set new --sizes 224 448 --batch 64 --random-init --check

# fine-tuning per method (linear control, BitFit, LoRA, full): steps/s, images/s, peak memory, parameter table
if [ "$DRY_RUN" = 1 ]; then DRY_RUN=0 step finetune-dry 300 "${PYTHON:-python3}" benchmarks/finetune.py --dry-run; fi
step finetune 300 "${PYTHON:-python3}" benchmarks/finetune.py --device cuda --backbones dinov2_vits14 dinov2_vitl14 --steps 200
step finetune-params 120 "${PYTHON:-python3}" benchmarks/finetune.py --count-only dinov2_vitg14
step segmentation 300 python3 benchmarks/segmentation.py --device cuda --n 256 --grid 32 --dim 1024 --size 448 \
  --unet-dim 1024 --epochs 2 --batch 16 --formats float16 int8

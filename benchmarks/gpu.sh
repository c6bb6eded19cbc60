#!/usr/bin/env bash
# featx GPU checks, one prepared run (issue 17): every speed target that needs an accelerator.
# Run from the repo root on a CUDA machine: `bash benchmarks/gpu.sh` (~8 minutes: each step has its own
# time limit, and the limits sum to 535 s). Packages missing there travel as wheels in .whl/ (see
# docs/benchmarks.md for the download command). Each step's output goes to $OUT/<step>.txt, and a table
# of steps, exit codes and seconds ends the run ($OUT/summary.txt).
# `bash benchmarks/gpu.sh --dry-run` runs every step with --dry-run (tiny sizes, CPU; run by the tests).
set -uo pipefail
DRY_RUN=0; [ "${1:-}" = "--dry-run" ] && DRY_RUN=1
OUT=${OUT:-bench-out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
[ "$DRY_RUN" = 1 ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$PY" -c "import torch, timm, zarr; print('torch', torch.__version__, 'timm', timm.__version__, 'zarr', zarr.__version__)" \
  | tee -a "$OUT/gpu.txt"

SUMMARY=()
step() {  # name, time limit (s), benchmark script and its arguments
  local name=$1 limit=$2; shift 2
  if [ "$DRY_RUN" = 1 ]; then set -- "$@" --dry-run; limit=120; fi
  echo "=== $name"
  local start=$SECONDS
  timeout "$limit" "$PY" "$@" 2>&1 | tee "$OUT/$name.txt"
  local rc=${PIPESTATUS[0]}
  echo "=== $name exit $rc"
  SUMMARY+=("$(printf '%-24s %6s %6ss %6ss' "$name" "$rc" "$((SECONDS - start))" "$limit")")
}

# Extraction end to end vs forward-only (targets: >= 0.95 ViT-L/14 at 224 and 448, >= 0.8 ViT-S/14 at 224),
# with the breakdown (reader alone, writer alone, null model) and host RSS at two sizes; then the
# pixel store -> feature store path per target, and the 1024 px 16-bit PNG side-by-side.
step extract 60 benchmarks/extract.py --device cuda --backbones dinov2_vitl14 --size 224 \
  --n 8192 --batch 256 --workers 14 --rss-sizes 1024 4096
step extract-pixels-l14-224 45 benchmarks/extract.py --device cuda --backbones dinov2_vitl14 --size 224 \
  --n 8192 --batch 256 --skip-raw --rss-sizes 0 0
step extract-pixels-l14-448 45 benchmarks/extract.py --device cuda --backbones dinov2_vitl14 --size 448 \
  --n 2048 --batch 64 --skip-raw --rss-sizes 0 0
step extract-pixels-s14-224 30 benchmarks/extract.py --device cuda --backbones dinov2_vits14 --size 224 \
  --n 16384 --batch 512 --skip-raw --rss-sizes 0 0
step extract-png16 45 benchmarks/extract.py --device cuda --backbones dinov2_vits14 dinov2_vitl14 \
  --size 224 --n 512 --batch 256 --workers 14 --skip-raw --rss-sizes 0 0 --png16 512
# kNN (all k + exact ML-kNN + vote, NIH-sized: <= 1 s) and the 16-configuration linear grid (<= 10 s)
step probes 45 benchmarks/probes.py --device cuda
step probes-knn-bf16 15 benchmarks/probes.py --device cuda --knn-backend torch --knn-dtype bfloat16 \
  --skip linear bootstrap paper
# per-backbone forward-only images/s at 224 and 448 (docs/backbones.md)
step backbones 50 benchmarks/backbones.py --device cuda --set paper --sizes 224 448 --batch 64 --random-init
step backbones-new 50 benchmarks/backbones.py --device cuda --set new --sizes 224 448 --batch 64 --random-init --check
# fine-tuning per method (linear control, BitFit, LoRA, full): steps/s, images/s, peak memory, parameter table
step finetune 60 benchmarks/finetune.py --device cuda --backbones dinov2_vits14 dinov2_vitl14 --steps 100
step finetune-params 15 benchmarks/finetune.py --count-only dinov2_vitg14
# segmentation fine-tuning per method (the probes' U-Net decoder on the last 5 blocks, soft Dice) at 448 px
step finetune-seg 15 benchmarks/finetune.py --device cuda --tasks segmentation --backbones dinov2_vits14 \
  --size 448 --batch 16 --steps 20 --warmup 3
# segmentation decoders: training from the store vs from memory (>= 0.8), fp16 vs int8 bytes and Dice
step segmentation 50 benchmarks/segmentation.py --device cuda --n 96 --grid 32 --dim 1024 --size 448 \
  --unet-dim 1024 --epochs 2 --batch 16 --formats float16 int8
# one 3D encoder (SwinUNETR's Swin-ViT, feature size 48): volumes/s forward-only vs extraction (8 tiles of 96^3 per volume)
step volumes 15 benchmarks/volumes.py --device cuda --backbone swinunetr3d --tile 96 --shape 160 160 160 --n 4 --batch 4

{
  printf '%-24s %6s %7s %7s\n' step exit seconds limit
  printf '%s\n' "${SUMMARY[@]}"
} | tee "$OUT/summary.txt"

#!/usr/bin/env bash
# featx GPU checks, one prepared run: extraction vs forward-only, per-backbone speeds, probes.
# Run from the repo root on a CUDA machine. Packages missing there travel as wheels in .whl/
# (see docs/benchmarks.md for the download command); results are also written to $OUT.
set -uo pipefail
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, timm, zarr; print('torch', torch.__version__, 'timm', timm.__version__, 'zarr', zarr.__version__)" | tee -a "$OUT/gpu.txt"

step() {  # name, time limit (s), command...
  local name=$1 limit=$2; shift 2
  echo "=== $name"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
  echo "=== $name exit ${PIPESTATUS[0]}"
}

step extract 240 python3 benchmarks/extract.py --device cuda --backbone dinov2_vitl14 --size 224 \
  --n 32768 --batch 256 --workers 14 --rss-sizes 2048 8192
step probes 150 python3 benchmarks/probes.py --device cuda
step probes-knn-bf16 60 python3 benchmarks/probes.py --device cuda --knn-dtype bfloat16 --skip linear bootstrap paper
step backbones 120 python3 benchmarks/backbones.py --device cuda --sizes 224 448 --batch 64 --random-init
step segmentation 300 python3 benchmarks/segmentation.py --device cuda --n 256 --grid 32 --dim 1024 --size 448 \
  --unet-dim 1024 --epochs 2 --batch 16 --formats float16 int8

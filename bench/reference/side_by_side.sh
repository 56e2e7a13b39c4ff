#!/usr/bin/env bash
# The SD 1.5 UNet step side by side with diffusers' UNet on PyTorch, alternating, each run a new process: only ratios
# measured in one time window count on a shared machine. PYTHON is an interpreter with torch (see torch_unet_step.py);
# ROUNDS (default 2) rounds of PyTorch-then-ours, then one PyTorch run asked for huge pages (THP_MEM_ALLOC_ENABLE=1).
#   PYTHON=/tmp/tv/bin/python bench/reference/side_by_side.sh 256,512
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
sizes="${1:-256,512}"
python="${PYTHON:-python3}"
for round in $(seq 1 "${ROUNDS:-2}"); do
  echo "=== round $round: PyTorch, its defaults ($(date -u +%H:%M:%S) UTC)"
  "$python" bench/reference/torch_unet_step.py --sizes "$sizes" --repeats 2 | grep -E "^torch|^UNet step"
  echo "=== round $round: this project ($(date -u +%H:%M:%S) UTC)"
  ./perfusion bench --sizes "$sizes" --repeats 2 --skip-load --skip-vae | grep -E "^\| (threads|fp32 matmul|UNet step)"
done
echo "=== PyTorch with THP_MEM_ALLOC_ENABLE=1 ($(date -u +%H:%M:%S) UTC)"
THP_MEM_ALLOC_ENABLE=1 "$python" bench/reference/torch_unet_step.py --sizes "$sizes" --repeats 2 | grep -E "^UNet step"

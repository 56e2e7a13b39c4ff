#!/usr/bin/env bash
# The SD 1.5 guided step side by side with stable-diffusion.cpp (ggml), alternating, each run a new process: only
# ratios measured in one time window count on a shared machine. SDCPP is its sd-cli, built from its sources (cmake
# -DSD_WEBP=OFF -DSD_WEBM=OFF -DGGML_NATIVE=ON); MODEL a single-file SD 1.5 checkpoint, e.g. the benchmark's own
# random weights: ./perfusion bench --save-model MODEL.safetensors (fp16, the original layout).
# Each sd-cli run draws 3 guided Euler steps (one step = the UNet on the prompt and on the empty prompt, as our
# "batch 2" step); its per-step seconds are printed as "s/it" (the first step includes its graph's set-up).
#   SDCPP=/path/to/sd-cli MODEL=sd15.safetensors bench/reference/sdcpp_side_by_side.sh 256,512
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
sizes="${1:-256,512}"
: "${SDCPP:?set SDCPP to the sd-cli of stable-diffusion.cpp}" "${MODEL:?set MODEL to a single-file SD 1.5 .safetensors}"
threads="$(nproc)"
for round in $(seq 1 "${ROUNDS:-2}"); do
  for size in ${sizes//,/ }; do
    for type in f16 f32; do
      echo "=== round $round: stable-diffusion.cpp ${size}x${size}, $type weights ($(date -u +%H:%M:%S) UTC)"
      "$SDCPP" -m "$MODEL" --type "$type" -p "a photo of a cat" -W "$size" -H "$size" --steps 3 --cfg-scale 7 -s 42 \
        -t "$threads" -o "${TMPDIR:-/tmp}/sdcpp-side-by-side.png" 2>&1 | tr '\r' '\n' | grep -oE "[0-9]+/3 - [0-9.]+s/it" | sort -u
    done
  done
  echo "=== round $round: this project ($(date -u +%H:%M:%S) UTC)"
  ./perfusion bench --sizes "$sizes" --repeats 2 --skip-load --skip-vae | grep -E "^\| (threads|fp32 matmul|UNet step)"
done

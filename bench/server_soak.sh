#!/usr/bin/env bash
# The web app over a long session: TRAININGS concept trainings (the shipped my-teddy photos, TRAIN_STEPS steps each)
# and then GENERATIONS generation jobs (with and without a concept, beta sweeps, side-steered pairs), one after
# another, printing the server's resident memory after each training and every 25 generations. Memory that grows
# with every job is a leak; memory that levels off is the process's working set.
#   bench/server_soak.sh                      (8 trainings of 100 steps, 200 generations of 10 steps)
#   TRAININGS=16 GENERATIONS=1000 PORT=7871 bench/server_soak.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
port="${PORT:-7871}"
api="http://127.0.0.1:$port/api"
work="$(mktemp -d)"
mkdir -p "$work/concepts" && cp models/concepts/*.safetensors "$work/concepts/"
./perfusion serve --port "$port" --concepts "$work/concepts" --outputs "$work/outputs" > "$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do curl -sf "$api/health" > /dev/null && break; sleep 0.5; done

resident() { curl -s "$api/health" | jq -r .residentMiB; }
finish() { # waits for job $1; prints its state
  local state
  while true; do
    state=$(curl -s "$api/jobs/$1" | jq -r .state)
    [[ $state == done || $state == failed || $state == cancelled ]] && { echo "$state"; return; }
    sleep 0.2
  done
}

echo "started: resident $(resident) MiB"
for i in $(seq 1 "${TRAININGS:-8}"); do
  id=$(curl -s -X POST "$api/train" -F "word=my-soak$i" -F supercategory=teddy -F "trainSteps=${TRAIN_STEPS:-100}" -F examples=my-teddy | jq -r .id)
  echo "training $i: $(finish "$id"), resident $(resident) MiB"
done
prompts=("a photo of a my-cat on the grass" "a my-cat on the left and a dog on the right" "a my-cat in the snow" "a teddy on the beach")
for i in $(seq 0 $(( ${GENERATIONS:-200} - 1 ))); do
  prompt="${prompts[$(( i % 4 ))]}"
  concepts='[{"name": "my-cat", "beta": 0.'$(( 5 + i % 5 ))'}]'
  [[ $prompt == "a teddy on the beach" ]] && concepts='[]'
  sweep='null'
  [[ $(( i % 10 )) == 5 && $concepts != '[]' ]] && sweep='[0.5, 0.7, 0.9]'
  id=$(curl -s -X POST "$api/generate" -H 'Content-Type: application/json' \
    -d "{\"prompt\": \"$prompt\", \"seed\": $i, \"steps\": 10, \"concepts\": $concepts, \"sweep\": $sweep}" | jq -r .id)
  state=$(finish "$id")
  [[ $state == done ]] || echo "generation $i: $state"
  (( (i + 1) % 25 == 0 )) && echo "generations $(( i + 1 )): resident $(resident) MiB"
done
true

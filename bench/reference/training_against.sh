#!/usr/bin/env bash
# Training speed like for like: the code at REV against this checkout, both on REV's bundled model and recipe,
# alternating, each run a new process (only ratios measured in one time window count on a shared machine). REV is
# checked out into a temporary git worktree and built there; this checkout runs `bench --training --model` on REV's
# models/world, in fp32 and in bf16 mixed precision (the older code has fp32 only).
#   bench/reference/training_against.sh 9e54e1f        (the code before training ran side by side)
#   ROUNDS=2 STEPS=100 (concept training steps and pretraining steps per run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rev="${1:?usage: bench/reference/training_against.sh REV}"
steps="${STEPS:-100}"
tmp="$(mktemp -d)"
old="$tmp/$rev"
git worktree add --detach "$old" "$rev" >/dev/null
trap 'git worktree remove --force "$old"; rm -rf "$tmp"' EXIT
(cd "$old" && mvn -q -B -DskipTests package && touch target/.built)
./perfusion --version >/dev/null # builds this checkout once, outside the count
rates='^\| (fp32 matmul|.*steps/s|.*pictures/s)'
for round in $(seq 1 "${ROUNDS:-2}"); do
  echo "=== round $round: $rev ($(date -u +%H:%M:%S) UTC)"
  (cd "$old" && ./perfusion bench --training --train-steps "$steps" --pretrain-steps "$steps") | grep -E "$rates"
  for precision in fp32 bf16; do
    echo "=== round $round: this checkout on $rev's model, $precision ($(date -u +%H:%M:%S) UTC)"
    ./perfusion bench --training --model "$old/models/world" --precision "$precision" --train-steps "$steps" --pretrain-steps "$steps" | grep -E "$rates"
  done
done

#!/usr/bin/env bash
# Linear vs Fourier (N = 8, 16) vs mixture action heads for the Decision Transformer on native continuous-control
# datasets, 3 seeds each; writes runs/experiment/table.md. Restartable: datasets and runs resume.
#
# Usage: scripts/dt_experiment.sh [TASK...]   TASK = env:preset, default Pendulum-v1:medium MountainCarContinuous-v0:medium
#        JOBS=2 (runs in parallel), SEEDS="0 1 2", FRL=path/to/frl (default: release build)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
FRL="${FRL:-$CARGO_TARGET_DIR/release/frl}"
JOBS="${JOBS:-2}"
SEEDS="${SEEDS:-0 1 2}"
OUT=runs/experiment
TASKS=("$@")
[ ${#TASKS[@]} -gt 0 ] || TASKS=(Pendulum-v1:medium MountainCarContinuous-v0:medium)
HEADS=('"linear"' '{ fourier = { frequencies = 8 } }' '{ fourier = { frequencies = 16 } }' '{ mixture = { components = 4 } }')
SLUGS=(linear fourier-N8 fourier-N16 gmm-K4)

[ -x "$FRL" ] || cargo build --release
mkdir -p "$OUT/jobs"
: > "$OUT/jobs.txt"
for task in "${TASKS[@]}"; do
  env="${task%%:*}"; preset="${task##*:}"
  data="data/experiment/$env-$preset"
  "$FRL" collect --quiet --env "$env" --preset "$preset" --episodes 200 --actors 2 --seed 0 --out "$data" >/dev/null
  for i in "${!HEADS[@]}"; do
    for seed in $SEEDS; do
      name="$env-$preset-${SLUGS[$i]}-seed$seed"
      job="$OUT/jobs/$name.toml"
      sed -e "s|^name = .*|name = \"$name\"|" -e "s|^dataset = .*|dataset = \"$data\"|" -e "s|^seed = .*|seed = $seed|" \
        configs/dt-experiment.toml > "$job"
      printf 'head = %s\n' "${HEADS[$i]}" > "$job.head"
      # `head` belongs to [dt]: insert it right after the table header.
      awk -v h="$(cat "$job.head")" '{print} /^\[dt\]$/ {print h}' "$job" > "$job.tmp" && mv "$job.tmp" "$job"
      rm "$job.head"
      echo "$job" >> "$OUT/jobs.txt"
    done
  done
done
xargs -P "$JOBS" -I{} sh -c '"$0" train "$1" --resume --quiet > "$1.log" 2>&1 || echo "FAILED: $1 (see $1.log)"' "$FRL" {} < "$OUT/jobs.txt"
python3 scripts/dt_table.py "$OUT" | tee "$OUT/table.md"

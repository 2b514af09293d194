#!/usr/bin/env bash
# Agents × action heads on native datasets: {dt, bc, iql} × {linear, Fourier N = 8, mixture K = 4}, 3 seeds each;
# writes runs/agents/table.md. Restartable: datasets and runs resume.
#
# Usage: scripts/agents_experiment.sh [TASK...]   TASK = env:preset, default Pendulum-v1:medium Pendulum-v1:mixed
#          MountainCarContinuous-v0:medium Acrobot-v1:mixed
#        AGENTS="dt bc iql", SEEDS="0 1 2", JOBS=2 (runs in parallel), FRL=path/to/frl (default: release build)
# Each agent's job is configs/<agent>-experiment.toml with name, dataset, seed and head filled in.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
FRL="${FRL:-$CARGO_TARGET_DIR/release/frl}"
JOBS="${JOBS:-2}"
SEEDS="${SEEDS:-0 1 2}"
AGENTS="${AGENTS:-dt bc iql}"
OUT=runs/agents
TASKS=("$@")
[ ${#TASKS[@]} -gt 0 ] || TASKS=(Pendulum-v1:medium Pendulum-v1:mixed MountainCarContinuous-v0:medium Acrobot-v1:mixed)
HEADS=('"linear"' '{ fourier = { frequencies = 8 } }' '{ mixture = { components = 4 } }')
SLUGS=(linear fourier-N8 gmm-K4)

[ -x "$FRL" ] || cargo build --release
mkdir -p "$OUT/jobs"
: > "$OUT/jobs.txt"
for task in "${TASKS[@]}"; do
  env="${task%%:*}"; preset="${task##*:}"
  data="data/experiment/$env-$preset"
  "$FRL" collect --quiet --env "$env" --preset "$preset" --episodes 200 --actors 2 --seed 0 --out "$data" >/dev/null
  for agent in $AGENTS; do
    for i in "${!HEADS[@]}"; do
      for seed in $SEEDS; do
        name="$env-$preset-$agent-${SLUGS[$i]}-seed$seed"
        job="$OUT/jobs/$name.toml"
        # The head goes right after the agent's section header; any head line of the template is dropped.
        sed -e "s|^name = .*|name = \"$name\"|" -e "s|^dataset = .*|dataset = \"$data\"|" -e "s|^seed = .*|seed = $seed|" \
          -e "s|^runs_dir = .*|runs_dir = \"$OUT\"|" -e '/^head = /d' "configs/$agent-experiment.toml" |
          awk -v h="head = ${HEADS[$i]}" -v s="[$agent]" '{print} $0 == s {print h}' > "$job"
        echo "$job" >> "$OUT/jobs.txt"
      done
    done
  done
done
xargs -P "$JOBS" -I{} sh -c '"$0" train "$1" --resume --quiet > "$1.log" 2>&1 || echo "FAILED: $1 (see $1.log)"' "$FRL" {} < "$OUT/jobs.txt"
python3 scripts/agents_table.py "$OUT" | tee "$OUT/table.md"

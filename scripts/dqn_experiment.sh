#!/usr/bin/env bash
# Online DQN with the return distribution as any head: {CartPole-v1, Acrobot-v1} × {linear (C51), Fourier} × seeds,
# each from configs/dqn-cartpole.toml with name, seed, env and head filled in; writes runs/online/table.md.
# Restartable: every run resumes from its newest checkpoint.
#
# Usage: scripts/dqn_experiment.sh [ENV...]   default CartPole-v1 Acrobot-v1
#        SEEDS="0 1 2", JOBS=1 (runs in parallel; each run uses an actor thread and the learner), FRL=path/to/frl
#        ENV_STEPS=N overrides the budget of every run; OUT=DIR (default runs/online) holds the runs; PYTHON=python
#        with the tensorboard package adds the best evaluation during training to the table; runs with
#        eval.keep_best also get their best checkpoint evaluated on 100 new episodes (seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
FRL="${FRL:-$CARGO_TARGET_DIR/release/frl}"
JOBS="${JOBS:-1}"
SEEDS="${SEEDS:-0 1 2}"
OUT="${OUT:-runs/online}"
ENVS=("$@")
[ ${#ENVS[@]} -gt 0 ] || ENVS=(CartPole-v1 Acrobot-v1)
HEADS=('"linear"' '{ fourier = { frequencies = 16 } }')
SLUGS=(linear fourier-N16)

[ -x "$FRL" ] || cargo build --release
mkdir -p "$OUT/jobs"
: > "$OUT/jobs.txt"
for env in "${ENVS[@]}"; do
  for i in "${!HEADS[@]}"; do
    for seed in $SEEDS; do
      name="$env-dqn-${SLUGS[$i]}-seed$seed"
      job="$OUT/jobs/$name.toml"
      sed -e "s|^name = .*|name = \"$name\"|" -e "s|^seed = .*|seed = $seed|" -e "s|^env = .*|env = \"$env\"|" \
        -e "s|^runs_dir = .*|runs_dir = \"$OUT\"|" -e "s|^head = .*|head = ${HEADS[$i]}|" \
        ${ENV_STEPS:+-e "s|^env_steps = .*|env_steps = $ENV_STEPS|"} configs/dqn-cartpole.toml > "$job"
      echo "$job" >> "$OUT/jobs.txt"
    done
  done
done
xargs -P "$JOBS" -I{} sh -c '"$0" train "$1" --resume --quiet > "$1.log" 2>&1 || echo "FAILED: $1 (see $1.log)"' "$FRL" {} < "$OUT/jobs.txt"
# The best checkpoint of each run (eval.keep_best), evaluated on 100 episodes other than the ones it was selected on.
while read -r job; do
  run="$OUT/$(basename "$job" .toml)"
  best="$run/checkpoints/best.safetensors"
  if [ -f "$best" ] && [ ! -f "$run/best_eval.json" ]; then
    "$FRL" eval --checkpoint "$best" --episodes 100 --seed 7 --json > "$run/best_eval.json.tmp" &&
      mv "$run/best_eval.json.tmp" "$run/best_eval.json"
  fi
done < "$OUT/jobs.txt"
"${PYTHON:-python3}" scripts/dqn_table.py "$OUT" | tee "$OUT/table.md"

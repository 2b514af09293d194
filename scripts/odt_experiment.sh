#!/usr/bin/env bash
# Online Decision Transformer on Pendulum-v1 `mixed` data: for each head × seed, the offline DT of
# configs/dt-experiment.toml (the head comparison's runs, reproduced bit for bit), then online fine-tuning from its
# final checkpoint with configs/odt-pendulum.toml; writes runs/odt/table.md (returns before and after).
# Restartable: the dataset, the offline runs and the online runs all resume.
#
# Usage: scripts/odt_experiment.sh      SEEDS="0 1 2", JOBS=2 (runs in parallel), FRL=path/to/frl (default: release
#        build), ENV_STEPS=N overrides the online budget, OUT=DIR (default runs/odt)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
FRL="${FRL:-$CARGO_TARGET_DIR/release/frl}"
JOBS="${JOBS:-2}"
SEEDS="${SEEDS:-0 1 2}"
OUT="${OUT:-runs/odt}"
DATA=data/odt/Pendulum-v1-mixed
HEADS=('"linear"' '{ fourier = { frequencies = 8 } }')
SLUGS=(linear fourier-N8)

[ -x "$FRL" ] || cargo build --release
mkdir -p "$OUT/jobs"
"$FRL" collect --quiet --env Pendulum-v1 --preset mixed --episodes 200 --actors 2 --seed 0 --out "$DATA" >/dev/null
: > "$OUT/pretrain.txt"
: > "$OUT/online.txt"
for i in "${!HEADS[@]}"; do
  for seed in $SEEDS; do
    name="Pendulum-v1-mixed-${SLUGS[$i]}-seed$seed"
    pre="$OUT/jobs/pretrain-$name.toml"
    sed -e "s|^name = .*|name = \"$name\"|" -e "s|^dataset = .*|dataset = \"$DATA\"|" -e "s|^seed = .*|seed = $seed|" \
      -e "s|^runs_dir = .*|runs_dir = \"$OUT/pretrain\"|" configs/dt-experiment.toml |
      awk -v h="head = ${HEADS[$i]}" '{print} /^\[dt\]$/ {print h}' > "$pre"
    echo "$pre" >> "$OUT/pretrain.txt"
    sed -e "s|^name = .*|name = \"$name\"|" -e "s|^dataset = .*|dataset = \"$DATA\"|" -e "s|^seed = .*|seed = $seed|" \
      -e "s|^runs_dir = .*|runs_dir = \"$OUT/online\"|" -e "s|^head = .*|head = ${HEADS[$i]}|" \
      -e "s|^init = .*|init = \"$OUT/pretrain/$name\"|" \
      ${ENV_STEPS:+-e "s|^env_steps = .*|env_steps = $ENV_STEPS|"} configs/odt-pendulum.toml > "$OUT/jobs/online-$name.toml"
    echo "$OUT/jobs/online-$name.toml" >> "$OUT/online.txt"
  done
done
for phase in pretrain online; do
  xargs -P "$JOBS" -I{} sh -c '"$0" train "$1" --resume --quiet > "$1.log" 2>&1 || echo "FAILED: $1 (see $1.log)"' \
    "$FRL" {} < "$OUT/$phase.txt"
done
python3 scripts/odt_table.py "$OUT" | tee "$OUT/table.md"

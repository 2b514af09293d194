#!/usr/bin/env bash
# Trains configs/dqn-seaquest-ram.toml (DQN on Seaquest RAM, every episode recorded) for at most MINUTES minutes,
# resuming the run when it has checkpoints, then writes its learning curve and the recording's returns to
# results/seaquest/ (scripts/seaquest_report.py). Run it again to continue; Ctrl-C saves a checkpoint.
#
#   scripts/seaquest_dqn.sh [MINUTES]        (default 60; needs frl built with --features python)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-60}"
venv="${FRL_VENV:-$HOME/.cache/frl-venv}"
export PYTHONEXECUTABLE="$venv/bin/python"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
PYO3_PYTHON="$venv/bin/python" cargo build --release --features python --bin frl
frl="$CARGO_TARGET_DIR/release/frl"
job=configs/dqn-seaquest-ram.toml
run=runs/seaquest/dqn-seaquest-ram
resume=()
if ls "$run"/checkpoints/ckpt-*.safetensors >/dev/null 2>&1; then
  resume=(--resume)
fi
# SIGINT at the time limit: the run saves a checkpoint and exits with 130.
status=0
timeout -s INT "${minutes}m" "$frl" train "$job" --quiet "${resume[@]}" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 130 ] && [ "$status" -ne 124 ]; then
  exit "$status"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check matplotlib
subset=()
[ -f runs/seaquest/replay-500k/metadata.json ] && subset=(--subset runs/seaquest/replay-500k)
"$venv/bin/python" scripts/seaquest_report.py "$run" --out results/seaquest "${subset[@]}"

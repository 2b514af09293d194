#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: Python fixtures (venv with numpy, scipy, gymnasium, safetensors),
# every Rust test, then the Python-side dataset check.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
venv="${FRL_VENV:-$HOME/.cache/frl-venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt

# Fixtures computed by the reference implementations we compare against.
"$venv/bin/python" scripts/gen_smoothness_fixtures.py
"$venv/bin/python" scripts/gen_env_fixtures.py
"$venv/bin/python" scripts/gen_minari_fixtures.py

cargo test --workspace --all-targets

# Datasets written by the frl binary, read back with numpy + safetensors and replayed in Gymnasium.
"$venv/bin/python" scripts/check_datasets.py "$CARGO_TARGET_DIR/debug/frl"

# A training run written by the frl binary, read back with TensorBoard's EventAccumulator.
"$venv/bin/python" scripts/check_tensorboard.py "$CARGO_TARGET_DIR/debug/frl"

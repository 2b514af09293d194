#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: Python fixtures (venv with numpy + scipy), then every Rust test.
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

cargo test --workspace --all-targets

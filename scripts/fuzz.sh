#!/usr/bin/env bash
# Every reader's fuzz test with about 100× the cases CI runs (one count for every format: CI runs 300–3000 each),
# from a seed beyond CI's so new inputs are tried. A failing input is saved under
# $CARGO_TARGET_DIR/fuzz-failures/; copy it into the format's tests/fixtures/fuzz/<format>/ to keep it as a regression.
#
# Usage: scripts/fuzz.sh        CASES=N (default 150000 per format), SEED=N (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
export FRL_FUZZ_CASES="${CASES:-150000}" FRL_FUZZ_SEED="${SEED:-1000000}"
cargo test -p frl-learner --test checkpoint fuzzed
cargo test -p frl-dataset --test fuzz
cargo test -p frl-agents --test fuzz
cargo test -p frl-forecast --test fuzz

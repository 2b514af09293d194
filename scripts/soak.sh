#!/usr/bin/env bash
# The soaked online loop for minutes instead of CI's 24 s: online C51 on a CartPole whose actors panic, fail and
# stall on schedule, interrupted with SIGINT at random moments and resumed; prints duration, interrupts and the
# slowest exit, failures injected and counted, and peak RSS beside the replay capacity.
#
# Usage: scripts/soak.sh        SECONDS_=N (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
FRL_SOAK_SECONDS="${SECONDS_:-300}" cargo test --test soak -- --nocapture

#!/usr/bin/env bash
# Writes agents/tests/fixtures/dt-v1/: a Decision Transformer checkpoint in checkpoint format version 1 (the layout
# before agents became plug-ins), the job that trained it and its evaluation. It needs an frl binary of that layout
# (commit a97f1bb or older): FRL=/path/to/old/frl scripts/gen_dt_v1_fixture.sh. Tests load the checkpoint with
# today's code and compare its evaluation, and retrain the same job to compare every parameter.
set -euo pipefail
frl="${FRL:?set FRL to an frl binary that writes version 1 checkpoints}"
out="$(cd "$(dirname "$0")/.." && pwd)/agents/tests/fixtures/dt-v1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
"$frl" collect --quiet --env Pendulum-v1 --preset medium --episodes 3 --out data
cp "$out/job.toml" job.toml
"$frl" train job.toml --quiet
"$frl" eval --checkpoint runs/dt-v1/checkpoints/ckpt-00000006.safetensors --json --episodes 2 --actors 1 > eval.json
cp runs/dt-v1/checkpoints/ckpt-00000006.safetensors eval.json "$out/"

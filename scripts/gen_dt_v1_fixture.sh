#!/usr/bin/env bash
# Writes agents/tests/fixtures/dt-v1/: a Decision Transformer checkpoint in checkpoint format version 1 (the layout
# before agents became plug-ins), the job that trained it and its evaluation. It needs an frl binary of that layout
# (commit a97f1bb or older): FRL=/path/to/old/frl scripts/gen_dt_v1_fixture.sh. Tests load the checkpoint with
# today's code and compare its evaluation, and retrain the same job to compare every parameter.
#
# That checkpoint was trained where burn's matrix products ran gemm's AVX2 kernel. On a CPU with AVX-512, gemm's
# AVX-512 kernel rounds differently, so there the retraining test compares against the same job retrained by today's
# learner on such a CPU: `scripts/gen_dt_v1_fixture.sh --retrained-avx512` writes retrained-avx512.safetensors (run
# it only after a change meant to alter training's numbers, and say so in the commit).
set -euo pipefail
if [ "${1:-}" = "--retrained-avx512" ]; then
  cd "$(dirname "$0")/.."
  grep -qw avx512f /proc/cpuinfo || { echo "this CPU has no AVX-512" >&2; exit 1; }
  FRL_BLESS_RETRAINED=1 cargo test -p frl-agents --test learner retraining_the_version_1_job_gives_the_same_bits
  exit 0
fi
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

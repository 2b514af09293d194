#!/usr/bin/env bash
# Writes agents/tests/fixtures/dt-v1/: a Decision Transformer checkpoint in checkpoint format version 1 (the layout
# before agents became plug-ins), the job that trained it and its evaluation. It needs an frl binary of that layout
# (commit a97f1bb or older): FRL=/path/to/old/frl scripts/gen_dt_v1_fixture.sh. Tests load the checkpoint with
# today's code and compare its evaluation, and retrain the same job to compare every parameter.
#
# Tests no longer compare a retraining with that checkpoint (the DT's dropout masks have since moved from burn's
# sampler to the host), but with the same job retrained by today's learner: `--retrained-avx512` writes
# retrained-avx512.safetensors on a CPU with AVX-512 (gemm's AVX-512 kernel), `--retrained-avx2` writes
# retrained-avx2.safetensors from a build without gemm's AVX-512 kernels (pins/Cargo.toml without `x86-v4`, in a
# separate target directory), which rounds as AVX2-only CPUs do. Run them only after a change meant to alter
# training's numbers, and say so in the commit.
set -euo pipefail
if [ "${1:-}" = "--retrained-avx512" ]; then
  cd "$(dirname "$0")/.."
  grep -qw avx512f /proc/cpuinfo || { echo "this CPU has no AVX-512" >&2; exit 1; }
  FRL_BLESS_RETRAINED=1 cargo test -p frl-agents --test learner retraining_the_version_1_job_gives_the_same_bits
  exit 0
fi
if [ "${1:-}" = "--retrained-avx2" ]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  git -C "$root" ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$work")
  sed -i 's/features = \["x86-v4"\]/features = []/' "$work/pins/Cargo.toml"
  grep -q 'x86-v4' "$work/pins/Cargo.toml" && { echo "could not drop x86-v4 from pins/Cargo.toml" >&2; exit 1; }
  (cd "$work" && CARGO_TARGET_DIR="${AVX2_TARGET_DIR:-$HOME/.cache/frl-target-avx2}" FRL_GEMM_KERNEL=avx2 \
    FRL_BLESS_RETRAINED=1 cargo test -p frl-agents --test learner retraining_the_version_1_job_gives_the_same_bits)
  cp "$work/agents/tests/fixtures/dt-v1/retrained-avx2.safetensors" "$root/agents/tests/fixtures/dt-v1/"
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

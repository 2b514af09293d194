#!/usr/bin/env bash
# The Decision Transformer on frl's Seaquest replay (configs/dt-seaquest-ram.toml): the linear head against Fourier
# heads with N = 8 and 14, the paper's four seeds each, under one protocol; then the table (best and last epoch, raw
# and normalised) in results/seaquest/dt.md. The chain's last stages: the replay subset is drawn from the DQN's
# recording when it is missing (`frl dataset subsample`; the recording comes from scripts/seaquest_dqn.sh), then every
# run trains or resumes from its checkpoints. Run it again after Ctrl-C or a kill: finished runs are kept, the others
# continue.
#
#   scripts/seaquest_dt.sh        HEADS="linear fourier-N8 fourier-N14" SEEDS="123 231 312 42" JOBS=2 (runs at once)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${FRL_VENV:-$HOME/.cache/frl-venv}"
export PYTHONEXECUTABLE="$venv/bin/python"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
HEADS="${HEADS:-linear fourier-N8 fourier-N14}"
SEEDS="${SEEDS:-123 231 312 42}"
JOBS="${JOBS:-2}"
job=configs/dt-seaquest-ram.toml
runs=runs/seaquest/dt
data=runs/seaquest/replay-500k
PYO3_PYTHON="$venv/bin/python" cargo build --release --features python --bin frl
frl="$CARGO_TARGET_DIR/release/frl"

if [ ! -f "$data/metadata.json" ]; then
  "$frl" dataset subsample runs/seaquest/dqn-seaquest-ram/episodes --out "$data" --steps 500000 --seed 0
fi

mkdir -p "$runs"
list="$runs/runs.txt"
: > "$list"
for seed in $SEEDS; do
  for head in $HEADS; do
    case "$head" in
      linear) spec='"linear"' ;;
      fourier-N*) spec="{ fourier = { frequencies = ${head#fourier-N} } }" ;;
      *) echo "unknown head $head (linear or fourier-N<frequencies>)" >&2; exit 2 ;;
    esac
    printf '%s\t%s\t%s\n' "seaquest-$head-seed$seed" "$seed" "$spec" >> "$list"
  done
done

# One run: trains, or resumes from its checkpoints; a finished run only prints its summary again.
one() {
  local name="$1" seed="$2" spec="$3" resume=()
  ls "$runs/$name"/checkpoints/ckpt-*.safetensors >/dev/null 2>&1 && resume=(--resume)
  "$frl" train "$job" --quiet --set "name=\"$name\"" --set "seed=$seed" --set "dt.head=$spec" "${resume[@]}" \
    > "$runs/$name.log" 2>&1 || { echo "FAILED: $name (see $runs/$name.log)"; return 1; }
  tail -1 "$runs/$name.log"
}
export -f one
export frl job runs
status=0
tr '\n' '\0' < "$list" | xargs -0 -P "$JOBS" -I{} bash -c 'IFS=$'"'"'\t'"'"' read -r n s h <<< "$1"; one "$n" "$s" "$h"' _ {} \
  || status=$?
"$venv/bin/python" scripts/seaquest_dt_table.py "$runs" --out results/seaquest/dt.md
exit "$status"

#!/usr/bin/env bash
# PPO on a MuJoCo env through Gymnasium (default HalfCheetah-v5), 1M env steps: the Gaussian policy with CleanRL's
# settings (configs/ppo-halfcheetah-gaussian.toml) and with time limits bootstrapped, then heads over action bins
# (linear 11 bins, Fourier N = 4 / 21 bins and N = 8 / 41 bins, mixture K = 2 / 21 bins, time limits bootstrapped),
# SEEDS each; then the learning curves (<results>/<env>.png) and the table (<results>/<env>.md). Finished runs are
# kept: run it again after Ctrl-C or a kill. CleanRL's own script runs beside it with scripts/cleanrl_ppo_continuous.sh;
# CLEANRL_LOGS="log1,log2" adds those runs' curves.
#
#   scripts/ppo_experiment.sh [ENV]        SEEDS="1 2 3", JOBS=1 (runs at once), ONLY="gaussian linear11 ..." (a subset),
#                                          ENV_STEPS=1000000, RUNS=runs/ppo-<env>, RESULTS=results/ppo
set -euo pipefail
cd "$(dirname "$0")/.."
env_id="${1:-HalfCheetah-v5}"
venv="${FRL_VENV:-$HOME/.cache/frl-venv}"
export PYTHONEXECUTABLE="$venv/bin/python"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
SEEDS="${SEEDS:-1 2 3}"
JOBS="${JOBS:-1}"
ONLY="${ONLY:-gaussian-cleanrl gaussian linear11 fourier4-21 fourier8-41 mixture2-21}"
job=configs/ppo-halfcheetah-gaussian.toml
runs="${RUNS:-runs/ppo-${env_id,,}}"
results="${RESULTS:-results/ppo}"
env_steps="${ENV_STEPS:-1000000}"
PYO3_PYTHON="$venv/bin/python" cargo build --release --features python --bin frl
frl="$CARGO_TARGET_DIR/release/frl"

# variant, its label, its --set overrides ("|" between them); time limits are bootstrapped but for CleanRL's settings
boot="ppo.bootstrap_time_limits=true"
bins="$boot|ppo.distribution=\"bins\""
variants="gaussian-cleanrl	Gaussian, CleanRL's settings	
gaussian	Gaussian, time limits bootstrapped	$boot
linear11	linear (categorical), 11 bins	$bins|ppo.bins=11
fourier4-21	Fourier N=4, 21 bins	$bins|ppo.bins=21|ppo.head={ fourier = { frequencies = 4 } }
fourier8-41	Fourier N=8, 41 bins	$bins|ppo.bins=41|ppo.head={ fourier = { frequencies = 8 } }
mixture2-21	mixture K=2, 21 bins	$bins|ppo.bins=21|ppo.head={ mixture = { components = 2 } }"
field() {  # field VARIANT N: the variant's N-th column
  local out
  out=$(awk -F'\t' -v v="$1" -v f="$2" '$1 == v { print $f; found = 1 } END { exit !found }' <<< "$variants") \
    || { echo "unknown variant $1" >&2; return 2; }
  printf '%s' "$out"
}

mkdir -p "$runs"
list="$runs/runs.txt"
: > "$list"
for seed in $SEEDS; do
  for v in $ONLY; do
    sets=$(field "$v" 3)
    printf '%s\t%s\t%s\n' "$v-s$seed" "$seed" "$sets" >> "$list"
  done
done
one() {
  local name="$1" seed="$2" sets="$3" args=()
  [ -f "$runs/$name/summary.json" ] && { echo "$name: finished"; return 0; }
  rm -rf "${runs:?}/$name"   # an online run restarts from its beginning (its envs' episodes in flight are not saved)
  IFS='|' read -ra parts <<< "$sets"
  for p in "${parts[@]}"; do [ -n "$p" ] && args+=(--set "$p"); done
  "$frl" train "$job" --quiet --set "name=\"$name\"" --set "runs_dir=\"$runs\"" --set "seed=$seed" \
    --set "online.env=\"gym:$env_id\"" \
    --set "online.env_steps=$env_steps" "${args[@]}" > "$runs/$name.log" 2>&1 \
    || { echo "FAILED: $name (see $runs/$name.log)"; return 1; }
  tail -1 "$runs/$name.log"
}
export -f one
export frl job runs env_id env_steps
status=0
tr '\n' '\0' < "$list" | xargs -0 -P "$JOBS" -I{} bash -c 'IFS=$'"'"'\t'"'"' read -r n s x <<< "$1"; one "$n" "$s" "$x"' _ {} \
  || status=$?
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check matplotlib
"$venv/bin/python" scripts/ppo_table.py "$runs" --out "$results/${env_id}.md"
groups=()
for v in $ONLY; do
  dirs=$(for s in $SEEDS; do [ -f "$runs/$v-s$s/summary.json" ] && printf '%s,' "$runs/$v-s$s"; done)
  [ -n "$dirs" ] && groups+=("$(field "$v" 2)=${dirs%,}")
done
cleanrl=()
[ -n "${CLEANRL_LOGS:-}" ] && cleanrl=(--cleanrl "CleanRL ppo_continuous_action.py=$CLEANRL_LOGS")
"$venv/bin/python" scripts/ppo_curves.py --out "$results/${env_id}.png" --title "PPO on $env_id" "${groups[@]}" \
  "${cleanrl[@]}"
exit "$status"

#!/usr/bin/env bash
# The forecasting table: {linear, Fourier N=64 and N=256, mixture} heads × {mixed, uniform} bins × seeds, each from
# configs/forecast.toml with name, seed, head and bins filled in, trained, then scored zero-shot on the evaluation
# datasets beside seasonal naive (eval.json per run); writes $OUT/table.md.
# Restartable: a run resumes from its newest checkpoint, and a run with an eval.json is not evaluated again. Runs go
# seed by seed, so a partial table has every head of the first seeds.
#
# Usage: scripts/forecast_experiment.sh      SEEDS="0 1 2", OUT=DIR (default runs/forecast), FRL=path/to/frl,
#        ONLY="slug ..." (a subset of the settings), STEPS=N (overrides train.steps), SAMPLES=N (sample paths per
#        series in the evaluation; default the job's 20), PYTHON=python for the table,
#        RESULTS=DIR (default results/forecast): each finished run's eval.json and summary.json are copied there, a
#        folder that is kept in version control while runs/ is not
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/frl-target}"
FRL="${FRL:-$CARGO_TARGET_DIR/release/frl}"
SEEDS="${SEEDS:-0 1 2}"
OUT="${OUT:-runs/forecast}"
RESULTS="${RESULTS:-results/forecast}"
DATA=forecast/tests/fixtures/datasets
DATASETS=(m1_yearly us_employment fpp2_monthly fpp2_quarterly)
FOURIER='init_weight_div = 1000.0, init_bias_div = 10.0, eps = 1e-5, gamma = 1e-6'
MIXED='{ mixed = { low = -15.0, mid1 = -1.0, mid2 = 10.0, high = 15.0, sparse_density = 0.2 } }'
UNIFORM='{ uniform = { low = -15.0, high = 15.0 } }'
SLUGS=(linear-mixed linear-uniform fourier-N64-mixed fourier-N64-uniform fourier-N256-mixed mixture-K4-mixed)
HEADS=('"linear"' '"linear"' "{ fourier = { frequencies = 64, $FOURIER } }" "{ fourier = { frequencies = 64, $FOURIER } }"
  "{ fourier = { frequencies = 256, $FOURIER } }" '{ mixture = { components = 4, learned_weights = true } }')
BINS=("$MIXED" "$UNIFORM" "$MIXED" "$UNIFORM" "$MIXED" "$MIXED")

[ -x "$FRL" ] || cargo build --release
mkdir -p "$OUT/jobs"
dataset_flags=(${SAMPLES:+--samples "$SAMPLES"})
failed=0
for d in "${DATASETS[@]}"; do dataset_flags+=(--dataset "$DATA/$d"); done
for seed in $SEEDS; do
  for i in "${!SLUGS[@]}"; do
    slug="${SLUGS[$i]}"
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $slug "* ]]; then continue; fi
    name="forecast-$slug-seed$seed"
    job="$OUT/jobs/$name.toml"
    run="$OUT/$name"
    sed -e "s|^name = .*|name = \"$name\"\nruns_dir = \"$OUT\"|" -e "s|^seed = .*|seed = $seed|" \
      -e "s|^head = .*|head = ${HEADS[$i]}|" -e "s|^bins = .*|bins = ${BINS[$i]}|" \
      ${STEPS:+-e "s|^steps = .*|steps = $STEPS|"} configs/forecast.toml > "$job"
    if [ -f "$run/eval.json" ]; then continue; fi
    echo "$(date +%T) training $name"
    "$FRL" forecast train "$job" --resume --quiet > "$job.log" 2>&1 || { echo "FAILED: $name (see $job.log)"; failed=1; continue; }
    ckpt="$(ls "$run"/checkpoints/ckpt-*.safetensors | sort | tail -n 1)"
    echo "$(date +%T) evaluating $name"
    if "$FRL" forecast eval --checkpoint "$ckpt" "${dataset_flags[@]}" --json "$run/eval.json" >> "$job.log" 2>&1
    then
      mkdir -p "$RESULTS/$name"
      cp "$run/eval.json" "$run/summary.json" "$job" "$RESULTS/$name/"
    else
      echo "FAILED: evaluating $name (see $job.log)"
      failed=1
    fi
  done
done
"${PYTHON:-python3}" scripts/forecast_table.py "$RESULTS" | tee "$OUT/table.md"
exit "$failed"

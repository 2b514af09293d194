#!/usr/bin/env bash
# Checks a GPU build of frl on a machine with an NVIDIA GPU, without building anything and without network.
#
# Usage: scripts/gpu-check.sh FRL_BINARY OUT_DIR [VULKAN_LIB_DIR]
#   FRL_BINARY      an x86_64 release binary built with `cargo build --release --features wgpu`, or its .xz
#                   (scripts/gpu-bundle.sh packs one together with the Vulkan loader)
#   OUT_DIR         gets gpu-check.json, gpu-check.log, icd-probe.log and nvidia-smi.csv
#   VULKAN_LIB_DIR  a folder holding libvulkan.so.1 when the machine has no Vulkan loader
# FRL_CHECK_DEVICE=software-gpu runs the same check on Mesa's software adapter (no GPU needed);
# FRL_CHECK_ARGS adds flags of `frl bench train` (`--atari --sweep`, `--python PATH`).
#
# It prints the device, times DT training and a Fourier head step on the GPU and on the CPU in the same run, checks
# that GPU and CPU losses agree on the same batches (1e-3 relative), and exits non-zero when they do not.
set -euo pipefail
bin=$1
out=$2
libs=${3:-}
device=${FRL_CHECK_DEVICE:-gpu}
mkdir -p "$out"
if [[ "$bin" == *.xz ]]; then
  if command -v xz >/dev/null; then
    xz -dc "$bin" >"$out/frl"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$bin" "$out/frl"
  fi
  chmod +x "$out/frl"
  bin="$out/frl"
fi

if [ -n "$libs" ]; then
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# NVIDIA's Vulkan driver: the first ICD under which frl sees a hardware GPU adapter — the system's default, else an
# ICD file written here for NVIDIA's EGL library (works headless), else for its GLX library (often finds no driver
# headless). Every probe's output goes to icd-probe.log.
icd="${VK_ICD_FILENAMES:+$VK_ICD_FILENAMES (given)}"
if [ "$device" = gpu ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then
  : >"$out/icd-probe.log"
  probe() { echo "== $1" >>"$out/icd-probe.log"; "$bin" devices --require-gpu >>"$out/icd-probe.log" 2>&1; }
  if probe "system default"; then
    icd="system default"
  else
    for lib in libEGL_nvidia.so.0 libGLX_nvidia.so.0; do
      path=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')
      [ -n "$path" ] || continue
      json="$out/nvidia_icd_${lib%%.*}.json"
      printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3"}}\n' "$path" >"$json"
      if VK_ICD_FILENAMES="$json" probe "$json ($path)"; then
        export VK_ICD_FILENAMES="$json"
        icd="$json ($lib)"
        break
      fi
    done
  fi
  icd="${icd:-none shows a GPU adapter (see icd-probe.log)}"
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm), $(nproc) CPUs"
  echo "vulkan icd: ${icd:-system default}"
} | tee "$out/gpu-check.log"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/nvidia-smi.csv"
fi

status=0
# PyTorch's side of `bench train` (scripts/torch_dt_step.py) travels in the bundle beside this script.
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/scripts" ] && export FRL_SCRIPTS="${FRL_SCRIPTS:-$here/scripts}"
# shellcheck disable=SC2086 # FRL_CHECK_ARGS holds several flags
"$bin" bench train --device "$device" --steps "${FRL_CHECK_STEPS:-10}" --json "$out/gpu-check.json" \
  ${FRL_CHECK_ARGS:-} 2>&1 |
  tee -a "$out/gpu-check.log" || status=$?
echo "exit status: $status" | tee -a "$out/gpu-check.log"
# The host's CPU too: the DT step on one thread and split over one shard per core (`train.shards`).
echo "== CPU: frl bench dt (one shard, then one per core)" | tee -a "$out/gpu-check.log"
"$bin" bench dt --steps 5 2>&1 | tee -a "$out/gpu-check.log" || status=$?
exit "$status"

#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine into one folder: the stripped wgpu release binary,
# xz-compressed (≈ 11 MB instead of 66), the Vulkan loader (Debian's libvulkan1) and the check script.
#
# Usage: scripts/gpu-bundle.sh OUT_DIR      (builds `cargo build --release --features wgpu` first)
#        FRL_BUNDLE_FUSION=1 also packs `frl-fusion.xz`, built with `--features gpu-fusion` (burn's kernel fusion and
#        autotuning; its own build of burn in ~/.cache/frl-target-fusion), to compare the two on the same GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
target="${FRL_WGPU_TARGET_DIR:-$HOME/.cache/frl-target-wgpu}"
CARGO_TARGET_DIR="$target" cargo build --release --features wgpu --bin frl
mkdir -p "$out/lib"
strip -o "$out/frl" "$target/release/frl"
xz -T2 -6 -f "$out/frl"
if [ -n "${FRL_BUNDLE_FUSION:-}" ]; then
  fusion="${FRL_FUSION_TARGET_DIR:-$HOME/.cache/frl-target-fusion}"
  CARGO_TARGET_DIR="$fusion" cargo build --release --features gpu-fusion --bin frl
  strip -o "$out/frl-fusion" "$fusion/release/frl"
  xz -T2 -6 -f "$out/frl-fusion"
fi
cp scripts/gpu-check.sh "$out/"
mkdir -p "$out/scripts"
cp scripts/torch_dt_step.py scripts/torch_ops.py "$out/scripts/"
tmp=$(mktemp -d)
(cd "$tmp" && apt-get download libvulkan1 >/dev/null && dpkg-deb -x libvulkan1_*.deb root)
cp -L "$tmp"/root/usr/lib/x86_64-linux-gnu/libvulkan.so.1 "$out/lib/"
rm -rf "$tmp"
du -sh "$out"
echo "on the GPU machine: $out/gpu-check.sh $out/frl.xz OUT_DIR $out/lib"

#!/usr/bin/env bash
# The frame-based Seaquest Decision Transformer at the paper's size (Nature-CNN over 4 stacked 84×84 frames, 6 layers,
# 8 heads, d 128, context 30, batch 128, the action ring, a Fourier head with N = 14), trained from a recorded frame
# dataset on a device, its steps/s printed beside PyTorch's step of the same network on the same device
# (scripts/torch_dt_step.py --frames). Made for a machine with a GPU; on the CPU it runs a few small steps as a test.
#
#   scripts/seaquest_frames.sh record DATASET [EPISODES]   atari:Seaquest frames, random actions (default 2 episodes;
#                                                          FRL = a binary built with --features python)
#   scripts/seaquest_frames.sh train DATASET DEVICE OUT    DEVICE cpu | gpu; FRL = frl (for gpu built with --features
#                                                          wgpu), PYTHON = an interpreter with torch (its step is
#                                                          skipped, with a note, when torch does not import),
#                                                          STEPS (default 40), BATCH (default 128)
# `train` writes OUT/frames.toml, the run under OUT/runs and OUT/speed.json; it exits non-zero when training fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
frl="${FRL:-frl}"
cmd="${1:?usage: seaquest_frames.sh record DATASET [EPISODES] | train DATASET DEVICE OUT}"
data="${2:?the dataset folder}"
case "$cmd" in
  record)
    "$frl" collect --quiet --env atari:Seaquest --policy random --episodes "${3:-2}" --actors 1 --seed 0 --out "$data"
    "$frl" dataset info "$data" 2>/dev/null | head -5 || true
    ;;
  train)
    device="${3:?cpu or gpu}"
    out="${4:?an output folder}"
    steps="${STEPS:-40}"
    batch="${BATCH:-128}"
    mkdir -p "$out"
    data_abs="$(cd "$data" && pwd)"
    out_abs="$(cd "$out" && pwd)"
    cat > "$out/frames.toml" <<TOML
name = "seaquest-frames-$device"
dataset = "$data_abs"
seed = 123
runs_dir = "$out_abs/runs"
agent = "dt"

[dt]
layers = 6
heads = 8
embed_dim = 128
context = 30
dropout = 0.1
max_episode_len = 4000
head = { fourier = { frequencies = 14 } }
state_encoder = { nature_cnn = { frames = 4, height = 84, width = 84 } }
return_scale = 1000.0
action_permutation = "atari_direction_ring"

[train]
steps = $steps
batch_size = $batch
lr = 6e-4
warmup_steps = 0
log_every = 5
plot_every = $steps
checkpoint_every = $steps

[train.optimizer]
beta1 = 0.9
beta2 = 0.95
weight_decay = 0.1
grad_clip = 1.0

[eval]
episodes = 0
TOML
    rm -rf "$out/runs/seaquest-frames-$device"
    "$frl" train "$out/frames.toml" --device "$device" --quiet
    summary="$out/runs/seaquest-frames-$device/summary.json"
    python="${PYTHON:-python3}"
    torch_device=$([ "$device" = gpu ] && echo cuda || echo cpu)
    torch_ms=""
    if "$python" -c "import torch" 2>/dev/null; then
      torch_ms=$("$python" "$here/torch_dt_step.py" --frames --device "$torch_device" --batch "$batch" --context 30 \
        --layers 6 --heads 8 --embed 128 --bins 18 --steps "$(( steps < 10 ? steps : 10 ))" | sed -n 's/^dt step: \([0-9.]*\) ms$/\1/p')
    else
      echo "note: torch does not import in $python; PyTorch's step is skipped"
    fi
    "$python" - "$summary" "$device" "$batch" "${torch_ms:-}" "$out/speed.json" <<'PY'
import json, sys
summary, device, batch, torch_ms, out = sys.argv[1:]
s = json.load(open(summary))
ms = s.get("steady_ms_per_step") or s["ms_per_step"]
r = {"device": device, "backend": s["backend"], "batch": int(batch), "steps": s["steps"], "frl_ms_per_step": ms,
     "frl_steps_per_sec": 1000.0 / ms, "first_loss": s["first_loss"], "final_loss": s["final_loss"]}
line = f"frl ({s['backend']}): {ms:.1f} ms/step ({1000.0 / ms:.2f} steps/s), batch {batch}, loss {s['first_loss']:.3f} → {s['final_loss']:.3f}"
if torch_ms:
    r["torch_ms_per_step"] = float(torch_ms)
    r["frl_over_torch"] = ms / float(torch_ms)
    line += f"; PyTorch: {float(torch_ms):.1f} ms/step; frl / PyTorch = {ms / float(torch_ms):.2f}"
json.dump(r, open(out, "w"), indent=1)
print(line)
if not (s["final_loss"] == s["final_loss"]):
    sys.exit("the loss is NaN")
PY
    ;;
  *) echo "unknown command $cmd (record or train)" >&2; exit 2 ;;
esac

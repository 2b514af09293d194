#!/usr/bin/env bash
# Runs CleanRL's ppo_continuous_action.py (from a checkout of github.com/vwxyzjn/cleanrl, not copied into frl) on a
# Gymnasium 1.x MuJoCo env, for the PPO comparison in the guide. CleanRL pins gymnasium 0.29, which has no -v5
# MuJoCo envs; three compatibility edits are made to a temporary copy, none to the algorithm:
#   1. TransformObservation gets the observation space (a required argument in Gymnasium 1.x);
#   2. the vector env resets in the same step (Gymnasium 0.29's behaviour, `AutoresetMode.SAME_STEP` in 1.x);
#   3. episode returns are read from 1.x's `final_info` layout (a dict of arrays with an `_episode` mask).
# Prints CleanRL's own output; the last line is the wall time and the mean of the last 10 episodic returns.
#
#   scripts/cleanrl_ppo_continuous.sh CLEANRL_CHECKOUT PYTHON ENV_ID SEED [more CleanRL flags]
set -euo pipefail
src="$1/cleanrl/ppo_continuous_action.py"
python="$2"
env_id="$3"
seed="$4"
shift 4
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" - "$src" "$work/ppo_continuous_action.py" <<'PY'
import sys
text = open(sys.argv[1]).read()
edits = [
    ("gym.wrappers.TransformObservation(env, lambda obs: np.clip(obs, -10, 10))",
     "gym.wrappers.TransformObservation(env, lambda obs: np.clip(obs, -10, 10), env.observation_space)"),
    ("for i in range(args.num_envs)]\n    )",
     "for i in range(args.num_envs)],\n        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,\n    )"),
    ('for info in infos["final_info"]:',
     'for info in [{"episode": {"r": r, "l": l}} for r, l, m in zip(infos["final_info"].get("episode", {}).get("r", []), '
     'infos["final_info"].get("episode", {}).get("l", []), infos["final_info"].get("_episode", [])) if m]:'),
]
for old, new in edits:
    if text.count(old) != 1:
        sys.exit(f"CleanRL's script changed: cannot find {old!r}")
    text = text.replace(old, new)
open(sys.argv[2], "w").write(text)
PY
cd "$work"
start=$(date +%s.%N)
"$python" ppo_continuous_action.py --env-id "$env_id" --seed "$seed" "$@" | tee "$work/out.log"
end=$(date +%s.%N)
"$python" - "$work/out.log" "$start" "$end" <<'PY'
import re, sys
returns = [float(m) for m in re.findall(r"episodic_return=\[?([-0-9.e]+)", open(sys.argv[1]).read())]
last = returns[-10:]
print(f"cleanrl: wall {float(sys.argv[3]) - float(sys.argv[2]):.1f} s, {len(returns)} episodes, "
      f"mean of the last {len(last)} episodic returns {sum(last) / max(len(last), 1):.1f}")
PY

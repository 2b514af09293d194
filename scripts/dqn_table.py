"""Aggregates the summary.json files of scripts/dqn_experiment.sh into a Markdown table (mean ± std over seeds).

Usage: dqn_table.py RUNS_DIR
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

from tables import mean_sd

# Gymnasium's reward thresholds at which the envs count as solved.
SOLVED = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0}


def best_eval(run_dir):
    """The best eval/return_mean during training (TensorBoard events), or None without the tensorboard package."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return None
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if "eval/return_mean" not in acc.Tags()["scalars"]:
        return None
    return max(e.value for e in acc.Scalars("eval/return_mean"))


def best_checkpoint_eval(run_dir):
    """Mean return of the run's best checkpoint (eval.keep_best) on 100 episodes it was not selected on
    (best_eval.json, written by dqn_experiment.sh), or None."""
    path = Path(run_dir) / "best_eval.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["mean"]


def main():
    root = Path(sys.argv[1])
    cells = defaultdict(list)
    for path in sorted(root.glob("*/summary.json")):
        s = json.loads(path.read_text())
        if s.get("online") is None or s.get("eval") is None:
            continue
        env = s["name"].split("-dqn-")[0]
        cells[(env, s["head"])].append(s)
    print("| env | head | final eval return (10 episodes, ε = 0) | solved at the end | best eval during training |"
          " best checkpoint on 100 new episodes | env steps | wall time | env steps/s | updates/s | policy lag |"
          " return-PMF smoothness | seeds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (env, head), runs in sorted(cells.items()):
        ret = mean_sd([r["eval"]["mean"] for r in runs])
        solved = sum(r["eval"]["mean"] >= SOLVED.get(env, float("inf")) for r in runs)
        o = [r["online"] for r in runs]
        steps = mean_sd([x["env_steps"] for x in o])
        wall = mean_sd([x["seconds"] for x in o])
        sps = mean_sd([x["env_steps_per_sec"] for x in o])
        ups = mean_sd([x["updates_per_sec"] for x in o])
        lag = mean_sd([x["mean_policy_lag"] for x in o])
        best = [best_eval(r["run_dir"]) for r in runs]
        best = "—" if None in best else "{:.1f} ± {:.1f}".format(*mean_sd(best))
        kept = [best_checkpoint_eval(r["run_dir"]) for r in runs]
        if None in kept:
            kept = "—"
        else:
            k = mean_sd(kept)
            n = sum(v >= SOLVED.get(env, float("inf")) for v in kept)
            kept = f"{k[0]:.1f} ± {k[1]:.1f} ({n}/{len(kept)} solved)"
        smooth = mean_sd([r["smoothness"] for r in runs])
        print(f"| {env} | {head} | {ret[0]:.1f} ± {ret[1]:.1f} | {solved}/{len(runs)} (≥ {SOLVED.get(env, '?')}) |"
              f" {best} | {kept} | {steps[0]:.0f} | {wall[0]:.0f} ± {wall[1]:.0f} s | {sps[0]:.0f} | {ups[0]:.1f} | {lag[0]:.2f} |"
              f" {smooth[0]:.4f} ± {smooth[1]:.4f} | {len(runs)} |")


if __name__ == "__main__":
    main()

"""Env steps/s of Python envs collected by Ray actors (1 and 2) against one `frl collect` thread, same machine, same
run: prints a Markdown table (docs/src/ray.md).

Usage: bench_ray_envs.py FRL_BINARY [--episodes N] (N per env, default 32 Pong and 256 HalfCheetah episodes)   (FRL_BINARY built with `--features python`; the `frl` package
       installed in this interpreter's environment with Gymnasium, ale-py and MuJoCo)
"""

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402

from frl.ray import Collector  # noqa: E402

ENVS = {"atari:Pong": 32, "gym:HalfCheetah-v5": 256}


def threads(frl, env, episodes, out):
    """Steps/s of `frl collect` with one actor thread, as it reports (from its first step to its last shard)."""
    run = subprocess.run([frl, "collect", "--env", env, "--policy", "random", "--episodes", str(episodes),
                          "--actors", "1", "--out", str(out)], check=True, capture_output=True, text=True)
    return float(re.search(r"\(([0-9.]+) steps/s\)", run.stdout + run.stderr).group(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("frl")
    p.add_argument("--episodes", type=int, default=None)
    args = p.parse_args()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for env, default_episodes in ENVS.items():
            episodes = args.episodes or default_episodes
            slug = env.replace(":", "-").replace("/", "-")
            one_thread = threads(args.frl, env, episodes, tmp / f"{slug}-threads")
            rates = []
            for actors in (1, 2):
                c = Collector(env, episodes, str(tmp / f"{slug}-ray{actors}"), "random", actors=actors, seed=0)
                s = c.run(False)
                rates.append(s["steps"] / s["seconds"])
            rows.append((env, episodes, one_thread, *rates))
    ray.shutdown()
    print(f"| env ({os.cpu_count()} CPUs) | episodes | frl collect, 1 thread | Ray, 1 actor | Ray, 2 actors |"
          " 2 actors / 1 actor | 1 actor / frl collect |")
    print("|---|---|---|---|---|---|---|")
    for env, episodes, t, r1, r2 in rows:
        print(f"| {env} | {episodes} | {t:.0f} steps/s | {r1:.0f} steps/s | {r2:.0f} steps/s | {r2 / r1:.2f}× |"
              f" {r1 / t:.2f}× |")


if __name__ == "__main__":
    main()

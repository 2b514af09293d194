"""Env steps/s of Python envs collected by Ray actors (1 and 2) against one `frl collect` thread, same machine, same
run: prints a Markdown table (README, "Many machines: Ray").

Usage: bench_ray_envs.py FRL_BINARY [--episodes N]   (FRL_BINARY built with `--features python`; the `frl` package
       installed in this interpreter's environment with Gymnasium, ale-py and MuJoCo)
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402

from frl.ray import Collector  # noqa: E402

ENVS = ["atari:Pong", "gym:HalfCheetah-v5"]


def threads(frl, env, episodes, out):
    t0 = time.perf_counter()
    subprocess.run([frl, "collect", "--quiet", "--env", env, "--policy", "random", "--episodes", str(episodes),
                    "--actors", "1", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    meta = json.loads((out / "metadata.json").read_text())
    return sum(s["steps"] for s in meta["shards"]) / seconds


def main():
    p = argparse.ArgumentParser()
    p.add_argument("frl")
    p.add_argument("--episodes", type=int, default=8)
    args = p.parse_args()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for env in ENVS:
            slug = env.replace(":", "-").replace("/", "-")
            one_thread = threads(args.frl, env, args.episodes, tmp / f"{slug}-threads")
            rates = []
            for actors in (1, 2):
                c = Collector(env, args.episodes, str(tmp / f"{slug}-ray{actors}"), "random", actors=actors, seed=0,
                              chunk=1)
                s = c.run(False)
                rates.append(s["steps"] / s["seconds"])
            rows.append((env, one_thread, *rates))
    ray.shutdown()
    print(f"| env | frl collect, 1 thread | Ray, 1 actor | Ray, 2 actors | 2 actors / 1 actor | "
          f"({args.episodes} random-policy episodes each, {os.cpu_count()} CPUs) |")
    print("|---|---|---|---|---|---|")
    for env, t, r1, r2 in rows:
        print(f"| {env} | {t:.0f} steps/s | {r1:.0f} steps/s | {r2:.0f} steps/s | {r2 / r1:.2f}× | |")


if __name__ == "__main__":
    main()

"""Aggregates scripts/odt_experiment.sh into a Markdown table: evaluation return of each offline DT (before) and of
the same DT after online fine-tuning (after), per head, mean ± std over seeds, and one row per run.

Usage: odt_table.py OUT_DIR   (OUT_DIR holds pretrain/ and online/)
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from tables import mean_sd


def fmt(xs):
    return "{:.1f} ± {:.1f}".format(*mean_sd(xs))


def main():
    root = Path(sys.argv[1])
    pairs = defaultdict(list)
    for path in sorted((root / "online").glob("*/summary.json")):
        after = json.loads(path.read_text())
        before_path = root / "pretrain" / after["name"] / "summary.json"
        if after.get("eval") is None or after.get("online") is None or not before_path.exists():
            continue
        pairs[after["head"]].append((json.loads(before_path.read_text()), after))
    print("| head | offline DT (before) | after online fine-tuning | change | exploring return (last 20 episodes) |"
          " env steps | updates | wall time | env steps/s | updates/s | policy lag | seeds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for head, runs in sorted(pairs.items()):
        before = [b["eval"]["mean"] for b, _ in runs]
        after = [a["eval"]["mean"] for _, a in runs]
        o = [a["online"] for _, a in runs]
        print(f"| {head} | {fmt(before)} | {fmt(after)} | {fmt([y - x for x, y in zip(before, after)])} |"
              f" {fmt([x['recent_return'] for x in o])} | {statistics.mean(x['env_steps'] for x in o):.0f} |"
              f" {statistics.mean(a['steps'] for _, a in runs):.0f} |"
              f" {fmt([x['seconds'] for x in o])} s | {statistics.mean(x['env_steps_per_sec'] for x in o):.0f} |"
              f" {statistics.mean(x['updates_per_sec'] for x in o):.1f} |"
              f" {statistics.mean(x['mean_policy_lag'] for x in o):.2f} | {len(runs)} |")
    print()
    print("| run | before | after |")
    print("|---|---|---|")
    for head, runs in sorted(pairs.items()):
        for b, a in runs:
            print(f"| {a['name']} | {b['eval']['mean']:.1f} | {a['eval']['mean']:.1f} |")


if __name__ == "__main__":
    main()

"""The table of scripts/ppo_experiment.sh: per variant over seeds, the mean return of the last 20 training episodes
(mean ± sample std, and each seed's), the final evaluation, the action PMFs' smoothness and the wall time, from each
run's summary.json.

    python scripts/ppo_table.py runs/ppo-halfcheetah-v5 --out results/ppo/HalfCheetah-v5.md
"""

import argparse
import json
import math
import re
from collections import defaultdict
from pathlib import Path

from tables import emit, fmt_mean_sd as fmt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    groups = defaultdict(list)
    for path in sorted(args.runs.glob("*/summary.json")):
        s = json.loads(path.read_text())
        m = re.fullmatch(r"(.+)-s(\d+)", s["name"])
        if m and s.get("online") and not s["interrupted"]:
            groups[m.group(1)].append((int(m.group(2)), s))
    lines = [
        "| variant | seeds | last 20 episodes | each seed | final evaluation | PMF smoothness | wall time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, runs in groups.items():
        runs.sort()
        last = [s["online"]["recent_return"] for _, s in runs]
        ev = [s["eval"]["mean"] for _, s in runs if s.get("eval")]
        sm = [s["smoothness"] for _, s in runs if s.get("smoothness") is not None and not math.isnan(s["smoothness"])]
        secs = [s["online"]["seconds"] for _, s in runs]
        lines.append(
            f"| {variant} | {', '.join(str(k) for k, _ in runs)} | {fmt(last)} | {', '.join(f'{x:.1f}' for x in last)} "
            f"| {fmt(ev)} | {fmt(sm, 3)} | {', '.join(f'{x:.0f}' for x in secs)} |"
        )
    emit(lines, args.out)


if __name__ == "__main__":
    main()

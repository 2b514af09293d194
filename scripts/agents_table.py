"""Aggregates the summary.json files of scripts/agents_experiment.sh into a Markdown table (mean ± std over seeds).

Usage: agents_table.py RUNS_DIR
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from tables import mean_sd


def main():
    root = Path(sys.argv[1])
    cells = defaultdict(list)
    for path in sorted(root.glob("*/summary.json")):
        s = json.loads(path.read_text())
        task = s["name"].rpartition("-seed")[0]
        suffix = f"-{s['agent']}-{s['head']}"
        data = task[: -len(suffix)] if task.endswith(suffix) else task
        cells[(data, s["agent"], s["head"])].append(s)
    print("| task / dataset | agent | head | return | normalised | smoothness | ms/step | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for (data, agent, head), runs in sorted(cells.items()):
        ret = mean_sd([r["eval"]["mean"] for r in runs])
        norms = [r["eval"]["normalized"] for r in runs if r["eval"].get("normalized") is not None]
        norm = f"{mean_sd(norms)[0]:.1f} ± {mean_sd(norms)[1]:.1f}" if len(norms) == len(runs) else "—"
        smooth = mean_sd([r["smoothness"] for r in runs])
        step = statistics.mean(r["ms_per_step"] for r in runs)
        print(f"| {data} | {agent} | {head} | {ret[0]:.1f} ± {ret[1]:.1f} | {norm} | "
              f"{smooth[0]:.3f} ± {smooth[1]:.3f} | {step:.0f} | {len(runs)} |")


if __name__ == "__main__":
    main()

"""Aggregates the summary.json files of scripts/dt_experiment.sh into a Markdown table (mean ± std over seeds).

Usage: dt_table.py RUNS_DIR
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def main():
    root = Path(sys.argv[1])
    cells = defaultdict(list)
    for path in sorted(root.glob("*/summary.json")):
        s = json.loads(path.read_text())
        task, _, seed = s["name"].rpartition("-seed")
        cells[task].append(s)
    print("| task / dataset | head | return | normalised | smoothness | final CE loss | ms/step | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for task, runs in sorted(cells.items()):
        head = runs[0]["head"]
        data = task[: -len(head) - 1] if task.endswith(head) else task
        def ms(key):
            xs = [key(r) for r in runs]
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            return statistics.mean(xs), sd
        ret, ret_sd = ms(lambda r: r["eval"]["mean"])
        norm = ms(lambda r: r["eval"]["normalized"]) if runs[0]["eval"].get("normalized") is not None else None
        sm, sm_sd = ms(lambda r: r["smoothness"])
        loss, loss_sd = ms(lambda r: r["final_loss"])
        step, _ = ms(lambda r: r["ms_per_step"])
        norm_s = f"{norm[0]:.1f} ± {norm[1]:.1f}" if norm else "—"
        print(f"| {data} | {head} | {ret:.1f} ± {ret_sd:.1f} | {norm_s} | {sm:.3f} ± {sm_sd:.3f} | "
              f"{loss:.3f} ± {loss_sd:.3f} | {step:.0f} | {len(runs)} |")


if __name__ == "__main__":
    main()

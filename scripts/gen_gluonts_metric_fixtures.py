"""Writes forecast/tests/fixtures/gluonts_metrics.json: MASE and mean weighted quantile loss computed by gluonts'
evaluation (the functions Chronos' evaluation calls) on seeded random series and sample forecasts, for the Rust
metrics' tests (`cargo test -p frl-forecast`).

Usage: gen_gluonts_metric_fixtures.py [--out FILE]   (needs `gluonts`, `pandas`, `numpy`)

It also scores gluonts' own `SeasonalNaivePredictor` on the exported evaluation datasets
(forecast/tests/fixtures/datasets, `scripts/export_forecast_datasets.py`), for frl's seasonal naive.

Protocol as Chronos': the last H values of each series held out (`split(offset=-H)`, one window), MASE of the
forecast's median (`forecast_type=0.5`) scaled by the in-sample seasonal error, weighted quantile loss over the
quantiles 0.1 … 0.9, both aggregated over the dataset; seasonality from the frequency unless given.
"""

import argparse
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pandas as pd
from gluonts.dataset.common import ListDataset
from gluonts.dataset.split import split
from gluonts.ev.metrics import MASE, MeanWeightedSumQuantileLoss
from gluonts.model.evaluation import evaluate_forecasts
from gluonts.model.forecast import SampleForecast

QUANTILES = [round(q, 1) for q in np.arange(0.1, 1.0, 0.1)]


def case(name, freq, horizon, seasonality, lengths, rng, samples=20):
    series = []
    for n in lengths:
        t = np.arange(n)
        level = rng.uniform(5, 500)
        x = level * (1 + 0.3 * np.sin(2 * np.pi * t / max(seasonality, 2))) + rng.normal(0, level * 0.1, n)
        series.append(x.astype(np.float32))
    start = pd.Period("2000-01", freq=freq)
    dataset = ListDataset([{"start": start, "target": s} for s in series], freq=freq)
    _, template = split(dataset, offset=-horizon)
    test = template.generate_instances(prediction_length=horizon, windows=1)
    forecasts, items = [], []
    for (inp, label), s in zip(test, series):
        last = inp["target"][-1]
        paths = (last + rng.normal(0, abs(last) * 0.15 + 1, (samples, horizon))).astype(np.float32)
        forecasts.append(SampleForecast(samples=paths, start_date=label["start"]))
        items.append({"past": inp["target"].tolist(), "target": label["target"].tolist(), "samples": paths.tolist()})
    metrics = evaluate_forecasts(
        forecasts,
        test_data=test,
        metrics=[MASE(), MeanWeightedSumQuantileLoss(quantile_levels=QUANTILES)],
        seasonality=seasonality,
    )
    per_item = evaluate_forecasts(forecasts, test_data=test, metrics=[MASE()], axis=1, seasonality=seasonality)
    return {
        "name": name,
        "seasonality": seasonality,
        "horizon": horizon,
        "items": items,
        "mase": float(metrics["MASE[0.5]"].iloc[0]),
        "wql": float(metrics["mean_weighted_sum_quantile_loss"].iloc[0]),
        "item_mase": [float(v) for v in np.asarray(per_item["MASE[0.5]"])],
    }


def seasonal_naive_scores(root):
    """gluonts' seasonal naive on every exported dataset under `root`: name → MASE and WQL."""
    from gluonts.model.seasonal_naive import SeasonalNaivePredictor

    out = {}
    for folder in sorted(p for p in root.iterdir() if (p / "meta.json").is_file()):
        meta = json.loads((folder / "meta.json").read_text())
        df = pd.read_csv(folder / "series.csv", dtype={"series": str})
        freq, horizon, m = meta["frequency"], meta["horizon"], meta["seasonality"]
        targets = [g["value"].to_numpy(dtype=np.float32) for _, g in df.groupby("series", sort=False)]
        dataset = ListDataset([{"start": pd.Period("2000-01", freq=freq), "target": t} for t in targets], freq=freq)
        _, template = split(dataset, offset=-horizon)
        test = template.generate_instances(prediction_length=horizon, windows=1)
        predictor = SeasonalNaivePredictor(prediction_length=horizon, season_length=m)
        metrics = evaluate_forecasts(
            list(predictor.predict(test.input)),
            test_data=test,
            metrics=[MASE(), MeanWeightedSumQuantileLoss(quantile_levels=QUANTILES)],
            seasonality=m,
        )
        out[meta["name"]] = {"mase": float(metrics["MASE[0.5]"].iloc[0]),
                             "wql": float(metrics["mean_weighted_sum_quantile_loss"].iloc[0])}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "forecast/tests/fixtures/gluonts_metrics.json")
    args = ap.parse_args()
    rng = np.random.default_rng(5)
    cases = [
        case("monthly", "M", 12, 12, [60, 85, 40, 120], rng),
        case("quarterly", "Q", 8, 4, [30, 44, 52], rng),
        # Series shorter than the seasonality: the seasonal error falls back to lag 1.
        case("short_seasonal", "M", 6, 12, [10, 14], rng),
        case("yearly", "Y", 6, 1, [20, 31, 45], rng),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    versions = {"gluonts": importlib.metadata.version("gluonts"), "numpy": np.__version__}
    naive = seasonal_naive_scores(args.out.parent / "datasets")
    fixture = {"versions": versions, "quantiles": QUANTILES, "cases": cases, "seasonal_naive": naive}
    args.out.write_text(json.dumps(fixture))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

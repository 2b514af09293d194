"""Exports the forecasting evaluation datasets that ship inside Python wheels to frl's plain format, which
`frl_forecast::SeriesSet::open` reads (nothing is downloaded at run time).

Usage: export_forecast_datasets.py [--out DIR]   (default: forecast/tests/fixtures/datasets; needs `aeon`)

The format, one folder per dataset:
  meta.json   {"name", "frequency", "seasonality", "horizon", "source", "series"}: the frequency as gluonts names it,
              the seasonality gluonts derives from it (MASE's seasonal lag), the forecast horizon H (the last H
              values of every series are held out), where the data came from and how many series there are;
  series.csv  a header line `series,value`, then one line per value in time order, series after series.

Datasets: M1 yearly (Monash `.tsf` in the aeon wheel: 181 series, H = 6), one of the Chronos benchmarks.
"""

import argparse
import json
from pathlib import Path

import aeon

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


def export(name, tsf, out):
    series, header = read_tsf(tsf)
    frequency, seasonality = FREQUENCIES[header["frequency"]]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": name,
        "frequency": frequency,
        "seasonality": seasonality,
        "horizon": int(header["horizon"]),
        "source": f"Monash forecasting archive, {tsf.name} from the aeon {aeon.__version__} wheel",
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
    data = Path(aeon.__file__).parent / "datasets" / "data"
    export("m1_yearly", data / "m1_yearly_dataset" / "m1_yearly_dataset.tsf", args.out)


if __name__ == "__main__":
    main()

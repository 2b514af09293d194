"""Writes heads/tests/fixtures/smoothness.json: PMFs with their scipy Gaussian-filtered versions and smoothness.

Smoothness (FOURIER_HEAD.md §4): s(y) = sum_{sigma=1}^{100} 6/(pi^2 sigma^2) * ||y - G_sigma(y)||_2 with
G_sigma = scipy.ndimage.gaussian_filter1d(y, sigma, mode="wrap", radius=len(y)-1).
Usage: python scripts/gen_smoothness_fixtures.py [OUT]
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d


def smoothness(y):
    m = len(y)
    total = 0.0
    for s in range(1, 101):
        g = gaussian_filter1d(y, s, mode="wrap", radius=m - 1)
        total += 6.0 / (math.pi**2 * s**2) * float(np.linalg.norm(y - g))
    return total


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "heads/tests/fixtures/smoothness.json"
    rng = np.random.default_rng(20241029)
    cases = []
    # 1000 and 4096 (a forecasting vocabulary) exercise frl's FFT path.
    for m in [2, 5, 18, 50, 64, 1000, 4096]:
        for kind in ["dirichlet", "spike", "bump"] if m <= 64 else ["dirichlet", "bump"]:
            if kind == "dirichlet":
                y = rng.dirichlet(np.full(m, 0.5))
            elif kind == "spike":
                y = np.zeros(m)
                y[rng.integers(m)] = 1.0
            else:
                c = np.arange(m)
                y = np.exp(-0.5 * ((c - m / 3) / max(m / 10, 0.5)) ** 2)
                y /= y.sum()
            filtered = {str(s): gaussian_filter1d(y, s, mode="wrap", radius=m - 1).tolist() for s in [1, 3, 17, 100]}
            cases.append({"m": m, "kind": kind, "y": y.tolist(), "filtered": filtered, "smoothness": smoothness(y)})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"generator": "scripts/gen_smoothness_fixtures.py", "cases": cases}, indent=1))
    tmp.replace(out)
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()

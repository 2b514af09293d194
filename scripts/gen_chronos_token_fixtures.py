"""Writes forecast/tests/fixtures/chronos_tokens.json: what Chronos' tokenisers make of a set of test series, for the
Rust tokeniser's tests (`cargo test -p frl-forecast`).

Usage: gen_chronos_token_fixtures.py --fork PATH [--out FILE]

Needs the `chronos-forecasting` package (pip; it pulls in torch, so the fixture is generated once and committed) for
the uniform bins (`MeanScaleUniformBins`, Chronos' own tokeniser), and the Fourier-head paper's fork of Chronos for the
mixed bins (`MeanScaleMixedUniformBins`, not in the package): PATH is `time-series-forecasting/src/chronos/chronos.py`
of github.com/nate-gillman/fourier-head
(the fixture was written from its commit 94fa374), loaded as a module. Both are configured as the paper's runs: 4096 tokens, PAD
0, EOS 1, limits [-15, 15]; mixed: mid limits -1 and 10, sparse bin density 0.2. A short context (64) and prediction
(8) keep the fixture small; the context is truncated to its last 64 values as Chronos does.
"""

import argparse
import importlib.metadata
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
from chronos import ChronosConfig, MeanScaleUniformBins

CONTEXT, PREDICTION, N_TOKENS = 64, 8, 4096


def config(tokenizer_class, kwargs):
    return ChronosConfig(
        tokenizer_class=tokenizer_class,
        tokenizer_kwargs=kwargs,
        context_length=CONTEXT,
        prediction_length=PREDICTION,
        n_tokens=N_TOKENS,
        n_special_tokens=2,
        pad_token_id=0,
        eos_token_id=1,
        use_eos_token=True,
        model_type="seq2seq",
        num_samples=20,
        temperature=1.0,
        top_k=50,
        top_p=1.0,
    )


def series():
    """Named test series: context (may be longer than CONTEXT, may hold NaN) and label (PREDICTION values)."""
    rng = np.random.default_rng(7)
    t = np.arange(90, dtype=np.float64)
    out = {
        "seasonal": 100 + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 3, t.size),
        "trend_negative": -5 - 0.3 * t + rng.normal(0, 1, t.size),
        "heavy_tailed": rng.standard_cauchy(t.size) * 10,
        "tiny": rng.normal(0, 1e-6, t.size),
        "huge": rng.normal(1e9, 5e8, t.size),
        "intermittent": np.where(rng.random(t.size) < 0.8, 0.0, rng.exponential(5, t.size)),
        "constant_zero": np.zeros(t.size),
        "constant": np.full(t.size, 3.5),
        "short_with_nan": np.concatenate([np.full(50, np.nan), rng.normal(10, 2, 40)]),
        "gaps": np.where(rng.random(t.size) < 0.2, np.nan, 1 + rng.random(t.size)),
        "spikes": np.where(rng.random(t.size) < 0.05, 1000.0, 1.0),
    }
    return {k: (v[: -PREDICTION].astype(np.float32), v[-PREDICTION:].astype(np.float32)) for k, v in out.items()}


def listify(x):
    return [None if (isinstance(v, float) and np.isnan(v)) else v for v in np.asarray(x).tolist()]


def run(tokenizer, cases):
    out = []
    for name, (context, label) in cases.items():
        ids, mask, scale = tokenizer.context_input_transform(torch.tensor(context)[None])
        label_ids, _ = tokenizer.label_input_transform(torch.tensor(label)[None], scale)
        out.append(
            {
                "name": name,
                "context": listify(context),
                "label": listify(label),
                "scale": float(scale[0]),
                "context_tokens": ids[0].tolist(),
                "label_tokens": label_ids[0].tolist(),
            }
        )
    return out


def decoded(tokenizer):
    """Every token id, decoded at scale 2 (`output_transform`)."""
    ids = torch.arange(N_TOKENS)[None, None]
    return tokenizer.output_transform(ids, torch.tensor([2.0]))[0, 0].tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fork", required=True, type=Path, help="the paper's chronos.py (MeanScaleMixedUniformBins)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "forecast/tests/fixtures/chronos_tokens.json")
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("fork_chronos", args.fork)
    fork = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fork)

    cases = series()
    uniform_kwargs = {"low_limit": -15.0, "high_limit": 15.0}
    mixed_kwargs = {"low_limit": -15.0, "mid_limit_1": -1.0, "mid_limit_2": 10.0, "high_limit": 15.0,
                    "sparse_bin_density": 0.2}
    uniform = MeanScaleUniformBins(**uniform_kwargs, config=config("MeanScaleUniformBins", uniform_kwargs))
    mixed = fork.MeanScaleMixedUniformBins(**mixed_kwargs, config=config("MeanScaleMixedUniformBins", mixed_kwargs))
    fixture = {
        "source": "chronos-forecasting (uniform) and the Fourier-head paper's fork of Chronos (mixed)",
        "versions": {"chronos-forecasting": importlib.metadata.version("chronos-forecasting"), "torch": torch.__version__},
        "context_length": CONTEXT,
        "prediction_length": PREDICTION,
        "n_tokens": N_TOKENS,
        "uniform": {"kwargs": uniform_kwargs, "centres": uniform.centers.tolist(), "cases": run(uniform, cases),
                    "decoded_at_scale_2": decoded(uniform)},
        "mixed": {"kwargs": mixed_kwargs, "centres": mixed.centers.tolist(), "cases": run(mixed, cases),
                  "decoded_at_scale_2": decoded(mixed),
                  "segments": [mixed.sparse_tokens1, mixed.dense_tokens, mixed.sparse_tokens2]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Trains exported `frl toy` runs again in PyTorch, from the same start, and compares the two epoch by epoch.

    frl toy --dataset gaussian --head '{ mixture = { components = 1 } }' --seed 1 --export-start START
    frl toy --dataset gaussian --head '{ mixture = { components = 1 } }' --seed 1 --out RUNS
    python scripts/toy_torch_replay.py START/*.json --frl-runs RUNS/runs

Each START file holds one run's data, initial parameters and the batch order of every epoch. PyTorch trains the
paper's MLP and head (FOURIER_HEAD.md §1, §3) from those parameters on those batches with torch.optim.Adam, and prints
its per-epoch training loss and final test KL next to frl's (from RUNS/runs/<run>.json when given). With
`--random-init K` it also trains K PyTorch runs on the same data from PyTorch's own random initialisation, as the
reference code does, and counts how many end no better than a uniform prediction.

Needs numpy and torch (`pip install torch numpy`); not part of the test suite.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

UNIFORM_TOLERANCE = 0.01  # the same margin below ln m as frl's report


def bin_centres(m):
    return torch.tensor([-1.0 + (2 * i + 1) / m for i in range(m)], dtype=torch.float64).float()


class FourierHead(nn.Module):
    """Discrete Fourier head, real-arithmetic form, with the regulariser on unnormalised c_k."""

    def __init__(self, d, m, cfg):
        super().__init__()
        self.n = cfg["frequencies"]
        self.gamma = cfg.get("gamma", 0.0)
        self.eps = cfg.get("eps", 1e-5)
        self.linear = nn.Linear(d, 2 * (self.n + 1))
        with torch.no_grad():
            self.linear.weight /= cfg.get("init_weight_div", 100.0)
            self.linear.bias /= cfg.get("init_bias_div", 100.0)
        angles = math.pi * torch.arange(self.n + 1).float()[:, None] * bin_centres(m)[None, :]
        self.register_buffer("cos", torch.cos(angles))
        self.register_buffer("sin", torch.sin(angles))

    def forward(self, x):
        z = self.linear(x)
        u, v = z[:, : self.n + 1], z[:, self.n + 1 :]
        re = u @ self.cos - v @ self.sin
        im = u @ self.sin + v @ self.cos
        p = re * re + im * im
        q = p / p.sum(dim=1, keepdim=True)
        return torch.log(q + self.eps)

    def regulariser(self, x):
        if self.gamma <= 0:
            return torch.zeros(())
        z = self.linear(x)
        a = torch.complex(z[:, : self.n + 1], z[:, self.n + 1 :])
        total = torch.zeros(x.shape[0])
        for k in range(self.n + 1):
            c_k = (a[:, k:] * torch.conj(a[:, : self.n + 1 - k])).sum(dim=1)
            total = total + 2 * math.pi**2 * k**2 * c_k.abs() ** 2
        return self.gamma * 2 * total.mean()


class MixtureHead(nn.Module):
    """GMM head: tanh means, softplus standard deviations initialised to one bin width, log(g + eps)."""

    def __init__(self, d, m, cfg):
        super().__init__()
        k = cfg.get("components", 1)
        if cfg.get("learned_weights", False):
            raise SystemExit("learned mixture weights are not replayed by this script")
        self.eps = cfg.get("eps", 1e-5)
        self.means = nn.Linear(d, k)
        self.rho = nn.Parameter(torch.full((k,), math.log(math.expm1(2.0 / m))))
        self.register_buffer("centres", bin_centres(m))

    def forward(self, x):
        mu = torch.tanh(self.means(x))[:, :, None]  # [B, K, 1]
        sigma = F.softplus(self.rho)[None, :, None]
        pdf = torch.exp(-0.5 * ((self.centres[None, None, :] - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        return torch.log(pdf.mean(dim=1) + self.eps)

    def regulariser(self, x):
        return torch.zeros(())


class LinearHead(nn.Module):
    def __init__(self, d, m, cfg):
        super().__init__()
        self.linear = nn.Linear(d, m)

    def forward(self, x):
        return self.linear(x)

    def regulariser(self, x):
        return torch.zeros(())


HEADS = {"linear": ("Linear", LinearHead), "fourier": ("Fourier", FourierHead), "mixture": ("Mixture", MixtureHead)}


def head_kind(spec_head):
    if spec_head == "linear":
        return "linear", {}
    ((kind, cfg),) = spec_head.items()
    return kind, cfg


class Model(nn.Module):
    def __init__(self, spec):
        super().__init__()
        kind, cfg = head_kind(spec["head"])
        self.variant, cls = HEADS[kind]
        self.l1 = nn.Linear(2, 64)
        self.l2 = nn.Linear(64, 32)
        self.head = cls(32, spec["bins"], cfg)

    def features(self, x):
        return F.relu(self.l2(F.relu(self.l1(x))))

    def forward(self, x):
        return self.head(self.features(x))

    def load_frl(self, params):
        """Copies frl's parameters in; frl stores a linear weight as [d_in, d_out]."""
        ours = {}
        for p in params:
            name = p["name"].replace(f"head.{self.variant}.", "head.")
            t = torch.tensor(p["data"], dtype=torch.float32).reshape(p["shape"])
            ours[name] = t.T.contiguous() if name.endswith("weight") else t
        state = self.state_dict()
        missing = [k for k in state if k not in ours and k not in dict(self.named_buffers())]
        if missing:
            raise SystemExit(f"the export lacks parameters {missing}; it has {sorted(ours)}")
        for k, v in ours.items():
            if k not in state or state[k].shape != v.shape:
                raise SystemExit(f"parameter {k}: export shape {tuple(v.shape)} does not fit the model")
            state[k] = v
        self.load_state_dict(state)


def train(model, start, orders):
    spec = start["spec"]
    x = torch.tensor(start["train_x"], dtype=torch.float32).reshape(-1, 2)
    y = torch.tensor(start["train_y"], dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"], eps=1e-8)
    b = spec["batch_size"]
    losses = []
    for order in orders:
        order = torch.as_tensor(order, dtype=torch.long)
        total, batches = 0.0, 0
        for i in range(0, len(order), b):
            idx = order[i : i + b]
            feats = model.features(x[idx])
            loss = F.cross_entropy(model.head(feats), y[idx]) + model.head.regulariser(feats)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        losses.append(total / batches)
    return losses


def test_kl(model, start):
    m = start["spec"]["bins"]
    x = torch.tensor(start["test_x"], dtype=torch.float32).reshape(-1, 2)
    t = np.asarray(start["test_pmf"], dtype=np.float64).reshape(-1, m)
    with torch.no_grad():
        pred = torch.softmax(model(x), dim=1).double().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(t > 0, t * (np.log(t) - np.log(pred + 1e-10)), 0.0)
    return float(terms.sum(axis=1).mean())


def uniform(loss, m):
    return loss >= math.log(m) - UNIFORM_TOLERANCE


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("starts", nargs="+", type=Path, help="files written by frl toy --export-start")
    ap.add_argument("--frl-runs", type=Path, help="frl's runs/ folder of the same runs, to compare with")
    ap.add_argument("--random-init", type=int, default=0, metavar="K", help="also train K runs from torch's init")
    ap.add_argument("--torch-seed", type=int, default=0, help="seed of the --random-init runs (first of K)")
    ap.add_argument("--perturb", type=int, default=0, metavar="K",
                    help="also train K runs from the same start with every parameter moved by one float32 ulp")
    ap.add_argument("--epochs", type=int, help="train only the first N epochs")
    ap.add_argument("--json", type=Path, help="write the comparison here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    report = []
    for path in args.starts:
        try:
            start = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"{path}: cannot read an export: {e}")
        spec = start["spec"]
        m = spec["bins"]
        stem = path.stem
        orders = start["orders"][: args.epochs] if args.epochs else start["orders"]
        model = Model(spec)
        model.load_frl(start["params"])
        losses = train(model, start, orders)
        row = {"run": stem, "torch_losses": losses, "torch_kl": test_kl(model, start)}
        line = f"{stem}: torch (same start) final loss {losses[-1]:.4f}, test KL {row['torch_kl']:.4f}"
        if args.frl_runs:
            ours_path = args.frl_runs / f"{stem}.json"
            try:
                ours = json.loads(ours_path.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise SystemExit(f"{ours_path}: cannot read frl's run: {e}")
            theirs = ours["epoch_losses"][: len(losses)]
            diffs = [abs(a - b) for a, b in zip(losses, theirs)]
            row.update(frl_losses=theirs, frl_kl=ours["kl"])
            line += f" | frl final loss {theirs[-1]:.4f}, test KL {ours['kl']:.4f}"
            line += f" | epoch-loss |diff| first {diffs[0]:.2e}, max {max(diffs):.2e}"
        print(line)
        for e in sorted({1, 2, 5, 10, 20, 50, 100, 200, len(losses)}):
            if e <= len(losses):
                ours_e = f"  frl {row['frl_losses'][e - 1]:.4f}" if "frl_losses" in row else ""
                print(f"  epoch {e:4d}: torch {losses[e - 1]:.4f}{ours_e}")
        if args.perturb:
            finals = []
            for k in range(1, args.perturb + 1):
                rng = np.random.default_rng(k)
                nudged = []
                for p in start["params"]:
                    v = np.asarray(p["data"], dtype=np.float32)
                    direction = rng.integers(-1, 2, size=v.shape)
                    v = np.where(direction > 0, np.nextafter(v, np.float32(np.inf)),
                                 np.where(direction < 0, np.nextafter(v, np.float32(-np.inf)), v))
                    nudged.append({**p, "data": v.tolist()})
                fresh = Model(spec)
                fresh.load_frl(nudged)
                finals.append(train(fresh, start, orders)[-1])
                print(f"  torch, perturbation {k}: final loss {finals[-1]:.4f}", flush=True)
            stuck = sum(uniform(v, m) for v in finals)
            row.update(perturbed_final_losses=finals, perturbed_uniform=stuck)
            print(f"  one-ulp perturbations: {stuck} of {len(finals)} end no better than uniform")
        if args.random_init:
            finals, kls = [], []
            for k in range(args.random_init):
                torch.manual_seed(args.torch_seed + k)
                fresh = Model(spec)  # PyTorch's default init, as in the reference code
                rand_losses = train(fresh, start, orders)
                finals.append(rand_losses[-1])
                kls.append(test_kl(fresh, start))
                print(f"  torch init seed {args.torch_seed + k}: final loss {finals[-1]:.4f}, test KL {kls[-1]:.4f}",
                      flush=True)
            stuck = sum(uniform(v, m) for v in finals)
            row.update(random_init_final_losses=finals, random_init_kls=kls, random_init_uniform=stuck)
            print(f"  torch's own init: {stuck} of {len(finals)} runs end no better than uniform (ln {m} = "
                  f"{math.log(m):.3f})")
        report.append(row)
    if args.json:
        args.json.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

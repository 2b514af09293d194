"""The PyTorch side of `frl bench forecast --python`: one training step of frl's forecaster at the same shapes.

Usage: torch_forecast_step.py [--head linear|fourier] [--freqs 64] [--gamma 1e-6] [--batch 32] [--context 96]
                              [--prediction 24] [--layers 4] [--heads 4] [--embed 64] [--vocab 4096] [--steps 10]
                              [--threads 2] [--device cpu|cuda]

The network of frl's `forecast` model: token and position embeddings over context + prediction − 1 tokens, the
pre-LayerNorm GPT blocks of torch_dt_step.py (no dropout), a final LayerNorm, × d^-0.5, and the head over the
vocabulary read at the prediction positions: linear, or the Fourier head as the paper defines it (complex
coefficients, their autocorrelation, the density at the bin centres through one complex matrix product,
log(pmf + 1e-5), the regulariser γ·Σ 2π²k²|c_k|²); cross-entropy on the forecast tokens, AdamW (lr 1e-3, weight
decay 0), global-norm clip 1.0. Random tokens. Prints `forecast step: <median ms> ms`.
"""
import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_dt_step import Block
from torch_ops import median_ms


class FourierHead(nn.Module):
    def __init__(self, d, bins, freqs, gamma, eps=1e-5):
        super().__init__()
        self.n, self.gamma, self.eps = freqs, gamma, eps
        self.lin = nn.Linear(d, 2 * (freqs + 1))
        with torch.no_grad():
            self.lin.weight /= 1000.0
            self.lin.bias /= 10.0
        centres = -1 + (2 * torch.arange(bins, dtype=torch.float32) + 1) / bins
        k = torch.arange(1, freqs + 1, dtype=torch.float32)
        self.register_buffer("phase", torch.exp(1j * math.pi * k[:, None] * centres[None, :]))  # [N, m]
        self.register_buffer("k2", (2 * math.pi**2) * torch.arange(freqs + 1, dtype=torch.float32) ** 2)

    def forward(self, x):
        z = self.lin(x)
        a = torch.complex(z[:, : self.n + 1], z[:, self.n + 1 :])
        b = a.shape[0]
        c = F.conv1d(a[None], a.conj()[:, None, :], padding=self.n, groups=b)[0, :, self.n :]  # [B, N+1]
        pdf = 0.5 + (c[:, 1:] / c[:, :1].real).matmul(self.phase).real
        pmf = pdf / pdf.sum(-1, keepdim=True)
        reg = self.gamma * 2 * (self.k2 * c.abs() ** 2).sum(-1).mean()
        return torch.log(pmf + self.eps), reg


class Forecaster(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.tokens = a.context + a.prediction - 1
        self.embed = nn.Embedding(a.vocab, a.embed)
        self.position = nn.Embedding(self.tokens, a.embed)
        self.blocks = nn.Sequential(*[Block(a.embed, a.heads, 0.0) for _ in range(a.layers)])
        self.ln_f = nn.LayerNorm(a.embed)
        self.scale = a.embed**-0.5
        self.fourier = a.head == "fourier"
        self.head = FourierHead(a.embed, a.vocab, a.freqs, a.gamma) if self.fourier else nn.Linear(a.embed, a.vocab)
        self.context, self.prediction = a.context, a.prediction

    def forward(self, tokens, targets):
        positions = torch.arange(self.tokens, device=tokens.device)
        h = self.ln_f(self.blocks(self.embed(tokens) + self.position(positions)[None])) * self.scale
        h = h[:, self.context - 1 :].reshape(-1, h.shape[-1])
        if self.fourier:
            logp, reg = self.head(h)
            return F.nll_loss(logp, targets) + reg
        return F.cross_entropy(self.head(h), targets)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--head", default="linear", choices=["linear", "fourier"])
    p.add_argument("--gamma", type=float, default=1e-6)
    for name, default in [("freqs", 64), ("batch", 32), ("context", 96), ("prediction", 24), ("layers", 4),
                          ("heads", 4), ("embed", 64), ("vocab", 4096), ("steps", 10), ("threads", 2)]:
        p.add_argument(f"--{name}", type=int, default=default)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    model = Forecaster(a).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)

    def step():
        tokens = torch.randint(2, a.vocab, (a.batch, model.tokens), device=dev)
        targets = torch.randint(2, a.vocab, (a.batch * a.prediction,), device=dev)
        loss = model(tokens, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()

    print(f"forecast step: {median_ms(step, a.steps, sync=sync):.3f} ms")


if __name__ == "__main__":
    main()

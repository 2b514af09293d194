"""The PyTorch baseline of `frl bench dqn`: one C51 update with the shapes and algorithm of frl's `dqn` agent.

Usage: c51_torch_step.py [--steps 200 --batch 128 --atoms 101 --actions 2 --obs 4 --threads 2]

Online and target MLPs (obs → 120 → 84, ReLU) with one linear head per action over `atoms` bins (the atoms are bin
centres on [-125, 125], targets clamped to [-100, 100]: frl's default `support_margin`), double-DQN bootstrap action,
the C51 projection by two scatter-adds, cross-entropy, global-norm clip 10, Adam(W) with lr 1e-3 and no weight decay.
Random transitions; prints `c51 linear: <median ms> ms`.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class QNet(nn.Module):
    def __init__(self, obs, actions, atoms):
        super().__init__()
        self.torso = nn.Sequential(nn.Linear(obs, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.heads = nn.ModuleList(nn.Linear(84, atoms) for _ in range(actions))

    def log_pmfs(self, x):
        f = self.torso(x)
        return torch.stack([F.log_softmax(h(f), dim=1) for h in self.heads], dim=1)  # [B, A, N]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--atoms", type=int, default=101)
    p.add_argument("--actions", type=int, default=2)
    p.add_argument("--obs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n, b = a.atoms, a.batch
    lo, hi, pad = -100.0, 100.0, 25.0
    dz = (hi - lo + 2 * pad) / n
    z = lo - pad + (torch.arange(n, dtype=torch.float32) + 0.5) * dz
    online, target = QNet(a.obs, a.actions, n), QNet(a.obs, a.actions, n)
    target.load_state_dict(online.state_dict())
    opt = torch.optim.AdamW(online.parameters(), lr=1e-3, weight_decay=0.0)
    obs, next_obs = torch.randn(b, a.obs), torch.randn(b, a.obs)
    actions = torch.randint(0, a.actions, (b,))
    rewards, discounts = torch.ones(b), torch.full((b,), 0.99)

    def step():
        with torch.no_grad():
            probs = target.log_pmfs(next_obs).exp()
            greedy = (online.log_pmfs(next_obs).exp() @ z).argmax(1)
            chosen = probs[torch.arange(b), greedy]
            tz = (rewards[:, None] + discounts[:, None] * z[None, :]).clamp(lo, hi)
            pos = ((tz - z[0]) / dz).clamp(0, n - 1)
            low = pos.floor()
            frac = pos - low
            l = low.long()
            u = (l + 1).clamp(max=n - 1)
            m = torch.zeros(b, n).scatter_add_(1, l, chosen * (1 - frac)).scatter_add_(1, u, chosen * frac)
        log_p = online.log_pmfs(obs)[torch.arange(b), actions]
        loss = -(m * log_p).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(online.parameters(), 10.0)
        opt.step()
        return loss.item()

    for _ in range(10):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"c51 linear: {1000 * times[len(times) // 2]:.3f} ms")


if __name__ == "__main__":
    main()

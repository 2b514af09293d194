"""The PyTorch side of `frl bench train --python`: one Decision Transformer training step of frl's shapes.

Usage: torch_dt_step.py [--device cpu|cuda] [--batch 64] [--context 20] [--layers 3] [--heads 1] [--embed 128]
                        [--bins 64] [--steps 20] [--threads 2] [--frames]

The network of frl's `dt` agent: return, state (3 numbers) and action (1 number) embeddings plus a timestep
embedding, interleaved into 3·context tokens, LayerNorm, pre-LayerNorm GPT blocks (fused QKV projection, causal
scaled-dot-product attention, a 4×-wide exact-GELU MLP, dropout 0.1), a final LayerNorm and a linear head over
`bins` action bins read at the state tokens; cross-entropy, AdamW (lr 1e-4, weight decay 1e-4), global-norm clip
0.25. With --frames, the Atari form: states are stacks of 4 84×84 frames through the Nature-DQN encoder (conv
8×8/4 32, 4×4/2 64, 3×3/1 64 with ReLU, linear to the width, tanh) and actions are one-hot over `bins` actions.
Random inputs. Prints `dt step: <median ms> ms` (the GPU synchronised before each clock read).
"""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_ops import median_ms


class Block(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        split = lambda z: z.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=True)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class NatureCnn(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
                                   nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 7 * 7, d),
                                   nn.Tanh())

    def forward(self, x):
        b, t = x.shape[:2]
        return self.convs(x.reshape(b * t, 4, 84, 84)).reshape(b, t, -1)


class DT(nn.Module):
    def __init__(self, d, layers, heads, bins, max_len=1000, obs=3, act=1, dropout=0.1, frames=False):
        super().__init__()
        self.ret, self.action = nn.Linear(1, d), nn.Linear(act, d)
        self.state = NatureCnn(d) if frames else nn.Linear(obs, d)
        self.time = nn.Embedding(max_len, d)
        self.ln, self.ln_f = nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(d, heads, dropout) for _ in range(layers)])
        self.head = nn.Linear(d, bins)

    def forward(self, returns, states, actions, timesteps):
        b, t = states.shape[:2]
        te = self.time(timesteps)
        tokens = torch.stack([self.ret(returns) + te, self.state(states) + te, self.action(actions) + te], dim=2)
        x = self.blocks(self.drop(self.ln(tokens.reshape(b, 3 * t, -1))))
        return self.head(self.ln_f(x)[:, 1::3])  # at the state tokens: [b, t, bins]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    for name, default in [("batch", 64), ("context", 20), ("layers", 3), ("heads", 1), ("embed", 128), ("bins", 64),
                          ("steps", 20), ("threads", 2)]:
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--frames", action="store_true", help="Nature-CNN over 4x84x84 frames, one-hot actions")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    act = a.bins if a.frames else 1
    model = DT(a.embed, a.layers, a.heads, a.bins, act=act, frames=a.frames).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    b, t = a.batch, a.context
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    def step():
        returns = torch.randn(b, t, 1, device=dev)
        if a.frames:
            states = torch.randint(0, 256, (b, t, 4, 84, 84), device=dev).float().div_(255.0)
            actions = F.one_hot(torch.randint(0, a.bins, (b, t), device=dev), a.bins).float()
        else:
            states, actions = torch.randn(b, t, 3, device=dev), torch.randn(b, t, 1, device=dev)
        timesteps = torch.arange(t, device=dev).expand(b, t)
        targets = torch.randint(0, a.bins, (b, t), device=dev)
        logits = model(returns, states, actions, timesteps)
        loss = F.cross_entropy(logits.reshape(b * t, a.bins), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        loss.item()

    print(f"dt step: {median_ms(step, a.steps, sync=sync):.3f} ms")


if __name__ == "__main__":
    main()

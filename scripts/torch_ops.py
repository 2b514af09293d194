"""The PyTorch side of `frl bench ops`: the same single operations at the same shapes, milliseconds per call.

Usage: torch_ops.py [--steps 50] [--threads 2]
Prints one line per op: `<name>: <median ms> ms` (names as in frl's `bench::OPS`).
"""
import argparse
import time

import torch
import torch.nn.functional as F


def median_ms(op, steps, warmup=3, sync=lambda: None):
    """Median wall-clock milliseconds of `op()` over `steps` calls after `warmup` ones (`sync` waits for a GPU)."""
    times = []
    for s in range(steps + warmup):
        sync()
        t0 = time.perf_counter()
        op()
        sync()
        if s >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    r = lambda *s: torch.randn(*s)
    x, w, xt, g = r(4096, 128), r(128, 64), r(4096, 128), r(4096, 64)
    h, w1 = r(3840, 128), r(128, 512)
    q, k = r(256, 90, 32), r(256, 32, 90)
    logits, a, b, scores = r(4096, 64), r(3840, 512), r(3840, 512), r(256, 90, 90)
    ops = [
        ("matmul 4096x128 @ 128x64", lambda: x @ w),
        ("matmul 128x4096 @ 4096x64 (transposed lhs)", lambda: xt.t() @ g),
        ("matmul 3840x128 @ 128x512", lambda: h @ w1),
        ("batched matmul 256x90x32 @ 256x32x90", lambda: torch.bmm(q, k)),
        ("exp 4096x64", lambda: logits.exp()),
        ("gelu (erf) 3840x512", lambda: F.gelu(a)),
        ("add 3840x512", lambda: a + b),
        ("softmax 256x90x90", lambda: torch.softmax(scores, dim=2)),
    ]
    for name, op in ops:
        print(f"{name}: {median_ms(op, args.steps):.4f} ms")


if __name__ == "__main__":
    main()

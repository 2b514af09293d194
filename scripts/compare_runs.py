"""Compares two frl run folders: the parameters and optimiser moments of their newest checkpoints (safetensors) and
their TensorBoard scalars (TensorBoard's EventAccumulator), bit for bit. Wall-clock rates (`*_per_sec`) are left out.
Exit status 0 when the runs are equal, 1 otherwise, with the first differences named.

    python scripts/compare_runs.py runs/online/a runs/online/b
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def newest_checkpoint(run: Path) -> Path:
    found = []
    for p in (run / "checkpoints").glob("*.safetensors"):
        m = re.search(r"(\d+)\.safetensors$", p.name)
        if m:
            found.append((int(m.group(1)), p))
    if not found:
        sys.exit(f"{run}: no numbered checkpoint in {run / 'checkpoints'}")
    return max(found)[1]


def scalars(run: Path) -> dict:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        if tag.endswith("_per_sec"):
            continue
        out[tag] = [(e.step, np.float32(e.value).tobytes()) for e in acc.Scalars(tag)]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    args = ap.parse_args()
    problems = []
    ca, cb = newest_checkpoint(args.a), newest_checkpoint(args.b)
    if ca.name != cb.name:
        problems.append(f"newest checkpoints differ in step: {ca.name} vs {cb.name}")
    ta, tb = load_file(str(ca)), load_file(str(cb))
    if set(ta) != set(tb):
        problems.append(f"tensor names differ: {sorted(set(ta) ^ set(tb))[:5]}")
    same_tensors = 0
    for name in sorted(set(ta) & set(tb)):
        x, y = ta[name], tb[name]
        if x.shape != y.shape or x.tobytes() != y.tobytes():
            problems.append(f"tensor {name} differs")
        else:
            same_tensors += 1
    sa, sb = scalars(args.a), scalars(args.b)
    if set(sa) != set(sb):
        problems.append(f"scalar tags differ: {sorted(set(sa) ^ set(sb))}")
    same_points = 0
    for tag in sorted(set(sa) & set(sb)):
        if sa[tag] != sb[tag]:
            problems.append(f"scalar {tag} differs ({len(sa[tag])} vs {len(sb[tag])} points)")
        else:
            same_points += len(sa[tag])
    if problems:
        for p in problems[:20]:
            print(p)
        return 1
    print(
        f"equal: {same_tensors} tensors of {ca.name} bit for bit, {len(sa)} scalar tags with {same_points} points "
        "(wall-clock rates left out)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Times two frl binaries in one sitting: `frl bench heads`, `frl bench dqn` and a short `frl toy`, each benchmark
run with the base and the new binary in turn (base, new, base, new, ...), then prints per timing line the medians and
the ratio new / base (below 1: the new binary is faster).

    scripts/compare_speed.py --base a97f1bb --new HEAD          # git revisions: built once, cached
    scripts/compare_speed.py --base /tmp/frl-old --new target/release/frl --rounds 5
    scripts/compare_speed.py --base f68f298 --new HEAD --only dqn --json out.json

A revision is checked out into a temporary git worktree and built with `cargo build --release --bin frl` into its
own target folder (FRL_COMPARE_TARGET, default ~/.cache/frl-compare-target, shared by all revisions so that
dependencies build once); the binary is kept as ~/.cache/frl-compare/frl-<commit>. Machines drift from day to day:
compare binaries in the same run, never against a figure from another day.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("FRL_COMPARE_CACHE", Path.home() / ".cache" / "frl-compare"))
TARGET = Path(os.environ.get("FRL_COMPARE_TARGET", Path.home() / ".cache" / "frl-compare-target"))

# Benchmarks: name -> (arguments after the binary, whether the whole command's wall time is the measurement).
BENCHES = {
    "heads": (["bench", "heads"], False),
    "dqn": (["bench", "dqn", "--steps", "200"], False),
    "toy": (["toy", "--epochs", "20", "--quiet"], True),
}

# A timing line: a number, an optional unit, then the name (`   0.1460  toy MLP ...`, `  1.800 ms/update  C51 ...`).
LINE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s+((?:ms/\w+|ms|steps/s)?)\s*(.+?)\s*$")


def binary(spec):
    """The frl binary for `spec`: a path to an executable, or a git revision built into the cache."""
    path = Path(spec)
    if path.is_file() and os.access(path, os.X_OK):
        return path.resolve(), str(path)
    try:
        commit = subprocess.run(["git", "rev-parse", "--verify", f"{spec}^{{commit}}"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
    except subprocess.CalledProcessError:
        sys.exit(f"error: `{spec}` is neither an executable file nor a git revision of {ROOT}")
    out = CACHE / f"frl-{commit[:12]}"
    if out.exists():
        return out, f"{spec} ({commit[:9]})"
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="frl-compare-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            print(f"building {spec} ({commit[:9]}) into {TARGET} ...", file=sys.stderr)
            env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
            subprocess.run(["cargo", "build", "--release", "--bin", "frl"], cwd=tree, env=env, check=True)
            tmp_out = out.with_suffix(".tmp")
            shutil.copy2(TARGET / "release" / "frl", tmp_out)
            tmp_out.rename(out)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    return out, f"{spec} ({commit[:9]})"


def run_once(frl, bench, scratch):
    """Timings of one run of `bench` with `frl`: {name: value}."""
    args, wall = BENCHES[bench]
    args = list(args)
    if bench == "toy":
        out = Path(scratch) / f"toy-{time.monotonic_ns()}"
        args += ["--out", str(out)]
    started = time.monotonic()
    proc = subprocess.run([str(frl), *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"error: `{frl} {' '.join(args)}` exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    if wall:
        return {f"frl {' '.join(BENCHES[bench][0])} (wall s)": seconds}
    timings = {}
    for line in proc.stdout.splitlines():
        m = LINE.match(line)
        if m:
            value, unit, name = m.groups()
            timings[f"{name} ({unit or 'ms'})"] = float(value)
    if not timings:
        sys.exit(f"error: no timing lines in the output of `{frl} {' '.join(args)}`:\n{proc.stdout[-2000:]}")
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="binary or git revision to compare against")
    parser.add_argument("--new", required=True, help="binary or git revision under test")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each benchmark with each binary (default 3)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHES), help="benchmarks to run (default all)")
    parser.add_argument("--json", type=Path, help="also write medians and ratios here")
    args = parser.parse_args()
    if args.rounds < 1:
        sys.exit("error: --rounds must be at least 1")
    (base, base_name), (new, new_name) = binary(args.base), binary(args.new)
    results = []
    with tempfile.TemporaryDirectory(prefix="frl-compare-runs-") as scratch:
        for bench in args.only or list(BENCHES):
            samples = {"base": {}, "new": {}}
            for r in range(args.rounds):
                for which, frl in (("base", base), ("new", new)):
                    print(f"{bench}: round {r + 1}/{args.rounds}, {which}", file=sys.stderr)
                    for name, value in run_once(frl, bench, scratch).items():
                        samples[which].setdefault(name, []).append(value)
            for name, base_values in samples["base"].items():
                new_values = samples["new"].get(name)
                if not new_values:
                    continue
                b, n = statistics.median(base_values), statistics.median(new_values)
                results.append({"bench": bench, "name": name, "base": b, "new": n, "ratio": n / b if b else None,
                                "base_samples": base_values, "new_samples": new_values})
    print(f"base: {base_name}\nnew:  {new_name}\nmedians of {args.rounds} alternating runs; ratio = new / base "
          "(times: below 1 is faster; steps/s: above 1 is faster)")
    print(f"{'base':>12} {'new':>12} {'ratio':>7}  timing")
    for r in results:
        ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "-"
        print(f"{r['base']:>12.4f} {r['new']:>12.4f} {ratio:>7}  {r['name']}")
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps({"base": base_name, "new": new_name, "rounds": args.rounds, "results": results},
                                  indent=2))
        tmp.rename(args.json)


if __name__ == "__main__":
    main()

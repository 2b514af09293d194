#!/usr/bin/env python3
"""Groups a `perf` profile of an frl command by where the time goes (matrix products, allocation, GELU, ...).

    perf record -o perf.data frl bench dt --steps 5
    scripts/perf_breakdown.py perf.data

Reads `perf report`'s flat profile (self time per symbol) and sums it into the groups below, first match wins.
"""

import re
import subprocess
import sys

GROUPS = [
    ("matrix products (gemm)", r"gemm"),
    ("kernel: zeroing fresh pages", r"clear_page|folio_zero"),
    ("kernel: other", r"^\[k\]"),
    ("memcpy / memmove", r"memmove|memcpy"),
    ("memset (zeroed buffers)", r"memset"),
    ("allocator", r"^\[\.\] _?mi_|mimalloc"),
    ("erf (exact GELU)", r"erf"),
    ("exp", r"expf?(_fma)?$|__exp"),
    ("random numbers (dropout masks)", r"Distribution|chacha|rand_core|StdRng"),
    ("elementwise ops", r"binary_op|unary_op|zip_|scalar_op|comparison|mask_"),
    ("reductions (sum, max along an axis)", r"reduce"),
    ("softmax", r"softmax"),
    ("layout copies (transpose, contiguous)", r"copy_2d|strided|into_contiguous|permute|copy_"),
    ("collecting iterators into new buffers", r"from_iter|collect"),
    ("autodiff bookkeeping", r"burn_autodiff"),
]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = subprocess.run(
        ["perf", "report", "-i", sys.argv[1], "--no-children", "--sort", "symbol", "-g", "none",
         "--percent-limit", "0", "--stdio"],
        check=True, capture_output=True, text=True,
    ).stdout
    totals: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\[.\]\s+.*?)\s*$", line)
        if not m:
            continue
        share, symbol = float(m.group(1)), m.group(2)
        name = symbol[4:].strip()
        group = next((g for g, pat in GROUPS if re.search(pat, symbol if pat.startswith("^") else name)), "other")
        totals[group] = totals.get(group, 0.0) + share
    for group, share in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{share:6.1f}%  {group}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

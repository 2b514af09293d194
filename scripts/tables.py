"""What the experiment-table scripts share."""

import statistics


def mean_sd(xs):
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt_mean_sd(xs, digits=1):
    """`mean ± sd` of `xs` at `digits` decimals; `—` when empty, the mean alone for a single value."""
    if not xs:
        return "—"
    mean, sd = mean_sd(xs)
    return f"{mean:.{digits}f}" if len(xs) == 1 else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def emit(lines, out=None):
    """Prints the table's lines and, with `out`, writes them there too (folders made as needed)."""
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)

"""What the experiment-table scripts share."""

import statistics


def mean_sd(xs):
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)

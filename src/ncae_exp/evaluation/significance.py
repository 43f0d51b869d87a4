"""Is model A better than model B on the same splits? Mean ± std over repeats and a paired
t-test (the paper's protocol repeats each experiment over seeds; a seed fixes the split, so
two models' results on one seed form a pair)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Two-sided paired t-test of ``a - b`` (``scipy.stats.ttest_rel``): ``t``, ``p``,
    ``mean_diff``, ``n``. ``p`` is NaN with fewer than two pairs or identical pairs (no
    variance, up to float noise: nothing to test)."""
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"a paired test needs as many values on each side, got {x.size} and {y.size}")
    diff = x - y
    out = {"n": float(x.size), "mean_diff": float(diff.mean()) if x.size else float("nan")}
    if x.size < 2 or np.ptp(diff) <= 1e-12 * max(1.0, float(np.abs(diff).max())):
        return {**out, "t": float("nan"), "p": float("nan")}
    result = stats.ttest_rel(x, y)
    return {**out, "t": float(result.statistic), "p": float(result.pvalue)}


def format_mean_std(values: Sequence[float], digits: int = 4) -> str:
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"

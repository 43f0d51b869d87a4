"""Confidence weights of unobserved items: NCAE's implicit loss (Eq. 10, 11) and eALS.

Under implicit feedback an unobserved item is either disliked or unseen. A popular item the
user skipped is more likely disliked, so its "0" deserves more trust: c_j grows with the
item's popularity, c_j = c0 · f_j^ω / Σ_k f_k^ω with f_j = |R_j| / Σ_k |R_k|. c0 sets the
total weight of the negatives, ω how strongly popularity skews it (ω = 0: equal weights).
The weights always sum to c0 over the observed items.

An item nobody interacted with gets c = 0 — it has no popularity to trust (and its output
unit is never trained on a positive either). NCAE− uses one constant instead
(:func:`uniform_confidence`, as WMF).
"""

from __future__ import annotations

import numpy as np

from ncae_exp.errors import ConfigError


def popularity_confidence(item_counts: np.ndarray, c0: float = 512.0, omega: float = 0.5) -> np.ndarray:
    """c_j per item (float64) from the training interaction counts |R_j|."""
    c0, omega = float(c0), float(omega)
    if not 0.0 <= c0 < np.inf:
        raise ConfigError(f"the confidence scale c0 must be a finite number >= 0, got {c0}")
    if not 0.0 <= omega < np.inf:
        raise ConfigError(f"the popularity exponent omega must be a finite number >= 0, got {omega}")
    counts = np.asarray(item_counts, dtype=np.float64)
    if counts.ndim != 1 or np.any(~np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("item_counts must be a 1-D array of finite non-negative counts")
    observed = counts > 0
    weights = np.zeros_like(counts)
    if not observed.any():
        return weights
    # f_j^ω / Σ f_k^ω does not depend on how f is normalised: dividing by the largest count
    # instead of the total keeps the biggest term at 1, so a large ω cannot underflow the sum.
    powered = (counts[observed] / counts.max()) ** omega
    weights[observed] = c0 * powered / powered.sum()
    return weights


def uniform_confidence(n_items: int, c: float = 0.05) -> np.ndarray:
    """The same weight c for every item (NCAE−; WMF's c = 0.05), float64."""
    c = float(c)
    if not 0.0 <= c < np.inf:
        raise ConfigError(f"the uniform confidence c must be a finite number >= 0, got {c}")
    if int(n_items) != n_items or n_items < 0:
        raise ValueError(f"n_items must be a non-negative integer, got {n_items}")
    return np.full(int(n_items), c, dtype=np.float64)

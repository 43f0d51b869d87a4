"""Fold-in for the matrix-factorisation models: a new user's factor solved against the fixed
item factors (one ALS half-step), so users who were not in training get scores without
retraining.

Each model's objective, with the items fixed, is a ridge regression in the user's factor:

    (G + Σ_{i∈R_u} a_i f_i f_iᵀ + diag(ρ(n_u))) w = Σ_{i∈R_u} b_i f_i

where f_i is the item's feature row (its factors, plus a 1 for a user bias), ``G`` the part
every user shares (WMF's and eALS's weighted missing data), ``a``/``b`` the per-entry weights
and ``ρ`` the penalty (ALS-WR and BiasedMF scale it by the number of ratings n_u).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ncae_exp.errors import ConfigError


def check_vectors(x: sp.csr_matrix, n_items: int) -> sp.csr_matrix:
    """``x`` as a canonical CSR matrix over the model's ``n_items`` items."""
    x = sp.csr_matrix(x, dtype=np.float64)
    if x.shape[1] != n_items:
        raise ConfigError(f"fold-in vectors have {x.shape[1]} items, the model has {n_items}")
    x.sum_duplicates()
    return x


def solve_users(
    x: sp.csr_matrix,
    feats: np.ndarray,
    shared: np.ndarray | None,
    lhs_weight: Callable[[np.ndarray, np.ndarray], np.ndarray],
    rhs_weight: Callable[[np.ndarray, np.ndarray], np.ndarray],
    penalty: Callable[[int], np.ndarray],
) -> np.ndarray:
    """One solved user factor per row of ``x`` (see the module docstring): ``lhs_weight(items,
    values)`` gives a_i, ``rhs_weight(items, values)`` b_i, ``penalty(n_u)`` the diagonal. A
    row without entries (and no shared part) gets zeros."""
    k = feats.shape[1]
    out = np.zeros((x.shape[0], k))
    for row in range(x.shape[0]):
        idx = x.indices[x.indptr[row] : x.indptr[row + 1]]
        vals = x.data[x.indptr[row] : x.indptr[row + 1]]
        if len(idx) == 0 and shared is None:
            continue
        f = feats[idx]
        lhs = (np.zeros((k, k)) if shared is None else shared.copy()) + (f.T * lhs_weight(idx, vals)) @ f
        lhs[np.diag_indices(k)] += penalty(len(idx))
        out[row] = np.linalg.solve(lhs, f.T @ rhs_weight(idx, vals))
    return out

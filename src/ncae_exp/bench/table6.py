"""Section ``table6_grid``: the paper's Table 6 on this machine — seconds per epoch of the
3-layer item-based NCAE (``model=ncae_paper``) at ML-10M shape for K ∈ {100, 300, 500} ×
a share of the ratings ∈ {10, 30, 50, 100} % — and whether the time grows linearly with the
number of ratings, as the sparse modules promise (a least-squares line per K, its R² and
the seconds per million ratings)."""

from __future__ import annotations

import gc

import numpy as np
import scipy.sparse as sp

from ncae_exp.bench import SEED
from ncae_exp.bench.configs import build
from ncae_exp.bench.measure import progress, timed

LABEL = "table6_grid"
HIDDEN = (100, 300, 500)
SHARES = (0.1, 0.3, 0.5, 1.0)


def subsample(matrix: sp.csr_matrix, share: float, seed: int) -> sp.csr_matrix:
    """A uniformly random ``share`` of the matrix's ratings (same shape)."""
    if share >= 1.0:
        return matrix
    coo = matrix.tocoo()
    keep = np.random.default_rng(seed).random(coo.nnz) < share
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape)


def linear_fit(nnz: list[int], seconds: list[float]) -> dict:
    """seconds ≈ intercept + slope·nnz by least squares, with R²."""
    x, y = np.asarray(nnz, float), np.asarray(seconds, float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 1.0
    return {"seconds_per_million_ratings": float(slope * 1e6), "intercept_seconds": float(intercept), "r2": r2}


def bench_table6(shape: dict) -> dict:
    from ncae_exp.bench.ml10m import synthetic_of_shape

    data, _ = synthetic_of_shape("ml10m_shape", shape)
    cells, fits = [], {}
    for k in HIDDEN:
        overrides = ("model=ncae_paper", f"model.hidden=[{k},{k}]", f"seed={SEED}")
        for share in SHARES:
            matrix = subsample(data.matrix, share, SEED)
            model, _ = build(overrides)
            model.prepare(matrix, data.rating_scale)
            model.train_step(next(iter(model.epoch_batches())))  # traces the step
            loss, seconds = timed(model.train_epoch)
            cells.append({"hidden": k, "share": share, "nnz": int(matrix.nnz), "n_batches": model.n_batches,
                          "epoch_seconds": seconds, "final_loss": float(loss)})
            progress(f"{LABEL}: K={k} share={share:.0%} ({matrix.nnz:,} ratings) epoch {seconds:.2f} s")
            del model, matrix
            gc.collect()
        mine = [c for c in cells if c["hidden"] == k]
        fits[str(k)] = linear_fit([c["nnz"] for c in mine], [c["epoch_seconds"] for c in mine])
    return {
        "config_overrides": ["model=ncae_paper", "model.hidden=[K,K]"],
        "hidden": list(HIDDEN), "shares": list(SHARES), "cells": cells, "linear_in_nnz": fits,
        "method": "one traced warm-up step, then one timed train_epoch() per cell; ratings subsampled uniformly",
        "paper_gpu_epoch_seconds_full_data": {"100": 4.95, "300": 5.68, "500": 6.31},
    }

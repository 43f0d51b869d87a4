"""Fold-in for NCAE: scores for a user who was not in training, without retraining.

User-based NCAE reads a user's vector, so a new user's vector simply goes through the
network (implicit feedback binarised first, as in training): a training user's own vector
gives exactly that user's scores.

Item-based NCAE (the explicit default) has no input for a new user: each item's input
vector is its column over the *training* users, and a user is an output unit, ŷ_ui =
φ(w_u·z_i + b_u) with z_i the item's last hidden code. The projection keeps the network
fixed and treats the new user's input weight as zero (one user among thousands barely moves
an item's code), so z_i is unchanged; it then fits only the new output unit (w_u, b_u; K + 1
numbers) to the user's ratings by ridge regression on the pre-activation:

    min_{w,b} Σ_{i∈R_u} (w·z_i + b − t_i)² + λ (‖w‖² + b²),
    t_i = atanh(clip((r_i − mid) / half_range, −1 + ε, 1 − ε))   (tanh output; ε = 0.005)
    t_i = r_i                                                     (linear output: AutoRec)

with λ the model's own L2 weight (``model.l2``). The clip keeps a rating at the ends of
the scale finite (5 on 1–5 maps to 4.99). With fewer ratings than K the fit nearly
interpolates the given ratings; the other items are scored through their codes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.models.common.interactions import binarise

CLIP_EPS = 0.005


def fold_in_scores(model, x: sp.csr_matrix) -> np.ndarray:
    """Dense scores (rows of ``x`` × items) of a prepared NCAE for new users' vectors."""
    n_items = model.dim if model.based == "user" else model.x.shape[0]
    x = sp.csr_matrix(x, dtype=np.float32)
    if x.shape[1] != n_items:
        raise ConfigError(f"fold-in vectors have {x.shape[1]} items, the model has {n_items}")
    x.sum_duplicates()
    x.sort_indices()
    if model.based == "user":
        if model.feedback.name == "implicit":
            x = binarise(x)
        rows = np.arange(x.shape[0])
        out = np.empty((x.shape[0], n_items), dtype=np.float32)
        for start in range(0, len(rows), model.predict_batch_size):
            block = rows[start : start + model.predict_batch_size]
            out[block] = model.dense_outputs(x, block).numpy()
        return out
    return _project_items(model, x)


def item_codes(model) -> np.ndarray:
    """z_i of every item (N × K), float64: the last hidden layer for each item's vector."""
    n_items = model.x.shape[0]
    codes = []
    for start in range(0, n_items, model.predict_batch_size):
        rows = np.arange(start, min(start + model.predict_batch_size, n_items))
        codes.append(model.encode_rows(model.x, rows).numpy())
    return np.concatenate(codes).astype(np.float64)


def pre_activation_targets(net, ratings: np.ndarray) -> np.ndarray:
    """The pre-activation whose output is ``ratings`` (clipped inside the tanh's range)."""
    if net.linear_output:
        return ratings.astype(np.float64)
    unit = (ratings - net.out_mid) / net.out_half_range
    return np.arctanh(np.clip(unit, -1.0 + CLIP_EPS, 1.0 - CLIP_EPS))


def _project_items(model, x: sp.csr_matrix) -> np.ndarray:
    z = item_codes(model)
    design = np.hstack([z, np.ones((len(z), 1))])  # [z_i, 1]: w and the bias b together
    lam = max(model.l2, 1e-8)  # λ = 0 would leave fewer ratings than K + 1 unknowns singular
    out = np.empty((x.shape[0], len(z)), dtype=np.float32)
    for row in range(x.shape[0]):
        idx = x.indices[x.indptr[row] : x.indptr[row + 1]]
        t = pre_activation_targets(model.network, x.data[x.indptr[row] : x.indptr[row + 1]])
        a = design[idx]
        lhs = a.T @ a
        lhs[np.diag_indices_from(lhs)] += lam
        theta = np.linalg.solve(lhs, a.T @ t)
        out[row] = model.network.rescale(design @ theta).numpy()
    return out

"""NCAE's explicit-feedback objectives: Eq. 5 (per input vector) and Eq. 6 (mini-batch).

Targets are given as the observed entries of the batch only — (row, prediction, target,
dropped) per entry — so unobserved outputs carry no error at all.
"""

from __future__ import annotations

import tensorflow as tf


def eq5_loss(
    pred: tf.Tensor,
    target: tf.Tensor,
    dropped: tf.Tensor,
    rows: tf.Tensor,
    n_rows: tf.Tensor,
    alpha: float,
    beta: float,
    normalize: bool = True,
) -> tf.Tensor:
    """L_{α,β}(u, ũ) for every input vector of the batch (shape [n_rows]).

    α/|K(u)| · Σ_{j ∈ C(ũ)∩K(u)} (û_j − u_j)²  +  β/|K(u)| · Σ_{j ∈ K(u)−C(ũ)} (û_j − u_j)²

    ``dropped`` marks the entries that input dropout removed (C(ũ)): α weighs prediction of
    those, β reconstruction of the kept ones. Dividing by |K(u)| balances heavy and light
    rows (``normalize=False`` keeps the plain sum, as AutoRec and CFN do). A row without
    observed entries contributes 0.
    """
    pred = tf.convert_to_tensor(pred, tf.float32)
    target = tf.convert_to_tensor(target, tf.float32)
    weight = tf.where(tf.cast(dropped, tf.bool), tf.cast(alpha, tf.float32), tf.cast(beta, tf.float32))
    weighted = weight * tf.square(pred - target)
    per_row = tf.math.unsorted_segment_sum(weighted, rows, n_rows)
    if not normalize:
        return per_row
    counts = tf.math.unsorted_segment_sum(tf.ones_like(weighted), rows, n_rows)
    return per_row / tf.maximum(counts, 1.0)


def l2_penalty(weights: list, lam: float) -> tf.Tensor:
    """(λ/2)·‖W+‖² over every weight and bias. ``tf.nn.l2_loss`` (Σw²/2) reads a matrix once;
    square-then-sum would write and read a copy of it — at ML-10M shape 3 passes over 280 MB."""
    return tf.cast(lam, tf.float32) * tf.add_n([tf.nn.l2_loss(w) for w in weights])


def eq6_objective(per_row_loss: tf.Tensor, weights: list, lam: float) -> tf.Tensor:
    """(1/M) Σ_i L_{α,β}(u_i, ũ_i) + (λ/2)·‖W+‖², with M the rows of the mini-batch."""
    return tf.reduce_mean(per_row_loss) + l2_penalty(weights, lam)


# -- implicit feedback (Eq. 10–11) --------------------------------------------------------
#
# L_2(u, ũ) = Σ_{j∈K(u)} (ŷ_j − 1)²  +  Σ_{j∉K(u)} c_j ŷ_j²       (not divided by |K(u)|)
#
# Written as "all items weighted by c, corrected on the observed ones":
#   Σ_j c_j ŷ_j²  +  Σ_{j∈K(u)} [(ŷ_j − 1)² − c_j ŷ_j²]
# The first sum is the only O(N) part. With a linear output ŷ_j = h·w_j + b_j it is a
# quadratic form in h: hᵀGh + 2h·g + s, with G = Σ_j c_j w_j w_jᵀ (K×K), g = Σ_j c_j b_j w_j,
# s = Σ_j c_j b_j² — computed once per mini-batch (eALS's trick), so a user costs
# O((K + |R_i|)·K) instead of O(N·K).


def eq11_dense(out: tf.Tensor, observed: tf.Tensor, confidence: tf.Tensor) -> tf.Tensor:
    """Eq. 11 per row from the full output matrix (B × N) and a 0/1 observed mask."""
    observed = tf.cast(observed, out.dtype)
    per_entry = observed * tf.square(out - 1.0) + (1.0 - observed) * confidence * tf.square(out)
    return tf.reduce_sum(per_entry, axis=1)


def eq11_full(out: tf.Tensor, obs_rows: tf.Tensor, obs_cols: tf.Tensor, confidence: tf.Tensor) -> tf.Tensor:
    """Eq. 11 per row from the full output matrix (B × N) and the observed (row, column)
    pairs — the same sum as :func:`eq11_dense`, computed as "all items weighted by c" (one
    matrix-vector product of ŷ² with c) plus the correction on the observed pairs, so no
    B × N mask and a handful of B × N passes instead of a dozen, forward and backward."""
    all_items = tf.linalg.matvec(tf.square(out), confidence)
    obs_pred = tf.gather_nd(out, tf.stack([obs_rows, obs_cols], axis=1))
    correction = tf.square(obs_pred - 1.0) - tf.gather(confidence, obs_cols) * tf.square(obs_pred)
    return all_items + tf.math.unsorted_segment_sum(correction, obs_rows, tf.shape(out)[0])


def eq11_gram(
    h: tf.Tensor,
    kernel: tf.Tensor,
    bias: tf.Tensor,
    confidence: tf.Tensor,
    obs_rows: tf.Tensor,
    obs_cols: tf.Tensor,
    obs_pred: tf.Tensor,
) -> tf.Tensor:
    """Eq. 11 per row for a linear output layer (``kernel`` N × K, output-major), without
    forming the B × N output. ``obs_pred`` are the outputs at the observed (row, col) pairs."""
    weighted = kernel * confidence[:, None]
    gram = tf.matmul(kernel, weighted, transpose_a=True)  # K × K
    g = tf.linalg.matvec(weighted, bias, transpose_a=True)  # K
    s = tf.reduce_sum(confidence * tf.square(bias))
    all_items = tf.reduce_sum(tf.matmul(h, gram) * h, axis=1) + 2.0 * tf.linalg.matvec(h, g) + s
    c_obs = tf.gather(confidence, obs_cols)
    correction = tf.square(obs_pred - 1.0) - c_obs * tf.square(obs_pred)
    n_rows = tf.shape(h)[0]
    return all_items + tf.math.unsorted_segment_sum(correction, obs_rows, n_rows)

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
) -> tf.Tensor:
    """L_{α,β}(u, ũ) for every input vector of the batch (shape [n_rows]).

    α/|K(u)| · Σ_{j ∈ C(ũ)∩K(u)} (û_j − u_j)²  +  β/|K(u)| · Σ_{j ∈ K(u)−C(ũ)} (û_j − u_j)²

    ``dropped`` marks the entries that input dropout removed (C(ũ)): α weighs prediction of
    those, β reconstruction of the kept ones. Dividing by |K(u)| balances heavy and light
    rows. A row without observed entries contributes 0.
    """
    pred = tf.convert_to_tensor(pred, tf.float32)
    target = tf.convert_to_tensor(target, tf.float32)
    weight = tf.where(tf.cast(dropped, tf.bool), tf.cast(alpha, tf.float32), tf.cast(beta, tf.float32))
    weighted = weight * tf.square(pred - target)
    per_row = tf.math.unsorted_segment_sum(weighted, rows, n_rows)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(weighted), rows, n_rows)
    return per_row / tf.maximum(counts, 1.0)


def l2_penalty(weights: list, lam: float) -> tf.Tensor:
    """(λ/2)·‖W+‖² over every weight and bias."""
    return 0.5 * tf.cast(lam, tf.float32) * tf.add_n([tf.reduce_sum(tf.square(w)) for w in weights])


def eq6_objective(per_row_loss: tf.Tensor, weights: list, lam: float) -> tf.Tensor:
    """(1/M) Σ_i L_{α,β}(u_i, ũ_i) + (λ/2)·‖W+‖², with M the rows of the mini-batch."""
    return tf.reduce_mean(per_row_loss) + l2_penalty(weights, lam)

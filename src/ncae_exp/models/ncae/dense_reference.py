"""A plain dense implementation of NCAE's forward pass and Eq. 5/6 loss.

It materialises the whole B × D input and output and masks the loss with a weight matrix —
O(K·D) per vector. It exists to check the sparse implementation (tests compare losses and
gradients) and as the speed reference of the benchmark; training never uses it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ncae_exp.models.ncae.batches import SparseBatch
from ncae_exp.models.ncae.losses import l2_penalty
from ncae_exp.models.ncae.network import NCAENetwork


def dense_arrays(batch: SparseBatch, dim: int, alpha: float, beta: float,
                 normalize: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense (corrupted input, target, loss weight) arrays of a batch; the weight is
    α/|K(u)| on dropped observed entries, β/|K(u)| on kept ones and 0 elsewhere (without
    the division by |K(u)| when ``normalize`` is false)."""
    x = np.zeros((batch.n_rows, dim), np.float32)
    x[batch.in_indices[:, 0], batch.in_indices[:, 1]] = batch.in_values
    target = np.zeros((batch.n_rows, dim), np.float32)
    target[batch.t_rows, batch.t_cols] = batch.t_values
    counts = np.bincount(batch.t_rows, minlength=batch.n_rows).astype(np.float32)
    weight = np.zeros((batch.n_rows, dim), np.float32)
    w = np.where(batch.t_dropped, alpha, beta) / (counts[batch.t_rows] if normalize else 1.0)
    weight[batch.t_rows, batch.t_cols] = w
    return x, target, weight


def dense_data_loss(network: NCAENetwork, x: tf.Tensor, target: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """The data term of Eq. 6 computed densely: mean over rows of Σ_j weight_ij (û_ij − u_ij)²."""
    h = network.encoder.activation(tf.matmul(x, network.encoder.kernel) + network.encoder.bias)
    for layer in network.hidden_layers:
        h = layer(h)
    out = network.rescale(network.output_layer.dense(h))
    return tf.reduce_mean(tf.reduce_sum(weight * tf.square(out - target), axis=1))


def dense_objective(network: NCAENetwork, x: tf.Tensor, target: tf.Tensor, weight: tf.Tensor, lam: float) -> tf.Tensor:
    """Eq. 6 computed densely: the data term + λ/2‖W+‖²."""
    return dense_data_loss(network, x, target, weight) + l2_penalty(network.regularized_weights, lam)


def dense_train_step(model, optimizer: str = "keras"):
    """The training step of a prepared explicit :class:`~ncae_exp.models.ncae.model.NCAE`
    done densely: ``step(batch) -> loss`` builds the B × D arrays of ``batch`` and takes one
    Adam step on the same network (one compiled ``tf.function`` with fixed-rank signatures).
    The benchmark's speed reference, with either optimizer implementation: ``keras`` —
    Keras' ``apply_gradients`` with λ/2‖W+‖² in the loss (how the model trained before the
    fused step), or ``fused`` — the model's own fused Adam with λW folded in."""
    if optimizer not in ("keras", "fused"):
        raise ValueError(f"optimizer must be 'keras' or 'fused', got {optimizer!r}")
    net, dim = model.network, model.dim
    fb = model.feedback
    spec = tf.TensorSpec([None, dim], tf.float32)
    variables = net.trainable_variables

    @tf.function(input_signature=(spec, spec, spec))
    def train(x, target, weight):
        with tf.GradientTape() as tape:
            if optimizer == "keras":
                loss = dense_objective(net, x, target, weight, model.l2)
            else:
                loss = dense_data_loss(net, x, target, weight)
        grads = tape.gradient(loss, variables)
        if optimizer == "keras":
            model.optimizer.apply_gradients(zip(grads, variables))
            return loss
        penalty = l2_penalty(net.regularized_weights, model.l2)
        model._adam.apply(grads)
        return loss + penalty

    def step(batch: SparseBatch) -> tf.Tensor:
        return train(*dense_arrays(batch, dim, fb.alpha, fb.beta, fb.normalize))

    return step

"""NCAE's layers: a sparse-input layer (Eq. 4) and an output layer read only where asked (Eq. 5).

Kernels use Xavier (Glorot-uniform) initialisation and biases start at zero, as in the paper.
Hidden layers use tanh (the paper's φ); ``sigmoid`` is there for I-AutoRec's configuration.
"""

from __future__ import annotations

import keras
import tensorflow as tf

ACTIVATIONS = {"tanh": tf.tanh, "sigmoid": tf.sigmoid}


def activation_fn(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


class SparseInputDense(keras.layers.Layer):
    """z = φ(x W + b) for a sparse batch x (B × D_in), φ = tanh by default.

    ``tf.sparse.sparse_dense_matmul`` touches only the rows of W that belong to observed
    entries, so one input vector costs O(K·|R_i|) instead of O(K·D_in) (the sparse forward
    module), and its gradient reaches only those rows.
    """

    def __init__(self, input_dim: int, units: int, activation: str = "tanh", **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.units = int(units)
        self.activation = activation_fn(activation)
        self.kernel = self.add_weight(
            name="kernel", shape=(self.input_dim, self.units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x: tf.SparseTensor) -> tf.Tensor:
        return self.activation(tf.sparse.sparse_dense_matmul(x, self.kernel) + self.bias)


class HiddenDense(keras.layers.Layer):
    """A dense hidden layer z = φ(h W + b) between two hidden layers (φ = tanh by default)."""

    def __init__(self, input_dim: int, units: int, activation: str = "tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = activation_fn(activation)
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_dim), self.units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, h: tf.Tensor) -> tf.Tensor:
        return self.activation(tf.matmul(h, self.kernel) + self.bias)


class GatheredOutput(keras.layers.Layer):
    """The output layer, evaluated only at the (row, column) pairs that have a target.

    The kernel is stored output-major (D_out × K): row j is the factor vector of output j
    (item j in a user-based model, Eq. 2), so ``tf.gather`` fetches just the observed
    columns and the backward pass never sees an unobserved output (sparse backward module):
    cost O(|R_i|·K) per input vector. Returns the pre-activation; the network applies tanh
    and the rating-scale rescaling.
    """

    def __init__(self, input_dim: int, output_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = int(output_dim)
        self.kernel = self.add_weight(
            name="kernel", shape=(self.output_dim, int(input_dim)), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.output_dim,), initializer="zeros")

    def call(self, h: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
        h_at = tf.gather(h, rows)  # (P × K): hidden vector of each pair's input row
        w_at = tf.gather(self.kernel, cols)  # (P × K): factor vector of each pair's output
        return tf.reduce_sum(h_at * w_at, axis=1) + tf.gather(self.bias, cols)

    def dense(self, h: tf.Tensor) -> tf.Tensor:
        """All outputs (B × D_out): for ranking every item and for the dense reference."""
        return tf.matmul(h, self.kernel, transpose_b=True) + self.bias

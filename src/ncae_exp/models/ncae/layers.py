"""NCAE's layers: a sparse-input layer (Eq. 4) and an output layer read only where asked (Eq. 5).

Kernels use Xavier (Glorot-uniform) initialisation and biases start at zero, as in the paper.
Hidden layers use tanh (the paper's φ); ``sigmoid`` is there for I-AutoRec's configuration.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ncae_exp.models.ncae.sparse_ops import output_columns, sampled_outputs, sparse_matmul

ACTIVATIONS = {"tanh": tf.tanh, "sigmoid": tf.sigmoid}


def activation_fn(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


class SparseInputDense(keras.layers.Layer):
    """z = φ(x W + b) for a sparse batch x (B × D_in), φ = tanh by default.

    Only the rows of W that belong to observed entries are read (``sparse_ops.sparse_matmul``),
    so one input vector costs O(K·|R_i|) instead of O(K·D_in) (the sparse forward module), and
    the gradient reaches only those rows.
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

    def call(self, x: tf.SparseTensor, path: str = "blocks") -> tf.Tensor:
        """``path``: how to multiply (``sparse_ops``; exact either way)."""
        z = sparse_matmul(x.indices, x.values, x.dense_shape[0], self.kernel, path)
        return self.activation(z + self.bias)


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

    def call(self, h: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor, path: str = "blocks") -> tf.Tensor:
        return sampled_outputs(h, self.kernel, rows, cols, path) + tf.gather(self.bias, cols)

    def dense(self, h: tf.Tensor) -> tf.Tensor:
        """All outputs (B × D_out): for ranking every item and for the dense reference."""
        return tf.matmul(h, self.kernel, transpose_b=True) + self.bias

    def columns(self, h: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
        """The outputs at columns ``cols`` for every row (B × len(cols))."""
        return output_columns(h, self.kernel, self.bias, cols)

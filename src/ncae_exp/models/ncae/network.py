"""The NCAE network (Eq. 1): sparse input layer → tanh hidden layers → tanh output layer,
rescaled to the rating range."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from ncae_exp.models.ncae.layers import GatheredOutput, HiddenDense, SparseInputDense


class NCAENetwork(keras.layers.Layer):
    """û = mid + half_range · tanh(W_L(…tanh(W_1 ũ + b_1)…) + b_L).

    ``hidden=[K]`` is the paper's SINGLE (L = 2), ``[K, K]`` DOUBLE (L = 3). For explicit
    ratings in [low, high], mid = (low+high)/2 and half_range = (high−low)/2 (the paper's
    2.25·z + 2.75 for 0.5–5); implicit targets use mid = 0, half_range = 1, or a linear
    output layer (``linear_output``), which lets Eq. 11 run through a K×K Gram matrix.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        hidden: Sequence[int],
        out_mid: float = 0.0,
        out_half_range: float = 1.0,
        linear_output: bool = False,
        hidden_activation: str = "tanh",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.linear_output = bool(linear_output)
        if not hidden:
            raise ValueError("NCAE needs at least one hidden layer")
        self.out_mid = float(out_mid)
        self.out_half_range = float(out_half_range)
        self.encoder = SparseInputDense(input_dim, hidden[0], activation=hidden_activation, name="layer_1")
        self.hidden_layers = [
            HiddenDense(hidden[i - 1], hidden[i], activation=hidden_activation, name=f"layer_{i + 1}")
            for i in range(1, len(hidden))
        ]
        self.output_layer = GatheredOutput(hidden[-1], output_dim, name=f"layer_{len(hidden) + 1}")
        # How the sparse layers multiply (sparse_ops: "blocks" or "entries", both exact); the
        # model sets it for its training and its inference batches before tracing either.
        self.sparse_path = "blocks"

    def encode(self, x: tf.SparseTensor) -> tf.Tensor:
        """The last hidden representation z_{L−1} of a sparse input batch."""
        h = self.encoder(x, path=self.sparse_path)
        for layer in self.hidden_layers:
            h = layer(h)
        return h

    def rescale(self, pre_activation: tf.Tensor) -> tf.Tensor:
        """φ_L and the rating-range mapping; the identity for a linear output layer."""
        if self.linear_output:
            return pre_activation
        if self.out_mid == 0.0 and self.out_half_range == 1.0:  # implicit targets: no two extra passes
            return tf.tanh(pre_activation)
        return self.out_mid + self.out_half_range * tf.tanh(pre_activation)

    def call(self, x: tf.SparseTensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
        """Predictions at the (row-in-batch, output column) pairs only (sparse backward)."""
        return self.rescale(self.output_layer(self.encode(x), rows, cols, path=self.sparse_path))

    @property
    def regularized_weights(self) -> list:
        """W+ of Eq. 6: every weight and bias."""
        return list(self.trainable_weights)

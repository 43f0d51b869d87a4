"""NCAE for implicit feedback (paper Sec. 4.1–4.2): error reweighting and augmentation.

Interactions are 1. The loss is Eq. 11: observed outputs pulled to 1, every unobserved
output pushed to 0 with the item's confidence c_j (popularity-based, Eq. 10, or uniform for
"NCAE−"). Sparse users get an extra, harder training vector without their most popular
items (NCAE+). With a linear output layer the O(N) part of the loss goes through a K×K
Gram matrix (``loss_path=gram``); a tanh output needs the dense B × N path.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.ncae.augmentation import augment_sparse_users
from ncae_exp.models.ncae.losses import eq11_dense, eq11_gram, l2_penalty
from ncae_exp.models.ncae.model import NCAE
from ncae_exp.models.ncae.reweighting import popularity_confidence, uniform_confidence


class NCAEImplicit(NCAE):
    name = "ncae"

    def __init__(
        self,
        *,
        output: str = "linear",
        loss_path: str = "auto",
        weighting: str = "popularity",
        c0: float = 512.0,
        omega: float = 0.5,
        uniform_c: float = 0.05,
        augment_epsilon: float = 0.001,
        augment_p: float = 0.8,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if output not in ("linear", "tanh"):
            raise ConfigError(f"model.implicit.output must be 'linear' or 'tanh', got {output!r}")
        if loss_path not in ("auto", "gram", "dense"):
            raise ConfigError(f"model.implicit.loss_path must be auto, gram or dense, got {loss_path!r}")
        if loss_path == "gram" and output != "linear":
            raise ConfigError("model.implicit.loss_path=gram needs model.implicit.output=linear")
        if weighting not in ("popularity", "uniform"):
            raise ConfigError(f"model.implicit.weighting must be 'popularity' or 'uniform', got {weighting!r}")
        if not 0.0 < augment_p <= 1.0 or augment_epsilon < 0:
            raise ConfigError(
                f"model.implicit.augment_p must be in (0, 1] and augment_epsilon >= 0, got {augment_p}, {augment_epsilon}"
            )
        self.output = output
        self.loss_path = ("gram" if output == "linear" else "dense") if loss_path == "auto" else loss_path
        self.weighting = weighting
        self.c0, self.omega, self.uniform_c = float(c0), float(omega), float(uniform_c)
        self.augment_epsilon, self.augment_p = float(augment_epsilon), float(augment_p)
        self.n_augmented = 0

    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None = None) -> None:
        if self.based != "user":
            raise ConfigError("the implicit protocol trains a user-based NCAE: set model.based=user")
        binary = sp.csr_matrix(train, dtype=np.float32, copy=True)
        binary.data[:] = 1.0
        binary.eliminate_zeros()
        x = self._input_rows(binary)
        counts = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
        if self.weighting == "popularity":
            confidence = popularity_confidence(counts, self.c0, self.omega)
        else:
            confidence = uniform_confidence(x.shape[1], self.uniform_c)
        stacked, origin = augment_sparse_users(x, counts, self.augment_epsilon, self.augment_p)
        self.n_augmented = int(len(origin))
        self.confidence = tf.constant(confidence, tf.float32)
        self._build(x, None, linear_output=self.output == "linear", x_fit=stacked)

    def describe(self) -> dict[str, float]:
        return {**super().describe(), "n_augmented_rows": self.n_augmented, "loss_path": self.loss_path}

    def _objective(self, in_indices, in_values, n_rows, t_rows, t_cols, t_values, t_dropped):
        per_row = self.eq11_per_row(in_indices, in_values, n_rows, t_rows, t_cols, self.loss_path)
        return tf.reduce_mean(per_row) + l2_penalty(self.network.regularized_weights, self.l2)

    def eq11_per_row(self, in_indices, in_values, n_rows, t_rows, t_cols, path: str) -> tf.Tensor:
        """Eq. 11 for each input row of a batch, by the Gram or the dense path."""
        net = self.network
        x = self.sparse_input(in_indices, in_values, n_rows)
        h = net.encode(x)
        if path == "gram":
            obs_pred = net.output_layer(h, t_rows, t_cols)  # linear output: ŷ at observed pairs
            out = net.output_layer
            return eq11_gram(h, out.kernel, out.bias, self.confidence, t_rows, t_cols, obs_pred)
        full = net.rescale(net.output_layer.dense(h))
        observed = tf.scatter_nd(
            tf.stack([t_rows, t_cols], axis=1), tf.ones_like(t_rows, tf.float32), tf.shape(full)
        )
        return eq11_dense(full, observed, self.confidence)

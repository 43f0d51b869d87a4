"""What NCAE learns from: explicit ratings (Eq. 5–6) or implicit interactions (Eq. 10–11).

The network, the sparse forward pass, the optimiser and the epoch loop are the same for both
(:class:`~ncae_exp.models.ncae.model.NCAE`); a feedback object is the part that differs —
which rows are trained on, how the output layer maps to targets, and the per-row loss. The
model config picks one per protocol (``conf/model/ncae_feedback/<protocol>.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.ncae.augmentation import augment_sparse_users
from ncae_exp.models.ncae.batches import SparseBatch
from ncae_exp.models.ncae.losses import eq5_loss, eq11_full, eq11_gram
from ncae_exp.models.ncae.network import NCAENetwork
from ncae_exp.models.common.confidence import popularity_confidence, uniform_confidence
from ncae_exp.models.common.interactions import binarise


@dataclass(frozen=True)
class PreparedInputs:
    """The input rows for inference (``x``) and training (``x_fit``), and the output mapping."""

    x: sp.csr_matrix
    x_fit: sp.csr_matrix
    out_mid: float = 0.0
    out_half_range: float = 1.0
    linear_output: bool = False


class ExplicitFeedback:
    """Ratings: errors only on observed entries (Eq. 5, sparse backward), output rescaled to
    the rating range. ``alpha`` weighs the entries input dropout removed (prediction),
    ``beta`` the kept ones (reconstruction); the paper sets both to 1. ``output=linear`` and
    ``normalize=false`` (no division by |K(u)|) are for the AutoRec / CFN configurations."""

    name = "explicit"
    supports_pretraining = True

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, output: str = "tanh", normalize: bool = True):
        alpha, beta = float(alpha), float(beta)
        if alpha < 0 or beta < 0 or alpha + beta == 0:
            raise ConfigError(f"model.feedback.alpha and beta must be >= 0 and not both 0, got {alpha}, {beta}")
        if output not in ("tanh", "linear"):
            raise ConfigError(f"model.feedback.output must be 'tanh' or 'linear', got {output!r}")
        if not isinstance(normalize, bool):
            raise ConfigError(f"model.feedback.normalize must be true or false, got {normalize!r}")
        self.alpha, self.beta, self.output, self.normalize = alpha, beta, output, normalize

    def prepare(self, x: sp.csr_matrix, rating_scale: RatingScale | None, based: str) -> PreparedInputs:
        if self.output == "linear":  # predictions are clipped to the scale by the evaluator
            return PreparedInputs(x=x, x_fit=x, linear_output=True)
        mid, half = (rating_scale.mid, rating_scale.half_range) if rating_scale else (0.0, 1.0)
        return PreparedInputs(x=x, x_fit=x, out_mid=mid, out_half_range=half)

    def per_row_loss(self, net: NCAENetwork, x: tf.SparseTensor, batch: SparseBatch) -> tf.Tensor:
        """Eq. 5 for every input row of the batch."""
        pred = net(x, batch.t_rows, batch.t_cols)
        n_rows = tf.cast(batch.n_rows, tf.int32)
        return eq5_loss(pred, batch.t_values, batch.t_dropped, batch.t_rows, n_rows, self.alpha, self.beta,
                        self.normalize)

    def describe(self) -> dict[str, float | str]:
        return {}


class ImplicitFeedback:
    """Interactions (Sec. 4.1–4.2): every observed output pulled to 1, every unobserved one
    pushed to 0 with the item's confidence c_j (Eq. 10 popularity weights, or one uniform c
    for "NCAE−"); sparse users get an extra training row without their most popular items
    (NCAE+). With a linear output layer the O(N) part of Eq. 11 goes through a K×K Gram
    matrix (``loss_path=gram``); a tanh output needs the dense B × N path."""

    name = "implicit"
    supports_pretraining = False

    def __init__(
        self,
        output: str = "tanh",
        loss_path: str = "auto",
        weighting: str = "popularity",
        c0: float = 512.0,
        omega: float = 0.25,
        uniform_c: float = 0.05,
        augment_epsilon: float = 0.001,
        augment_p: float = 0.8,
    ):
        if output not in ("linear", "tanh"):
            raise ConfigError(f"model.feedback.output must be 'linear' or 'tanh', got {output!r}")
        if loss_path not in ("auto", "gram", "dense"):
            raise ConfigError(f"model.feedback.loss_path must be auto, gram or dense, got {loss_path!r}")
        if loss_path == "gram" and output != "linear":
            raise ConfigError("model.feedback.loss_path=gram needs model.feedback.output=linear")
        if weighting not in ("popularity", "uniform"):
            raise ConfigError(f"model.feedback.weighting must be 'popularity' or 'uniform', got {weighting!r}")
        if not 0.0 < float(augment_p) <= 1.0 or float(augment_epsilon) < 0:
            raise ConfigError(
                "model.feedback.augment_p must be in (0, 1] and augment_epsilon >= 0, "
                f"got {augment_p}, {augment_epsilon}"
            )
        self.output = output
        self.loss_path = ("gram" if output == "linear" else "dense") if loss_path == "auto" else loss_path
        self.weighting = weighting
        self.c0, self.omega, self.uniform_c = float(c0), float(omega), float(uniform_c)
        self.augment_epsilon, self.augment_p = float(augment_epsilon), float(augment_p)
        self.n_augmented = 0
        self.confidence: tf.Tensor | None = None

    def prepare(self, x: sp.csr_matrix, rating_scale: RatingScale | None, based: str) -> PreparedInputs:
        if based != "user":
            raise ConfigError("the implicit protocol trains a user-based NCAE: set model.based=user")
        binary = binarise(x)
        counts = np.bincount(binary.indices, minlength=binary.shape[1]).astype(np.float64)
        if self.weighting == "popularity":
            confidence = popularity_confidence(counts, self.c0, self.omega)
        else:
            confidence = uniform_confidence(binary.shape[1], self.uniform_c)
        self.confidence = tf.constant(confidence, tf.float32)
        stacked, origin = augment_sparse_users(binary, counts, self.augment_epsilon, self.augment_p)
        self.n_augmented = int(len(origin))
        return PreparedInputs(x=binary, x_fit=stacked, linear_output=self.output == "linear")

    def per_row_loss(self, net: NCAENetwork, x: tf.SparseTensor, batch: SparseBatch) -> tf.Tensor:
        return self.eq11_per_row(net, x, batch, self.loss_path)

    def eq11_per_row(self, net: NCAENetwork, x: tf.SparseTensor, batch: SparseBatch, path: str) -> tf.Tensor:
        """Eq. 11 for each input row of a batch, by the Gram or the dense path."""
        h = net.encode(x)
        if path == "gram":
            out = net.output_layer
            obs_pred = out(h, batch.t_rows, batch.t_cols, path=net.sparse_path)  # linear output: ŷ at observed pairs
            return eq11_gram(h, out.kernel, out.bias, self.confidence, batch.t_rows, batch.t_cols, obs_pred)
        full = net.rescale(net.output_layer.dense(h))
        return eq11_full(full, batch.t_rows, batch.t_cols, self.confidence)

    def describe(self) -> dict[str, float | str]:
        return {"n_augmented_rows": self.n_augmented, "loss_path": self.loss_path}

"""NCAE for explicit ratings behind the shared :class:`Recommender` interface.

Wires the pieces: batches (input dropout, Eq. 3) → network (Eq. 1, sparse forward Eq. 4,
gathered output) → loss (Eq. 5/6) → Adam, with the training step in one ``tf.function``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender
from ncae_exp.models.ncae.batches import BATCH_SIGNATURE, epoch_mean, make_batch
from ncae_exp.models.ncae.losses import eq5_loss, eq6_objective
from ncae_exp.models.ncae.network import NCAENetwork
from ncae_exp.models.ncae.pretrain import PretrainSchedule, run_schedule

log = logging.getLogger(__name__)

class NCAE(Recommender):
    """User- or item-based NCAE trained with Eq. 6.

    ``based='item'`` feeds the columns of R (one vector per item, outputs over users);
    ``based='user'`` the rows. Everything inside works on "input rows" × "output columns".
    """

    name = "ncae"

    def __init__(
        self,
        hidden: Sequence[int] = (500,),
        based: str = "item",
        dropout: float = 0.5,
        alpha: float = 1.0,
        beta: float = 1.0,
        l2: float = 0.0002,
        learning_rate: float = 0.001,
        batch_size: int = 128,
        predict_batch_size: int = 1024,
        seed: int = 0,
        pretrain: PretrainSchedule | None = None,
    ):
        if based not in ("user", "item"):
            raise ConfigError(f"model.based must be 'user' or 'item', got {based!r}")
        hidden = [int(k) for k in hidden]
        if not hidden or any(k < 1 for k in hidden):
            raise ConfigError(f"model.hidden must be a non-empty list of positive sizes, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
        if alpha < 0 or beta < 0 or alpha + beta == 0:
            raise ConfigError(f"model.alpha and model.beta must be >= 0 and not both 0, got {alpha}, {beta}")
        if l2 < 0:
            raise ConfigError(f"model.l2 must be >= 0, got {l2}")
        if learning_rate <= 0:
            raise ConfigError(f"model.learning_rate must be > 0, got {learning_rate}")
        if batch_size < 1 or predict_batch_size < 1:
            raise ConfigError(f"trainer.batch_size must be >= 1, got {batch_size}")
        self.hidden = hidden
        self.based = based
        self.dropout = float(dropout)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.l2 = float(l2)
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.predict_batch_size = int(predict_batch_size)
        self.seed = int(seed)
        self.pretrain_schedule = pretrain
        if pretrain is not None:
            pretrain.stages(len(hidden))  # a schedule that does not fit the depth fails now
        self.rng = np.random.default_rng(seed)
        self.network: NCAENetwork | None = None
        self.x: sp.csr_matrix | None = None

    # -- setup -------------------------------------------------------------------------
    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        self._build(self._input_rows(train), rating_scale, linear_output=False)

    def _input_rows(self, train: sp.csr_matrix) -> sp.csr_matrix:
        """The input vectors as CSR rows: R for user-based, Rᵀ for item-based."""
        train = sp.csr_matrix(train, dtype=np.float32)
        x = (train.T.tocsr() if self.based == "item" else train).astype(np.float32)
        x.sort_indices()
        return x

    def _build(self, x: sp.csr_matrix, rating_scale: RatingScale | None, linear_output: bool,
               x_fit: sp.csr_matrix | None = None) -> None:
        """``x``: the rows inference reads; ``x_fit``: the rows training iterates (default
        ``x``; the implicit model adds augmented rows)."""
        self.x = x
        self.x_fit = x if x_fit is None else x_fit
        dim = self.x.shape[1]  # an autoencoder: output space = input space
        mid, half = (rating_scale.mid, rating_scale.half_range) if rating_scale else (0.0, 1.0)
        keras.utils.set_random_seed(self.seed)
        self.network = NCAENetwork(
            dim, dim, self.hidden, out_mid=mid, out_half_range=half, linear_output=linear_output
        )
        self.optimizer = keras.optimizers.Adam(learning_rate=self.learning_rate)
        self.optimizer.build(self.network.trainable_variables)
        self._train_step = tf.function(self._train_step_eager, input_signature=BATCH_SIGNATURE)
        self._loss_step = tf.function(self._loss_eager, input_signature=BATCH_SIGNATURE)
        self._predict_step = tf.function(
            self._predict_eager, input_signature=BATCH_SIGNATURE[:5]
        )

    def describe(self) -> dict[str, float]:
        assert self.network is not None
        return {"n_parameters": int(sum(np.prod(v.shape) for v in self.network.trainable_variables))}

    def before_fit(self, log_metrics) -> dict[str, float]:
        """Greedy layer-wise pre-training, when a schedule is configured."""
        if self.pretrain_schedule is None:
            return {}
        return {"pretrain_seconds": run_schedule(self, self.pretrain_schedule, log_metrics)}

    def sparse_input(self, in_indices, in_values, n_rows) -> tf.SparseTensor:
        """The (n_rows × input dim) sparse batch the network reads."""
        return tf.SparseTensor(in_indices, in_values, tf.stack([tf.cast(n_rows, tf.int64), self.x.shape[1]]))

    # -- the training step ---------------------------------------------------------------
    def _objective(self, in_indices, in_values, n_rows, t_rows, t_cols, t_values, t_dropped):
        x = self.sparse_input(in_indices, in_values, n_rows)
        pred = self.network(x, t_rows, t_cols)
        per_row = eq5_loss(pred, t_values, t_dropped, t_rows, tf.cast(n_rows, tf.int32), self.alpha, self.beta)
        return eq6_objective(per_row, self.network.regularized_weights, self.l2)

    def _train_step_eager(self, *batch):
        with tf.GradientTape() as tape:
            loss = self._objective(*batch)
        variables = self.network.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def _loss_eager(self, *batch):
        return self._objective(*batch)

    def train_epoch(self) -> float:
        return epoch_mean(self._train_step, self.x_fit, self.batch_size, self.dropout, self.rng)

    def training_loss(self) -> float:
        # Same corruption process as an epoch, on a separate generator so that measuring
        # does not shift the training randomness.
        rng = np.random.default_rng(self.seed + 1_000_003)
        return epoch_mean(self._loss_step, self.x_fit, self.batch_size, self.dropout, rng)

    # -- inference -----------------------------------------------------------------------
    def _predict_eager(self, in_indices, in_values, n_rows, t_rows, t_cols):
        return self.network(self.sparse_input(in_indices, in_values, n_rows), t_rows, t_cols)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        rows, cols = (items, users) if self.based == "item" else (users, items)
        out = np.empty(len(rows), dtype=np.float64)
        if len(rows) == 0:
            return out
        # Group the pairs by input row so each row's vector goes through the net once.
        order = np.argsort(rows, kind="stable")
        uniq, first = np.unique(rows[order], return_index=True)
        bounds = np.append(first, len(order))
        for start in range(0, len(uniq), self.predict_batch_size):
            stop = min(start + self.predict_batch_size, len(uniq))
            batch = make_batch(self.x, uniq[start:stop], None, 0.0)
            sel = order[bounds[start] : bounds[stop]]
            local = np.searchsorted(uniq[start:stop], rows[sel]).astype(np.int32)
            pred = self._predict_step(
                batch.in_indices, batch.in_values, np.int64(batch.n_rows), local, cols[sel].astype(np.int32)
            )
            out[sel] = pred.numpy()
        return out

    def score_items(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        if self.based == "user":
            batch = make_batch(self.x, users, None, 0.0)
            x = self.sparse_input(batch.in_indices, batch.in_values, batch.n_rows)
            return self.network.dense_output(x).numpy()
        # Item-based: every item's output vector holds all users; read the asked users' column.
        n_items = self.x.shape[0]
        scores = np.empty((len(users), n_items), dtype=np.float32)
        for start in range(0, n_items, self.predict_batch_size):
            rows = np.arange(start, min(start + self.predict_batch_size, n_items))
            batch = make_batch(self.x, rows, None, 0.0)
            x = self.sparse_input(batch.in_indices, batch.in_values, batch.n_rows)
            scores[:, rows] = tf.gather(self.network.dense_output(x), users, axis=1).numpy().T
        return scores

    # -- state ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        return {v.path: np.array(v.numpy()) for v in self.network.trainable_variables}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for v in self.network.trainable_variables:
            v.assign(state[v.path])

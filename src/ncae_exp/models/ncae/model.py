"""NCAE behind the shared :class:`Recommender` interface, for both kinds of feedback.

Wires the pieces: batches (input dropout, Eq. 3) → network (Eq. 1, sparse forward Eq. 4,
gathered output) → the feedback's loss (Eq. 5 explicit, Eq. 11 implicit) + λ/2‖W+‖² (Eq. 6)
→ Adam, with the training step in one ``tf.function``. What differs between explicit ratings
and implicit interactions lives in a feedback object (``feedback.py``), not in a subclass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender
from ncae_exp.models.common.fused_adam import FusedAdam
from ncae_exp.models.common.train_state import optimizer_state, set_optimizer_state
from ncae_exp.models.ncae.batches import (
    BATCH_SPEC,
    SparseBatch,
    epoch_batches,
    epoch_mean,
    make_batch,
    n_epoch_batches,
    sparse_input,
)
from ncae_exp.models.ncae.feedback import ExplicitFeedback, ImplicitFeedback
from ncae_exp.models.ncae.losses import l2_penalty
from ncae_exp.models.ncae.network import NCAENetwork
from ncae_exp.models.ncae.pretrain import PretrainContext, PretrainSchedule, run_schedule
from ncae_exp.models.ncae.sparse_ops import choose_path

Feedback = ExplicitFeedback | ImplicitFeedback


class NCAE(Recommender):
    """User- or item-based NCAE (``conf/model/ncae.yaml``; defaults here equal that file).

    ``based='item'`` feeds the columns of R (one vector per item, outputs over users);
    ``based='user'`` the rows. Everything inside works on "input rows" × "output columns".
    ``feedback`` is :class:`ExplicitFeedback` (ratings) or :class:`ImplicitFeedback`.
    """

    protocols = ("explicit", "implicit")

    def __init__(
        self,
        feedback: Feedback | None = None,
        hidden: Sequence[int] = (500,),
        based: str = "item",
        dropout: float = 0.5,
        l2: float = 0.01,
        learning_rate: float = 0.001,
        batch_size: int = 128,
        predict_batch_size: int = 1024,
        seed: int = 0,
        pretrain: PretrainSchedule | None = None,
        hidden_activation: str = "tanh",
    ):
        if based not in ("user", "item"):
            raise ConfigError(f"model.based must be 'user' or 'item', got {based!r}")
        hidden = [int(k) for k in hidden]
        if not hidden or any(k < 1 for k in hidden):
            raise ConfigError(f"model.hidden must be a non-empty list of positive sizes, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
        if l2 < 0:
            raise ConfigError(f"model.l2 must be >= 0, got {l2}")
        if hidden_activation not in ("tanh", "sigmoid"):
            raise ConfigError(f"model.hidden_activation must be 'tanh' or 'sigmoid', got {hidden_activation!r}")
        if learning_rate <= 0:
            raise ConfigError(f"model.learning_rate must be > 0, got {learning_rate}")
        if int(batch_size) < 1 or int(predict_batch_size) < 1:
            raise ConfigError(f"model.batch_size and predict_batch_size must be >= 1, got {batch_size}, {predict_batch_size}")
        self.feedback = ExplicitFeedback() if feedback is None else feedback
        self.hidden = hidden
        self.based = based
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.predict_batch_size = int(predict_batch_size)
        self.seed = int(seed)
        self.hidden_activation = hidden_activation
        self.pretrain_schedule = pretrain if pretrain is not None and pretrain.enabled else None
        if self.pretrain_schedule is not None:
            if not self.feedback.supports_pretraining:
                raise ConfigError(
                    f"layer-wise pre-training is for explicit ratings; use pretrain=none with {self.feedback.name} feedback"
                )
            self.pretrain_schedule.stages(len(hidden))  # a schedule that does not fit the depth fails now
        self.rng = np.random.default_rng(seed)
        self.network: NCAENetwork | None = None
        self.optimizer: keras.optimizers.Optimizer | None = None
        self.x: sp.csr_matrix | None = None  # input rows at inference
        self.x_fit: sp.csr_matrix | None = None  # input rows trained on (+ augmented rows)

    # -- setup -------------------------------------------------------------------------
    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        train = sp.csr_matrix(train, dtype=np.float32)
        x = (train.T.tocsr() if self.based == "item" else train).astype(np.float32)
        x.sort_indices()
        inputs = self.feedback.prepare(x, rating_scale, self.based)
        self.x, self.x_fit = inputs.x, inputs.x_fit
        dim = self.x.shape[1]  # an autoencoder: output space = input space
        keras.utils.set_random_seed(self.seed)
        self.network = NCAENetwork(
            dim, dim, self.hidden, out_mid=inputs.out_mid, out_half_range=inputs.out_half_range,
            linear_output=inputs.linear_output, hidden_activation=self.hidden_activation,
        )
        # The cheaper exact multiply for training batches and for inference batches (sparse_ops).
        self.train_path = choose_path(self.x_fit, self.batch_size, seed=self.seed)
        self.infer_path = choose_path(self.x, self.predict_batch_size, seed=self.seed)
        self.optimizer = keras.optimizers.Adam(learning_rate=self.learning_rate)
        self.optimizer.build(self.network.trainable_variables)
        # Eq. 6's λ/2‖W+‖² covers every trainable weight, so its gradient λW is folded into
        # each variable's gradient by the fused update.
        regularized, trainable = self.network.regularized_weights, self.network.trainable_variables
        assert len(regularized) == len(trainable) and all(a is b for a, b in zip(regularized, trainable))
        self._adam = FusedAdam(self.optimizer, self.network.trainable_variables, self.l2)
        self._train_step = tf.function(self._train_step_eager, input_signature=[BATCH_SPEC])
        self._loss_step = tf.function(self.objective, input_signature=[BATCH_SPEC])
        self._output_step = tf.function(self._outputs_at, input_signature=[BATCH_SPEC])

    @property
    def dim(self) -> int:
        """Length of an input (= output) vector."""
        return int(self.x.shape[1])

    def describe(self) -> dict[str, float | str]:
        n_params = int(sum(np.prod(v.shape) for v in self.network.trainable_variables))
        return {"n_parameters": n_params, **self.feedback.describe()}

    # -- pre-training ----------------------------------------------------------------------
    def before_fit(self, log_metrics) -> dict[str, float]:
        if self.pretrain_schedule is None:
            return {}
        return {"pretrain_seconds": self.pretrain(self.pretrain_schedule, log_metrics)}

    def pretrain(self, schedule: PretrainSchedule, log_metrics) -> float:
        """Greedy layer-wise pre-training (Sec. 4.3) of the prepared network; seconds spent."""
        self.network.sparse_path = self.train_path
        return run_schedule(self.pretrain_context(), schedule, log_metrics)

    def pretrain_context(self) -> PretrainContext:
        """What a pre-training stage reads from this (prepared, explicit) model."""
        fb = self.feedback
        if not fb.supports_pretraining:
            raise ConfigError(f"layer-wise pre-training is for explicit ratings, not {fb.name} feedback")
        return PretrainContext(
            network=self.network, hidden=tuple(self.hidden), dim=self.dim, alpha=fb.alpha, beta=fb.beta,
            normalize=fb.normalize,
            dropout=self.dropout, l2=self.l2, learning_rate=self.learning_rate,
            batches=lambda q: self.epoch_batches(q),
        )

    # -- the training step ---------------------------------------------------------------
    def epoch_batches(self, q: float | None = None, rng: np.random.Generator | None = None) -> Iterator[SparseBatch]:
        """One epoch of shuffled training batches with a fresh dropout mask (rate ``q``,
        default the model's); draws from the model's generator unless ``rng`` is given."""
        q = self.dropout if q is None else q
        return epoch_batches(self.x_fit, self.batch_size, q, self.rng if rng is None else rng)

    @property
    def n_batches(self) -> int:
        """Mini-batches per training epoch."""
        return n_epoch_batches(self.x_fit, self.batch_size)

    def data_loss(self, batch: SparseBatch) -> tf.Tensor:
        """The mean per-row loss of a batch (Eq. 5 / Eq. 11), without the L2 term."""
        self.network.sparse_path = self.train_path  # read when the step is traced
        return tf.reduce_mean(self.feedback.per_row_loss(self.network, sparse_input(batch, self.dim), batch))

    def objective(self, batch: SparseBatch) -> tf.Tensor:
        """The training objective of a batch: mean per-row loss + (λ/2)‖W+‖² (Eq. 6 / Eq. 11)."""
        return self.data_loss(batch) + l2_penalty(self.network.regularized_weights, self.l2)

    def _train_step_eager(self, batch: SparseBatch) -> tf.Tensor:
        # The gradient of Eq. 6 is d(data loss) + λW; FusedAdam adds λW itself (one pass), so
        # the tape differentiates the data term only and its sparse row gradients stay sparse.
        with tf.GradientTape() as tape:
            data = self.data_loss(batch)
        penalty = l2_penalty(self.network.regularized_weights, self.l2)  # read before the update
        self._adam.apply(tape.gradient(data, self.network.trainable_variables))
        return data + penalty

    def train_step(self, batch: SparseBatch) -> tf.Tensor:
        """One Adam step on ``batch`` (compiled); returns the batch's objective before the step."""
        return self._train_step(batch)

    def batch_loss(self, batch: SparseBatch) -> tf.Tensor:
        """The batch's objective without updating anything (compiled)."""
        return self._loss_step(batch)

    def train_epoch(self) -> float:
        return epoch_mean(self._train_step, self.epoch_batches())

    def training_loss(self) -> float:
        # Same corruption process as an epoch, on a separate generator so that measuring
        # does not shift the training randomness.
        rng = np.random.default_rng(self.seed + 1_000_003)
        return epoch_mean(self._loss_step, self.epoch_batches(rng=rng))

    # -- inference -----------------------------------------------------------------------
    def _outputs_at(self, batch: SparseBatch) -> tf.Tensor:
        self.network.sparse_path = self.infer_path  # read when the step is traced
        return self.network(sparse_input(batch, self.dim), batch.t_rows, batch.t_cols)

    def encode_rows(self, x: sp.csr_matrix, rows: np.ndarray) -> tf.Tensor:
        """The last hidden layer for rows ``rows`` of ``x`` (uncorrupted; inference's multiply)."""
        self.network.sparse_path = self.infer_path
        return self.network.encode(sparse_input(make_batch(x, rows, None, 0.0), self.dim))

    def dense_outputs(self, x: sp.csr_matrix, rows: np.ndarray) -> tf.Tensor:
        """Every output (rows × D_out) for rows ``rows`` of ``x``."""
        return self.network.rescale(self.network.output_layer.dense(self.encode_rows(x, rows)))

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
            inputs = make_batch(self.x, uniq[start:stop], None, 0.0)
            sel = order[bounds[start] : bounds[stop]]
            # The targets of this "batch" are the asked pairs: row within the batch, column.
            local = np.searchsorted(uniq[start:stop], rows[sel]).astype(np.int32)
            at = inputs._replace(t_rows=local, t_cols=cols[sel].astype(np.int32),
                                 t_values=np.zeros(len(sel), np.float32), t_dropped=np.zeros(len(sel), bool))
            out[sel] = self._output_step(at).numpy()
        return out

    def score_items(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        if self.based == "user":
            return self.dense_outputs(self.x, users).numpy()
        # Item-based: item i's output vector runs over users. Only the asked users' outputs
        # are computed (items × len(users)), so ranking every user, block by block, costs
        # one pass over the user outputs instead of all of them again for each block.
        n_items = self.x.shape[0]
        scores = np.empty((len(users), n_items), dtype=np.float32)
        cols = tf.constant(users, tf.int32)
        for start in range(0, n_items, self.predict_batch_size):
            rows = np.arange(start, min(start + self.predict_batch_size, n_items))
            h = self.encode_rows(self.x, rows)
            scores[:, rows] = self.network.rescale(self.network.output_layer.columns(h, cols)).numpy().T
        return scores

    def score_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Fold-in for new users: user-based, their vectors through the network; item-based,
        a ridge projection of a new output unit onto the item codes (``fold_in.py``)."""
        from ncae_exp.models.ncae.fold_in import fold_in_scores

        return fold_in_scores(self, x)

    # -- state ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        return {v.path: np.array(v.numpy()) for v in self.network.trainable_variables}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for v in self.network.trainable_variables:
            v.assign(state[v.path])

    def train_rngs(self) -> dict[str, np.random.Generator]:
        return {"batches": self.rng}  # dropout masks and batch order (pre-training's too)

    def get_train_state(self) -> dict[str, np.ndarray]:
        return {**super().get_train_state(), **optimizer_state(self.optimizer)}

    def set_train_state(self, state: dict[str, np.ndarray]) -> None:
        set_optimizer_state(self.optimizer, state, type(self).__name__)
        super().set_train_state(state)

"""Mult-VAE^PR: Liang, Krishnan, Hoffman & Jebara (2018), "Variational Autoencoders for
Collaborative Filtering" (WWW '18).

A user-based variational autoencoder for implicit feedback. A user's binarised interaction
row x_u is L2-normalised and corrupted by input dropout; the encoder [N → hidden (tanh) →
2·latent (linear)] gives μ and log σ² of q(z | x_u); z = μ + σ·ε (ε ~ N(0, I); z = μ at
inference); the decoder [latent → hidden (tanh) → N (linear)] gives logits whose softmax is
a multinomial over the items. The loss of a batch is the mean over its users of

    −Σ_i x_ui log softmax_i(logits)  +  β · KL(q(z | x_u) ‖ N(0, I))

plus l2 · Σ‖W‖² over the four kernels (the authors' code: 2 × lam × l2_loss of the weights).
β ("partial regularisation") grows linearly, β_t = min(anneal_cap, t / total_anneal_steps)
for update t = 0, 1, …, and the trainer keeps the best epoch by validation — together the
paper's recipe for picking β.

The annealing counter ``update_count`` is training state (like Adam's moments), not a
parameter: predictions do not depend on it, so ``get_state``/``set_state`` carry the weights
only and the counter keeps counting the updates this instance has made.
"""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender
from ncae_exp.models.common.factors import check_non_negative, check_positive
from ncae_exp.models.common.train_state import optimizer_state, set_optimizer_state
from ncae_exp.models.ncae.batches import BATCH_SPEC, SparseBatch, epoch_batches, make_batch, sparse_input
from ncae_exp.models.ncae.layers import HiddenDense, SparseInputDense
from ncae_exp.models.common.interactions import binarise

_PREDICT_ROWS = 1024  # users per inference batch (bounds the users × items logits block)
_STEP_SPEC = [
    BATCH_SPEC,
    tf.TensorSpec([], tf.float32),  # beta
    tf.TensorSpec([2], tf.int64),  # seed of the stateless ε draw
    tf.TensorSpec([], tf.float32),  # noise: 1 samples z = μ + σε, 0 gives z = μ
]


class Linear(keras.layers.Layer):
    """y = h W + b without an activation (μ / log σ² and the logits)."""

    def __init__(self, input_dim: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.kernel = self.add_weight(name="kernel", shape=(int(input_dim), int(units)), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(int(units),), initializer="zeros")

    def call(self, h: tf.Tensor) -> tf.Tensor:
        return tf.matmul(h, self.kernel) + self.bias


class VAENetwork(keras.layers.Layer):
    """Encoder N → hidden → 2·latent and decoder latent → hidden → N (Glorot kernels, zero
    biases; the authors' biases start at N(0, 0.001²), a negligible difference)."""

    def __init__(self, n_items: int, hidden: int, latent: int, **kwargs):
        super().__init__(**kwargs)
        self.latent = int(latent)
        # The first layer reads the sparse input: only the rows of W for a user's items.
        self.layers_by_name = {
            "encoder_hidden": SparseInputDense(n_items, hidden, activation="tanh", name="encoder_hidden"),
            "encoder_out": Linear(hidden, 2 * latent, name="encoder_out"),
            "decoder_hidden": HiddenDense(latent, hidden, activation="tanh", name="decoder_hidden"),
            "decoder_out": Linear(hidden, n_items, name="decoder_out"),
        }

    def encode(self, x: tf.SparseTensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(μ, log σ²) of q(z | x) for a sparse batch of normalised rows."""
        layers = self.layers_by_name
        h = layers["encoder_out"](layers["encoder_hidden"](x))
        return h[:, : self.latent], h[:, self.latent :]

    def decode(self, z: tf.Tensor) -> tf.Tensor:
        """Item logits (B × N); their softmax is the multinomial π(z)."""
        layers = self.layers_by_name
        return layers["decoder_out"](layers["decoder_hidden"](z))

    def named_variables(self) -> dict[str, tf.Variable]:
        """Stable state keys ("encoder_hidden/kernel", …), independent of Keras' name counters."""
        return {f"{name}/{var}": getattr(layer, var) for name, layer in self.layers_by_name.items()
                for var in ("kernel", "bias")}

    def kernels(self) -> list[tf.Variable]:
        return [layer.kernel for layer in self.layers_by_name.values()]


def gaussian_kl(mu: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per row: ½ Σ_k (σ_k² + μ_k² − 1 − log σ_k²)."""
    return 0.5 * tf.reduce_sum(tf.exp(logvar) + tf.square(mu) - 1.0 - logvar, axis=1)


def anneal_beta(update: int, anneal_cap: float, total_anneal_steps: int) -> float:
    """β for update number ``update`` (0-based): linear from 0, capped; no annealing (β = cap
    from the start) when ``total_anneal_steps`` is 0."""
    if total_anneal_steps == 0:
        return float(anneal_cap)
    return float(min(anneal_cap, update / total_anneal_steps))


def _check_int(key: str, value, low: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < low:
        raise ConfigError(f"model.{key} must be an integer >= {low}, got {value!r}")
    return int(value)


class MultVAE(Recommender):
    """Mult-VAE^PR (``conf/model/multvae.yaml``; defaults here equal that file)."""

    protocols = ("implicit",)

    def __init__(
        self,
        hidden: int = 600,
        latent: int = 200,
        dropout: float = 0.5,
        anneal_cap: float = 0.2,
        total_anneal_steps: int = 400,
        l2: float = 0.0,
        learning_rate: float = 0.001,
        batch_size: int = 500,
        seed: int = 0,
    ):
        self.hidden = _check_int("hidden", hidden, 1)
        self.latent = _check_int("latent", latent, 1)
        self.total_anneal_steps = _check_int("total_anneal_steps", total_anneal_steps, 0)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        if isinstance(dropout, bool) or not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {dropout!r}")
        check_non_negative(anneal_cap=anneal_cap, l2=l2)
        check_positive(learning_rate=learning_rate)
        self.dropout = float(dropout)
        self.anneal_cap = float(anneal_cap)
        self.l2 = float(l2)
        self.learning_rate = float(learning_rate)
        self.seed = int(seed)
        train_seq, loss_seq = np.random.SeedSequence(self.seed).spawn(2)
        self.rng = np.random.default_rng(train_seq)  # dropout masks, batch order, ε seeds
        self._loss_seq = loss_seq  # training_loss draws the same way from its own stream
        self.update_count = 0  # training state: drives β, not part of get_state
        self.network: VAENetwork | None = None
        self.x: sp.csr_matrix | None = None

    # -- setup ---------------------------------------------------------------------------
    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        x = binarise(train)  # implicit: any interaction (play count) counts once
        # The input is the L2-normalised binary row: 1/√|items of u| at each of u's items.
        # The targets are read from x's pattern only (each observed item counts once).
        counts = np.diff(x.indptr)
        x.data = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts).astype(np.float32)
        self.x = x
        keras.utils.set_random_seed(self.seed)
        self.network = VAENetwork(x.shape[1], self.hidden, self.latent)
        self.optimizer = keras.optimizers.Adam(learning_rate=self.learning_rate)
        self.optimizer.build(self.network.trainable_variables)
        self.update_count = 0
        self._train_step = tf.function(self._train_step_eager, input_signature=_STEP_SPEC)
        self._loss_step = tf.function(self.objective, input_signature=_STEP_SPEC)
        self._logits_step = tf.function(self._logits, input_signature=[BATCH_SPEC])

    def _check_prepared(self) -> VAENetwork:
        if self.network is None:
            raise ConfigError("MultVAE: call prepare(train, ...) before training or scoring")
        return self.network

    @property
    def beta(self) -> float:
        """β of the next update."""
        return anneal_beta(self.update_count, self.anneal_cap, self.total_anneal_steps)

    def describe(self) -> dict[str, float]:
        net = self._check_prepared()
        return {"n_parameters": int(sum(np.prod(v.shape) for v in net.trainable_variables))}

    # -- the objective -------------------------------------------------------------------
    def loss_terms(self, batch: SparseBatch, seed, noise) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(mean multinomial NLL, mean KL, l2 · Σ‖W‖²) of a batch.

        ``batch.in_*`` hold the (dropped-out, rescaled) normalised input; ``t_rows/t_cols``
        every item of each row, i.e. where x_ui = 1."""
        net = self._check_prepared()
        mu, logvar = net.encode(sparse_input(batch, self.x.shape[1]))
        eps = tf.random.stateless_normal(tf.shape(mu), seed=seed)
        z = mu + tf.cast(noise, tf.float32) * tf.exp(0.5 * logvar) * eps
        log_probs = tf.nn.log_softmax(net.decode(z), axis=1)
        picked = tf.gather_nd(log_probs, tf.stack([batch.t_rows, batch.t_cols], axis=1))
        nll = -tf.math.unsorted_segment_sum(picked, batch.t_rows, tf.cast(batch.n_rows, tf.int32))
        penalty = self.l2 * tf.add_n([tf.reduce_sum(tf.square(k)) for k in net.kernels()])
        return tf.reduce_mean(nll), tf.reduce_mean(gaussian_kl(mu, logvar)), penalty

    def objective(self, batch: SparseBatch, beta, seed, noise) -> tf.Tensor:
        """NLL + β·KL + l2·Σ‖W‖² (the negative ELBO with partial KL weight, plus L2)."""
        nll, kl, penalty = self.loss_terms(batch, seed, noise)
        return nll + tf.cast(beta, tf.float32) * kl + penalty

    def _train_step_eager(self, batch: SparseBatch, beta, seed, noise) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.objective(batch, beta, seed, noise)
        variables = self.network.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def _epoch(self, step, rng: np.random.Generator, advance: bool) -> float:
        """Mean objective over one epoch of shuffled, dropped-out batches (weighted by rows);
        ``advance`` counts the updates (β moves on per update, as in the authors' code)."""
        total, rows = 0.0, 0
        update = self.update_count
        for batch in epoch_batches(self.x, self.batch_size, self.dropout, rng):
            beta = anneal_beta(update, self.anneal_cap, self.total_anneal_steps)
            seed = rng.integers(0, 2**31 - 1, size=2, dtype=np.int64)
            total += float(step(batch, np.float32(beta), seed, np.float32(1.0))) * int(batch.n_rows)
            rows += int(batch.n_rows)
            update += 1
        if advance:
            self.update_count = update
        return total / max(rows, 1)

    def train_epoch(self) -> float:
        self._check_prepared()
        return self._epoch(self._train_step, self.rng, advance=True)

    def training_loss(self) -> float:
        # The same sampled objective at the current β, from a fixed separate stream so that
        # measuring changes neither the weights, the counter nor the training randomness.
        self._check_prepared()
        return self._epoch(self._loss_step, np.random.default_rng(self._loss_seq), advance=False)

    # -- inference -----------------------------------------------------------------------
    def _logits(self, batch: SparseBatch) -> tf.Tensor:
        net = self.network
        mu, _ = net.encode(sparse_input(batch, self.x.shape[1]))
        return net.decode(mu)  # z = μ at inference

    def score_items(self, users: np.ndarray) -> np.ndarray:
        """Decoder logits of μ (same ranking as the log-softmax) for the users' training rows."""
        self._check_prepared()
        users = np.asarray(users, dtype=np.int64)
        out = np.empty((len(users), self.x.shape[1]), dtype=np.float32)
        for start in range(0, len(users), _PREDICT_ROWS):
            rows = users[start : start + _PREDICT_ROWS]
            out[start : start + len(rows)] = self._logits_step(make_batch(self.x, rows, None, 0.0)).numpy()
        return out

    def score_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Fold-in: the new users' binarised vectors through the encoder (μ, no sampling) and
        the decoder, as ``score_items`` does for the training rows."""
        from ncae_exp.models.common.fold_in import check_vectors

        self._check_prepared()
        x = binarise(check_vectors(x, self.x.shape[1]))
        rows = np.arange(x.shape[0])
        out = np.empty((x.shape[0], x.shape[1]), dtype=np.float32)
        for start in range(0, len(rows), _PREDICT_ROWS):
            block = rows[start : start + _PREDICT_ROWS]
            out[start : start + len(block)] = self._logits_step(make_batch(x, block, None, 0.0)).numpy()
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_prepared()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.empty(len(users), dtype=np.float64)
        # Each distinct user's row goes through the network once.
        uniq, where = np.unique(users, return_inverse=True)
        for start in range(0, len(uniq), _PREDICT_ROWS):
            block = uniq[start : start + _PREDICT_ROWS]
            sel = np.flatnonzero((where >= start) & (where < start + len(block)))
            logits = self._logits_step(make_batch(self.x, block, None, 0.0)).numpy()
            out[sel] = logits[where[sel] - start, items[sel]]
        return out

    # -- state ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        return {key: np.array(v.numpy()) for key, v in self._check_prepared().named_variables().items()}

    def train_rngs(self) -> dict[str, np.random.Generator]:
        return {"train": self.rng}  # dropout masks, batch order, ε seeds

    def get_train_state(self) -> dict[str, np.ndarray]:
        return {**super().get_train_state(), **optimizer_state(self.optimizer),
                "count/update_count": np.array(self.update_count, np.int64)}

    def set_train_state(self, state: dict[str, np.ndarray]) -> None:
        if "count/update_count" not in state:
            raise ConfigError("the checkpoint lacks MultVAE's update count (β's annealing)")
        set_optimizer_state(self.optimizer, state, "MultVAE")
        super().set_train_state(state)
        self.update_count = int(state["count/update_count"])

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        variables = self._check_prepared().named_variables()
        missing = sorted(set(variables) - set(state))
        if missing:
            raise ConfigError(f"saved MultVAE state lacks {missing} (has {sorted(state)})")
        for key, v in variables.items():
            value = np.asarray(state[key], dtype=np.float32)
            if value.shape != tuple(v.shape):
                raise ConfigError(f"saved MultVAE {key} has shape {value.shape}, the model needs {tuple(v.shape)}")
        for key, v in variables.items():
            v.assign(np.asarray(state[key], dtype=np.float32))

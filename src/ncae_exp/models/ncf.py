"""NCF / NeuMF: He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering" (WWW 2017).

NeuMF fuses two towers over separate user and item embeddings:

* GMF: φ_GMF = p_u ⊙ q_i (embeddings of size K);
* MLP: z = [p'_u ; q'_i] (2K) → ReLU(W1ᵀz + b1) (K) → ReLU(W2ᵀh1 + b2) (K/2);

and the prediction layer ŷ_ui = σ(hᵀ[φ_GMF ; φ_MLP] + b) — the NCAE paper's "GMF with
embedding K + MLP 2K→K→K/2→1". It is trained pointwise with binary cross-entropy on every
observed interaction (label 1) plus ``negatives`` items the user has not interacted with
(label 0), drawn uniformly afresh each epoch (``common/sampling.py``), by Adam on shuffled
mini-batches. Unlike the NCF paper's best setting, GMF and MLP are NOT pre-trained: NeuMF
is trained from a random start (the paper's "NeuMF without pre-training").

For speed the first MLP layer is applied as W1ᵀz = W1_userᵀ p'_u + W1_itemᵀ q'_i (the two
halves of W1's rows), the same number: scoring all items for a user then needs each item's
projection once, not a 2K-wide concatenation per (user, item) pair.
"""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from scipy.special import expit

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender
from ncae_exp.models.common.factors import check_non_negative, check_positive, check_positive_int
from ncae_exp.models.common.sampling import NegativeSampler
from ncae_exp.models.common.interactions import binarise

_PAIRS = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32)]
_BATCH = [*_PAIRS, tf.TensorSpec([None], tf.float32)]
# Elements (user-item pairs × K) in one scoring chunk: ~16 MiB tensors, which measured
# faster than larger chunks (4 Lastfm users at K = 64).
_CHUNK_ELEMENTS = 1 << 22
_BETA_1, _BETA_2, _EPSILON = 0.9, 0.999, 1e-7

# Parameter names (also the keys of get_state), in a fixed order.
NAMES = ("gmf_user", "gmf_item", "mlp_user", "mlp_item", "mlp_kernel_1", "mlp_bias_1",
         "mlp_kernel_2", "mlp_bias_2", "out_kernel", "out_bias")


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int, shape) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def init_params(rng: np.random.Generator, n_users: int, n_items: int, k: int) -> dict[str, np.ndarray]:
    """NCF's initialisation: embeddings N(0, 0.01²) (the paper), dense kernels Glorot
    uniform (the authors' Keras default), biases 0. float32."""
    half = k // 2
    p = {
        "gmf_user": rng.normal(0.0, 0.01, (n_users, k)),
        "gmf_item": rng.normal(0.0, 0.01, (n_items, k)),
        "mlp_user": rng.normal(0.0, 0.01, (n_users, k)),
        "mlp_item": rng.normal(0.0, 0.01, (n_items, k)),
        "mlp_kernel_1": _glorot(rng, 2 * k, k, (2 * k, k)),
        "mlp_bias_1": np.zeros(k),
        "mlp_kernel_2": _glorot(rng, k, half, (k, half)),
        "mlp_bias_2": np.zeros(half),
        "out_kernel": _glorot(rng, k + half, 1, (k + half,)),
        "out_bias": np.zeros(()),
    }
    return {name: p[name].astype(np.float32) for name in NAMES}


class NCF(Recommender):
    """NeuMF (GMF ⊕ MLP) with negative sampling (``conf/model/ncf.yaml``; defaults equal it)."""

    protocols = ("implicit",)
    no_fold_in = "NeuMF's user embeddings are learned only during training (no closed form for a new one)"

    def __init__(
        self,
        factors: int = 64,
        negatives: int = 4,
        learning_rate: float = 0.001,
        l2: float = 0.0,
        batch_size: int = 1024,
        seed: int = 0,
    ):
        check_positive_int(factors=factors, negatives=negatives, batch_size=batch_size)
        if int(factors) < 2:
            raise ConfigError(f"model.factors must be >= 2 (the last MLP layer has factors/2 units), got {factors!r}")
        check_positive(learning_rate=learning_rate)
        check_non_negative(l2=l2)
        self.factors = int(factors)
        self.negatives = int(negatives)
        self.learning_rate = float(learning_rate)
        self.l2 = float(l2)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.vars: dict[str, tf.Variable] = {}

    # -- setup -------------------------------------------------------------------------
    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        positives = binarise(train)  # any interaction is a positive
        self.n_users, self.n_items = positives.shape
        counts = np.diff(positives.indptr)
        self._pos_users = np.repeat(np.arange(self.n_users, dtype=np.int64), counts)
        self._pos_items = positives.indices.astype(np.int64)
        if len(self._pos_users) == 0:
            raise ConfigError("model=ncf needs at least one training interaction")
        self._sampler = NegativeSampler(positives)
        # Negatives are drawn for every positive of a user who has any negative at all.
        self._neg_users = np.repeat(self._pos_users[self._sampler.n_negatives[self._pos_users] > 0], self.negatives)
        # Separate streams: the training draws never depend on whether training_loss ran.
        init_seq, train_seq, loss_seq = np.random.SeedSequence(self.seed).spawn(3)
        self._rng = np.random.default_rng(train_seq)
        self._loss_examples = self._examples(np.random.default_rng(loss_seq), shuffle=False)
        # The parameters come from numpy (below) and no TF op here is random; seeding TF and
        # Keras anyway keeps any future random op reproducible.
        keras.utils.set_random_seed(self.seed)
        params = init_params(np.random.default_rng(init_seq), self.n_users, self.n_items, self.factors)
        self.vars = {name: tf.Variable(value, name=name) for name, value in params.items()}
        self._variables = [self.vars[name] for name in NAMES]
        # Adam's moment estimates and step count (see _train_step_eager).
        self._adam_m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self._variables]
        self._adam_v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self._variables]
        self._adam_t = tf.Variable(0.0, trainable=False)
        self._train_step = tf.function(self._train_step_eager, input_signature=_BATCH)
        self._loss_step = tf.function(self.objective, input_signature=_BATCH)
        self._pair_logits = tf.function(self.pair_logits, input_signature=_PAIRS)
        self._grid_logits = tf.function(self.grid_logits, input_signature=_PAIRS)

    def describe(self) -> dict[str, float]:
        return {
            "n_parameters": int(sum(int(np.prod(v.shape)) for v in self._variables)),
            "factors": self.factors,
            "n_positives": int(len(self._pos_users)),
        }

    # -- the network ---------------------------------------------------------------------
    def _towers(self, users: tf.Tensor, items: tf.Tensor):
        """Per-user and per-item pieces: GMF embeddings, and the MLP embeddings projected
        by their half of W1 (b1 added on the item side)."""
        v, k = self.vars, self.factors
        user_proj = tf.matmul(tf.gather(v["mlp_user"], users), v["mlp_kernel_1"][:k])
        item_proj = tf.matmul(tf.gather(v["mlp_item"], items), v["mlp_kernel_1"][k:]) + v["mlp_bias_1"]
        return tf.gather(v["gmf_user"], users), tf.gather(v["gmf_item"], items), user_proj, item_proj

    def _head(self, gmf_term, user_proj, item_proj) -> tf.Tensor:
        """The logit h_GMFᵀ(p⊙q) + h_MLPᵀ MLP(z) + b, given the GMF term h_GMFᵀ(p⊙q); the
        user and item projections broadcast against each other (pairs: both (P, K); a
        grid: (B, 1, K) and (1, N, K))."""
        v, k = self.vars, self.factors
        hidden_1 = tf.nn.relu(user_proj + item_proj)
        hidden_2 = tf.nn.relu(tf.tensordot(hidden_1, v["mlp_kernel_2"], axes=1) + v["mlp_bias_2"])
        return gmf_term + tf.tensordot(hidden_2, v["out_kernel"][k:], axes=1) + v["out_bias"]

    def pair_logits(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        """Logits of (users[k], items[k]) pairs, shape (P,)."""
        gu, gi, up, ip = self._towers(users, items)
        gmf = tf.reduce_sum(gu * self.vars["out_kernel"][: self.factors] * gi, axis=-1)
        return self._head(gmf, up, ip)

    def grid_logits(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        """Logits of every (user, item) combination, shape (len(users), len(items)); the
        GMF term of all pairs at once is one product (p ⊙ h_GMF) qᵀ."""
        gu, gi, up, ip = self._towers(users, items)
        gmf = tf.matmul(gu * self.vars["out_kernel"][: self.factors], gi, transpose_b=True)
        return self._head(gmf, up[:, None, :], ip[None, :, :])

    # -- training ------------------------------------------------------------------------
    def objective(self, users: tf.Tensor, items: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Mean binary cross-entropy of σ(logit) against the labels, plus (l2/2)·(the
        squared embedding rows of each example, averaged over the batch + ‖W1‖² + ‖W2‖² + ‖h‖²)."""
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=self.pair_logits(users, items))
        loss = tf.reduce_mean(bce)
        if self.l2 > 0:
            v = self.vars
            rows = [tf.gather(v["gmf_user"], users), tf.gather(v["gmf_item"], items),
                    tf.gather(v["mlp_user"], users), tf.gather(v["mlp_item"], items)]
            per_example = tf.add_n([tf.reduce_sum(tf.square(r), axis=1) for r in rows])
            dense = tf.add_n([tf.reduce_sum(tf.square(v[n])) for n in ("mlp_kernel_1", "mlp_kernel_2", "out_kernel")])
            loss = loss + 0.5 * self.l2 * (tf.reduce_mean(per_example) + dense)
        return loss

    def _train_step_eager(self, users, items, labels) -> tf.Tensor:
        """One Adam step (Kingma & Ba; β1 0.9, β2 0.999, ε 1e-7 as in Keras) on a batch.

        TF's fused ResourceApplyAdam kernel instead of keras.optimizers.Adam: the same
        update (every row of the embeddings, moments included, as dense Adam does), but
        in one pass per variable — Keras' chain of element-wise ops took ~2.5x longer per
        step, almost all of it in the ~2.5 M embedding entries."""
        with tf.GradientTape() as tape:
            loss = self.objective(users, items, labels)
        grads = tape.gradient(loss, self._variables)
        t = self._adam_t.assign_add(1.0)
        beta1_power, beta2_power = tf.pow(_BETA_1, t), tf.pow(_BETA_2, t)
        for var, m, v, grad in zip(self._variables, self._adam_m, self._adam_v, grads):
            tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=m.handle, v=v.handle, beta1_power=beta1_power, beta2_power=beta2_power,
                lr=self.learning_rate, beta1=_BETA_1, beta2=_BETA_2, epsilon=_EPSILON,
                grad=tf.convert_to_tensor(grad),  # embedding gradients arrive as IndexedSlices
            )
        return loss

    def _examples(self, rng: np.random.Generator, shuffle: bool = True):
        """One epoch's (users, items, labels): every positive, ``negatives`` fresh uniform
        negatives per positive, shuffled together."""
        neg_items = self._sampler.sample(self._neg_users, rng)
        users = np.concatenate([self._pos_users, self._neg_users]).astype(np.int32)
        items = np.concatenate([self._pos_items, neg_items]).astype(np.int32)
        labels = np.concatenate([np.ones(len(self._pos_users), np.float32), np.zeros(len(neg_items), np.float32)])
        if shuffle:
            order = rng.permutation(len(users))
            users, items, labels = users[order], items[order], labels[order]
        return users, items, labels

    def _epoch_mean(self, step, examples) -> float:
        users, items, labels = examples
        total = 0.0
        for start in range(0, len(users), self.batch_size):
            stop = start + self.batch_size
            loss = step(users[start:stop], items[start:stop], labels[start:stop])
            total += float(loss) * (min(stop, len(users)) - start)
        return total / len(users)

    def train_epoch(self) -> float:
        return self._epoch_mean(self._train_step, self._examples(self._rng))

    def training_loss(self) -> float:
        # Fixed negatives, so the value moves only with the parameters.
        return self._epoch_mean(self._loss_step, self._loss_examples)

    # -- inference -----------------------------------------------------------------------
    # Scores are σ(logit) evaluated in float64 from the float32 logit: in float32 the
    # sigmoid saturates to exactly 1.0 from logit ≈ 17, and the ranking evaluator counts
    # ties against the held-out item.
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        items = np.asarray(items, dtype=np.int32)
        out = np.empty(len(users), dtype=np.float64)
        step = max(1, _CHUNK_ELEMENTS // self.factors)
        for start in range(0, len(users), step):
            sl = slice(start, start + step)
            out[sl] = expit(self._pair_logits(users[sl], items[sl]).numpy().astype(np.float64))
        return out

    def score_items(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        all_items = np.arange(self.n_items, dtype=np.int32)
        scores = np.empty((len(users), self.n_items), dtype=np.float64)
        step = max(1, _CHUNK_ELEMENTS // (self.n_items * self.factors))
        for start in range(0, len(users), step):
            sl = slice(start, start + step)
            scores[sl] = expit(self._grid_logits(users[sl], all_items).numpy().astype(np.float64))
        return scores

    # -- state ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        return {name: np.array(self.vars[name].numpy(), copy=True) for name in NAMES}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        missing = set(NAMES) - set(state)
        if missing:
            raise ConfigError(f"saved state lacks {sorted(missing)}")
        for name in NAMES:
            self.vars[name].assign(np.asarray(state[name], dtype=np.float32))

    def train_rngs(self) -> dict[str, np.random.Generator]:
        return {"train": self._rng}  # negatives and example order

    def get_train_state(self) -> dict[str, np.ndarray]:
        """Adds the fused Adam's moments (``opt/m/<name>``, ``opt/v/<name>``) and step count."""
        state = super().get_train_state()
        for name, m, v in zip(NAMES, self._adam_m, self._adam_v):
            state[f"opt/m/{name}"], state[f"opt/v/{name}"] = np.array(m.numpy()), np.array(v.numpy())
        state["opt/t"] = np.array(self._adam_t.numpy())
        return state

    def set_train_state(self, state: dict[str, np.ndarray]) -> None:
        missing = [k for k in [f"opt/{s}/{n}" for s in "mv" for n in NAMES] + ["opt/t"] if k not in state]
        if missing:
            raise ConfigError(f"the checkpoint lacks NCF's optimizer state {missing[:3]}")
        super().set_train_state(state)
        for name, m, v in zip(NAMES, self._adam_m, self._adam_v):
            m.assign(np.asarray(state[f"opt/m/{name}"], dtype=np.float32))
            v.assign(np.asarray(state[f"opt/v/{name}"], dtype=np.float32))
        self._adam_t.assign(float(state["opt/t"]))

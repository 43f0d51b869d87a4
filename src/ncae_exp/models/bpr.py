"""BPR-MF: matrix factorisation trained with Bayesian Personalized Ranking.

Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from
Implicit Feedback" (UAI 2009). For a triple (u, i, j) — i an item u interacted with, j one
they did not — x_uij = w_uᵀ(h_i − h_j) (+ b_i − b_j with item biases) and the loss is

    −ln σ(x_uij) + λ/2 (‖w_u‖² + ‖h_i‖² + ‖h_j‖² [+ b_i² + b_j²])

Each epoch shuffles the training interactions, draws one uniform negative j per interaction,
and takes SGD steps on mini-batches. A batch's per-triple gradients are summed, not averaged,
so ``learning_rate`` means what it does in Rendle's one-triple-at-a-time SGD (the paper's
setting: 0.1, λ 0.01).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.common.factors import FactorModel, check_non_negative, check_positive, check_positive_int, init_factors
from ncae_exp.models.common.sampling import NegativeSampler
from ncae_exp.models.common.interactions import binarise


def triple_loss_and_grads(w_u, h_i, h_j, b_i, b_j, l2: float):
    """Per-triple BPR loss and its gradients (rows are triples; b_i/b_j may be zeros when
    the model has no item bias — their gradients are then ignored by the caller).

    Returns (loss, g_w_u, g_h_i, g_h_j, g_b_i, g_b_j), loss one value per triple."""
    x = np.einsum("ij,ij->i", w_u, h_i - h_j) + b_i - b_j
    # −ln σ(x) = ln(1 + e^(−x)), computed without overflow; its derivative is −σ(−x).
    fit = np.logaddexp(0.0, -x)
    penalty = 0.5 * l2 * (np.sum(w_u**2, 1) + np.sum(h_i**2, 1) + np.sum(h_j**2, 1) + b_i**2 + b_j**2)
    d = -expit(-x)[:, None]
    g_w = d * (h_i - h_j) + l2 * w_u
    g_hi = d * w_u + l2 * h_i
    g_hj = -d * w_u + l2 * h_j
    g_bi = d[:, 0] + l2 * b_i
    g_bj = -d[:, 0] + l2 * b_j
    return fit + penalty, g_w, g_hi, g_hj, g_bi, g_bj


class BPR(FactorModel):
    """Rendle et al. (2009) BPR-MF by mini-batch SGD with uniform negative sampling."""

    protocols = ("implicit",)
    no_fold_in = "BPR learns a user's factor only by pairwise SGD steps during training"

    def __init__(
        self,
        factors: int = 128,
        learning_rate: float = 0.1,
        l2: float = 0.01,
        batch_size: int = 64,
        item_bias: bool = False,
        init_scale: float = 0.1,
        seed: int = 0,
    ):
        super().__init__()
        check_positive_int(factors=factors, batch_size=batch_size)
        check_positive(learning_rate=learning_rate, init_scale=init_scale)
        check_non_negative(l2=l2)
        if not isinstance(item_bias, bool):
            raise ConfigError(f"model.item_bias must be true or false, got {item_bias!r}")
        self.factors = int(factors)
        self.learning_rate = float(learning_rate)
        self.l2 = float(l2)
        self.batch_size = int(batch_size)
        self.item_bias = item_bias
        self.init_scale = float(init_scale)
        self.seed = int(seed)

    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        positives = binarise(train)  # any interaction is a positive
        n_users, n_items = positives.shape
        counts = np.diff(positives.indptr)
        # A user who has every item has no negative to rank below; their pairs are skipped.
        usable = np.repeat(counts < n_items, counts)
        self._users = np.repeat(np.arange(n_users, dtype=np.int64), counts)[usable]
        self._items = positives.indices.astype(np.int64)[usable]
        if len(self._users) == 0:
            raise ConfigError("model=bpr needs at least one user with both interacted and other items")
        self._sampler = NegativeSampler(positives)
        # Separate streams: training draws never depend on whether training_loss was called.
        train_seq, loss_seq = np.random.SeedSequence(self.seed).spawn(2)
        self._rng = np.random.default_rng(train_seq)
        # training_loss scores fixed triples, so its value moves only with the parameters.
        self._loss_neg = self._sampler.sample(self._users, np.random.default_rng(loss_seq))
        init = np.random.default_rng(self.seed)
        self.params = {
            "user_factors": init_factors(init, n_users, self.factors, self.init_scale),
            "item_factors": init_factors(init, n_items, self.factors, self.init_scale),
        }
        if self.item_bias:
            self.params["item_bias"] = np.zeros(n_items)

    def _triples(self, users, items, negatives):
        p = self.params
        bias = p.get("item_bias")
        b_i = bias[items] if bias is not None else np.zeros(len(items))
        b_j = bias[negatives] if bias is not None else np.zeros(len(items))
        return triple_loss_and_grads(
            p["user_factors"][users], p["item_factors"][items], p["item_factors"][negatives], b_i, b_j, self.l2
        )

    def train_epoch(self) -> float:
        order = self._rng.permutation(len(self._users))
        users, items = self._users[order], self._items[order]
        negatives = self._sampler.sample(users, self._rng)
        p, lr, total = self.params, self.learning_rate, 0.0
        for start in range(0, len(users), self.batch_size):
            u, i, j = (a[start:start + self.batch_size] for a in (users, items, negatives))
            loss, g_w, g_hi, g_hj, g_bi, g_bj = self._triples(u, i, j)
            total += float(loss.sum())
            # add.at accumulates repeated users/items within a batch (as sequential SGD would).
            np.add.at(p["user_factors"], u, -lr * g_w)
            np.add.at(p["item_factors"], i, -lr * g_hi)
            np.add.at(p["item_factors"], j, -lr * g_hj)
            if "item_bias" in p:
                np.add.at(p["item_bias"], i, -lr * g_bi)
                np.add.at(p["item_bias"], j, -lr * g_bj)
        return total / len(users)

    def training_loss(self) -> float:
        return float(self._triples(self._users, self._items, self._loss_neg)[0].mean())

    def train_rngs(self) -> dict[str, np.random.Generator]:
        return {"train": self._rng}  # example order and negatives

    def describe(self) -> dict[str, float]:
        return {**super().describe(), "factors": self.factors, "n_pairs": int(len(self._users))}

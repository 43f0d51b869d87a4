"""BiasedMF: biased matrix factorisation trained by SGD (Koren, Bell & Volinsky, "Matrix
Factorization Techniques for Recommender Systems", IEEE Computer 2009; Koren, KDD 2008).

A rating is predicted as r̂_ui = μ + b_u + b_i + p_u·q_i, with μ the (fixed) mean training
rating. Training minimises, over the observed training ratings R,

    Σ_(u,i)∈R (r_ui − r̂_ui)² + λ(‖p_u‖² + ‖q_i‖²) + λ_b(b_u² + b_i²)

by stochastic gradient descent in Koren's form (the factor 2 of the gradient folded into the
step size η): with e = r − r̂,

    b_u += η(e − λ_b b_u)    b_i += η(e − λ_b b_i)
    p_u += η(e q_i − λ p_u)  q_i += η(e p_u − λ q_i)

Vectorised as mini-batch SGD: every rating of a shuffled mini-batch computes its step from
the parameters at the start of the batch, and the steps of a user (item) that occurs several
times in the batch are summed — one-rating-at-a-time SGD with slightly stale parameters, so
``learning_rate`` means the same as in the sequential algorithm (e.g. Surprise's SVD).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.common.factors import FactorModel, check_non_negative, check_positive, check_positive_int, init_factors

# Ratings per chunk when the objective is evaluated over the whole training set (bounds the
# memory of the gathered factor rows on ML-10M).
_CHUNK = 200_000


def _group(index: np.ndarray) -> tuple[np.ndarray, np.ndarray, sp.csc_matrix]:
    """(rows, counts, scatter) for a batch's user (or item) indices: the distinct rows, how
    often each occurs, and the rows × batch 0/1 matrix with ``scatter @ v`` = per-row sums.

    The one-entry-per-column CSC product is about 3x faster than ``np.add.at`` on 2-D rows,
    and touching only the batch's rows keeps an ML-10M epoch practical.
    """
    rows, inverse, counts = np.unique(index, return_inverse=True, return_counts=True)
    n = len(index)
    return rows, counts, sp.csc_matrix((np.ones(n), inverse, np.arange(n + 1)), shape=(len(rows), n))


class BiasedMF(FactorModel):
    protocols = ("explicit",)

    def __init__(
        self,
        factors: int = 100,
        learning_rate: float = 0.01,
        l2: float = 0.1,
        l2_bias: float = 0.02,
        init_std: float = 0.1,
        batch_size: int = 256,
        seed: int = 0,
    ):
        super().__init__()
        check_positive_int(factors=factors, batch_size=batch_size)
        check_positive(learning_rate=learning_rate, init_std=init_std)
        check_non_negative(l2=l2, l2_bias=l2_bias)
        self.factors = int(factors)
        self.learning_rate = float(learning_rate)
        self.l2 = float(l2)
        self.l2_bias = float(l2_bias)
        self.init_std = float(init_std)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)

    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        if rating_scale is None:
            raise ConfigError("model biasedmf predicts ratings: use protocol=explicit")
        coo = sp.coo_matrix(train)
        self.users = coo.row.astype(np.int64)
        self.items = coo.col.astype(np.int64)
        self.ratings = coo.data.astype(np.float64)
        n_users, n_items = train.shape
        mu = float(self.ratings.mean()) if len(self.ratings) else rating_scale.mid
        self.params = {
            "user_factors": init_factors(self.rng, n_users, self.factors, self.init_std),
            "item_factors": init_factors(self.rng, n_items, self.factors, self.init_std),
            "user_bias": np.zeros(n_users),
            "item_bias": np.zeros(n_items),
            "global_bias": np.array(mu),
        }

    def _sgd_step(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> float:
        """One mini-batch step; returns the batch's summed objective before the step."""
        P, Q = self.params["user_factors"], self.params["item_factors"]
        b_u, b_i = self.params["user_bias"], self.params["item_bias"]
        pu, qi = P[users], Q[items]
        mu = float(self.params["global_bias"])
        err = ratings - (mu + b_u[users] + b_i[items] + np.einsum("ij,ij->i", pu, qi))
        ru, cu, su = _group(users)
        ri, ci, si = _group(items)
        # Every touched row as at the batch start (all steps are taken from these values).
        p0, q0, bu0, bi0 = P[ru], Q[ri], b_u[ru], b_i[ri]
        # Summed per-rating steps. A row met c times in the batch decays by c·λ·(its value)
        # in total, so the decay is applied once per distinct row (fewer B×K operations).
        lr = self.learning_rate
        P[ru] += lr * (su @ (err[:, None] * qi) - self.l2 * cu[:, None] * p0)
        Q[ri] += lr * (si @ (err[:, None] * pu) - self.l2 * ci[:, None] * q0)
        b_u[ru] += lr * (su @ err - self.l2_bias * cu * bu0)
        b_i[ri] += lr * (si @ err - self.l2_bias * ci * bi0)
        # λ‖p_u‖² etc. once per rating, as in the objective.
        reg = self.l2 * (cu @ np.sum(p0**2, axis=1) + ci @ np.sum(q0**2, axis=1))
        reg += self.l2_bias * (cu @ bu0**2 + ci @ bi0**2)
        return float(err @ err + reg)

    def train_epoch(self) -> float:
        """One shuffled pass; the objective is the running mean of each batch's value before
        its step (what SGD saw), as usual for SGD."""
        order = self.rng.permutation(len(self.ratings))
        total = 0.0
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            total += self._sgd_step(self.users[batch], self.items[batch], self.ratings[batch])
        return total / max(len(order), 1)

    def training_loss(self) -> float:
        """The objective at the current parameters, averaged over the training ratings."""
        p = self.params
        total = 0.0
        for start in range(0, len(self.ratings), _CHUNK):
            u, i = self.users[start : start + _CHUNK], self.items[start : start + _CHUNK]
            err = self.ratings[start : start + _CHUNK] - self.predict(u, i)
            total += float(err @ err)
        # Each rating regularises its user's and item's parameters once.
        n_u = np.bincount(self.users, minlength=len(p["user_bias"]))
        n_i = np.bincount(self.items, minlength=len(p["item_bias"]))
        total += self.l2 * (n_u @ np.sum(p["user_factors"] ** 2, axis=1))
        total += self.l2 * (n_i @ np.sum(p["item_factors"] ** 2, axis=1))
        total += self.l2_bias * (n_u @ p["user_bias"] ** 2 + n_i @ p["item_bias"] ** 2)
        return float(total) / max(len(self.ratings), 1)

    def score_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Fold-in: each new user's factor and bias fit to r − μ − b_i on their rated items,
        the items fixed, with the objective's penalties per rating (λ n_u‖p‖², λ_b n_u b_u²)."""
        from ncae_exp.models.common.fold_in import check_vectors, solve_users

        p = self.params
        q, b_i, mu = p["item_factors"], p["item_bias"], float(p["global_bias"])
        x = check_vectors(x, len(b_i))
        k = q.shape[1]
        w = solve_users(x, np.hstack([q, np.ones((len(q), 1))]), None, lambda i, r: np.ones(len(i)),
                        lambda i, r: r - mu - b_i[i], lambda n: np.r_[np.full(k, self.l2 * n), self.l2_bias * n])
        return w[:, :k] @ q.T + w[:, k:] + b_i[None, :] + mu

    def train_rngs(self) -> dict[str, np.random.Generator]:
        return {"order": self.rng}  # the shuffle of each epoch

    def describe(self) -> dict[str, float]:
        return {**super().describe(), "factors": self.factors}

"""ALS-WR: alternating least squares with weighted-λ regularisation (Zhou, Wilkinson,
Schreiber & Pan, "Large-Scale Parallel Collaborative Filtering for the Netflix Prize",
AAIM 2008).

Rating prediction by r̂_ui = μ + p_u·q_i, minimising over the training ratings R

    Σ_(u,i)∈R (r_ui − μ − p_u·q_i)² + λ(Σ_u n_u‖p_u‖² + Σ_i n_i‖q_i‖²)

where n_u, n_i count the ratings of user u and item i (the "weighted-λ"). One sweep solves
every user's normal equations (Q_uᵀQ_u + λ n_u I) p_u = Q_uᵀ(r_u − μ) with the items fixed,
then every item's with the users fixed; each solve is the exact minimiser of its block, so
the objective never increases. Zhou et al. fit raw ratings (μ = 0, ``center: false``);
``center: true`` subtracts the mean training rating first (a common variant; worse on
ML-100K validation, see the YAML).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.common.factors import FactorModel, check_positive, check_positive_int, init_factors

# Rows whose normal equations are stacked into one batched solve.
_SOLVE_CHUNK = 2048
# Ratings per chunk when evaluating the objective (bounds gathered rows on ML-10M).
_CHUNK = 200_000


def _solve_rows(matrix: sp.csr_matrix, fixed: np.ndarray, lam: float) -> np.ndarray:
    """For every row r of ``matrix``: argmin_x Σ_j (m_rj − x·f_j)² + λ n_r ‖x‖² over the
    row's stored entries j, i.e. x = (F_rᵀF_r + λ n_r I)⁻¹ F_rᵀ m_r. An empty row gets 0."""
    n_rows, k = matrix.shape[0], fixed.shape[1]
    out = np.zeros((n_rows, k))
    eye = np.eye(k)
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for lo in range(0, n_rows, _SOLVE_CHUNK):
        hi = min(lo + _SOLVE_CHUNK, n_rows)
        lhs = np.empty((hi - lo, k, k))
        rhs = np.zeros((hi - lo, k))
        for row in range(lo, hi):
            a, b = indptr[row], indptr[row + 1]
            if a == b:
                lhs[row - lo] = eye  # no data: x = 0 solves the (empty) problem
                continue
            f = fixed[indices[a:b]]
            lhs[row - lo] = f.T @ f + (lam * (b - a)) * eye
            rhs[row - lo] = f.T @ data[a:b]
        out[lo:hi] = np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]
    return out


class ALSWR(FactorModel):
    protocols = ("explicit",)

    def __init__(
        self,
        factors: int = 50,
        l2: float = 0.1,
        init_std: float = 0.1,
        center: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        check_positive_int(factors=factors)
        check_positive(l2=l2, init_std=init_std)
        if not isinstance(center, bool):
            raise ConfigError(f"model.center must be true or false, got {center!r}")
        self.factors = int(factors)
        self.l2 = float(l2)
        self.init_std = float(init_std)
        self.center = center
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)

    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        if rating_scale is None:
            raise ConfigError("model alswr predicts ratings: use protocol=explicit")
        train = sp.csr_matrix(train, dtype=np.float64)
        mu = float(train.data.mean()) if (self.center and train.nnz) else 0.0
        # The (centred) ratings by user and by item: the two sides of the alternation.
        self.by_user = train.copy()
        self.by_user.data -= mu
        self.by_item = self.by_user.T.tocsr()
        coo = self.by_user.tocoo()
        self.users, self.items, self.targets = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
        n_users, n_items = train.shape
        self.params = {
            "user_factors": init_factors(self.rng, n_users, self.factors, self.init_std),
            "item_factors": init_factors(self.rng, n_items, self.factors, self.init_std),
            "global_bias": np.array(mu),
        }

    def _update_users(self) -> None:
        self.params["user_factors"] = _solve_rows(self.by_user, self.params["item_factors"], self.l2)

    def _update_items(self) -> None:
        self.params["item_factors"] = _solve_rows(self.by_item, self.params["user_factors"], self.l2)

    def train_epoch(self) -> float:
        self._update_users()
        self._update_items()
        return self.training_loss()

    def training_loss(self) -> float:
        """The objective above divided by the number of training ratings."""
        p = self.params
        total = 0.0
        for start in range(0, len(self.targets), _CHUNK):
            u, i = self.users[start : start + _CHUNK], self.items[start : start + _CHUNK]
            err = self.targets[start : start + _CHUNK] - np.einsum(
                "ij,ij->i", p["user_factors"][u], p["item_factors"][i]
            )
            total += float(err @ err)
        n_u = np.diff(self.by_user.indptr)
        n_i = np.diff(self.by_item.indptr)
        total += self.l2 * (n_u @ np.sum(p["user_factors"] ** 2, axis=1))
        total += self.l2 * (n_i @ np.sum(p["item_factors"] ** 2, axis=1))
        return float(total) / max(len(self.targets), 1)

    def score_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Fold-in: the model's own user step for the new users (x_u = (Q_uᵀQ_u + λ n_u I)⁻¹
        Q_uᵀ(r_u − μ)), the item factors fixed."""
        from ncae_exp.models.common.fold_in import check_vectors, solve_users

        p = self.params
        q, mu = p["item_factors"], float(p["global_bias"])
        x = check_vectors(x, len(q))
        w = solve_users(x, q, None, lambda i, r: np.ones(len(i)), lambda i, r: r - mu,
                        lambda n: np.full(q.shape[1], self.l2 * n))
        return w @ q.T + mu

    def train_rngs(self) -> dict[str, np.random.Generator]:
        # Sweeps draw nothing (the generator only initialises); saved all the same, so a
        # random draw added later is covered.
        return {"init": self.rng}

    def describe(self) -> dict[str, float]:
        return {**super().describe(), "factors": self.factors}

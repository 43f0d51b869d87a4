"""WMF: weighted matrix factorisation for implicit feedback by alternating least squares.

Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets" (ICDM 2008),
with the uniform weighting the NCAE paper compares against: every observed interaction is a
target 1 with weight 1, every unobserved (user, item) pair a target 0 with weight
``negative_weight`` (the paper's c = 0.05), and L2 penalty ``l2`` on all factors (the paper's
λ = 0.1; 5 is the default, chosen on validation — see conf/model/wmf.yaml):

    L = Σ_(u,i) observed (1 − x_uᵀy_i)² + c Σ_(u,i) unobserved (x_uᵀy_i)²
        + λ (Σ_u ‖x_u‖² + Σ_i ‖y_i‖²)

One epoch is one sweep: every user factor solved exactly given the item factors, then every
item factor given the new user factors. Each half-sweep minimises L exactly over one side, so
L never increases. The sweep is the ``implicit`` library's ALS (its exact Cholesky solver,
float64, one iteration per call continuing from the current factors); the factors and their
random initialisation stay here, so seeds, snapshots and the objective are this module's.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.common.factors import FactorModel, check_positive, check_positive_int, init_factors
from ncae_exp.models.common.interactions import binarise


def objective(positives: sp.csr_matrix, users: np.ndarray, items: np.ndarray,
              negative_weight: float, l2: float) -> float:
    """L above, summed over all M × N entries without forming the dense score matrix:
    c Σ_all s² = c tr(XᵀX YᵀY), then the observed entries swap c s² for (1 − s)²."""
    coo = positives.tocoo()
    s = np.einsum("ij,ij->i", users[coo.row], items[coo.col])
    all_sq = float(np.sum((users.T @ users) * (items.T @ items)))
    fit = negative_weight * (all_sq - float(s @ s)) + float(np.sum((1.0 - s) ** 2))
    return fit + l2 * (float(np.sum(users**2)) + float(np.sum(items**2)))


class WMF(FactorModel):
    """Hu et al. (2008) weighted MF by exact ALS, with the NCAE paper's uniform weights."""

    protocols = ("implicit",)

    def __init__(
        self,
        factors: int = 128,
        l2: float = 5.0,
        negative_weight: float = 0.05,
        init_scale: float = 0.1,
        num_threads: int = 2,
        seed: int = 0,
    ):
        super().__init__()
        check_positive_int(factors=factors, num_threads=num_threads)
        # l2 > 0 keeps every normal-equation system positive definite (Cholesky).
        check_positive(l2=l2, negative_weight=negative_weight, init_scale=init_scale)
        if float(negative_weight) > 1.0:
            raise ConfigError(f"model.negative_weight must be <= 1 (the observed weight), got {negative_weight!r}")
        self.factors = int(factors)
        self.l2 = float(l2)
        self.negative_weight = float(negative_weight)
        self.init_scale = float(init_scale)
        self.num_threads = int(num_threads)
        self.seed = int(seed)
        self._positives: sp.csr_matrix | None = None

    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        # Hu et al.'s preference p_ui = 1 for any interaction; counts do not raise the weight
        # (the NCAE paper's WMF uses uniform weights).
        self._positives = binarise(train)
        rng = np.random.default_rng(self.seed)
        n_users, n_items = train.shape
        # Users are solved first in each sweep, so only the item initialisation shapes the
        # fit; both are drawn so that epoch 0 already scores (and differs by seed).
        self.params = {
            "user_factors": init_factors(rng, n_users, self.factors, self.init_scale),
            "item_factors": init_factors(rng, n_items, self.factors, self.init_scale),
        }

    def _sweep(self) -> None:
        # implicit weighs unobserved entries 1 and observed ones alpha × value, so dividing L
        # by c gives its objective with alpha = 1/c and regularization = λ/c (same minimiser).
        # The exact (Cholesky) solver, not CG, so each half-sweep is the exact minimiser.
        with threadpool_limits(1, "blas"):  # a BLAS pool per tiny solve is ~30x slower
            als = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.l2 / self.negative_weight,
                alpha=1.0 / self.negative_weight,
                dtype=np.float64,
                use_cg=False,
                iterations=1,
                num_threads=self.num_threads,
            )
            # Factors already set: implicit's fit continues from them (no re-initialisation).
            als.user_factors = np.ascontiguousarray(self.params["user_factors"], dtype=np.float64)
            als.item_factors = np.ascontiguousarray(self.params["item_factors"], dtype=np.float64)
            als.fit(self._positives, show_progress=False)
        self.params = {"user_factors": als.user_factors, "item_factors": als.item_factors}

    def score_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Fold-in: the exact minimiser of L's user part with the items fixed (an ALS user
        step): (c YᵀY + (1 − c) Σ_{i∈R_u} y_i y_iᵀ + λI) p = Σ_{i∈R_u} y_i, x binarised."""
        from ncae_exp.models.common.fold_in import check_vectors, solve_users

        y = np.asarray(self.params["item_factors"], dtype=np.float64)
        x = binarise(check_vectors(x, len(y)), dtype=np.float64)
        c = self.negative_weight
        w = solve_users(x, y, c * (y.T @ y), lambda i, r: np.full(len(i), 1.0 - c), lambda i, r: np.ones(len(i)),
                        lambda n: np.full(y.shape[1], self.l2))
        return w @ y.T

    def _mean_objective(self) -> float:
        p = self.params
        total = objective(self._positives, p["user_factors"], p["item_factors"], self.negative_weight, self.l2)
        # per training interaction: a per-entry mean over all M × N pairs is ~1e-4
        return total / float(max(self._positives.nnz, 1))

    def train_epoch(self) -> float:
        self._sweep()
        return self._mean_objective()

    def training_loss(self) -> float:
        return self._mean_objective()

    def describe(self) -> dict[str, float]:
        return {**super().describe(), "factors": self.factors}

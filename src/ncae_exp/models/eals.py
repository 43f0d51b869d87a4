"""eALS: He, Zhang, Kan & Chua (SIGIR 2016), "Fast Matrix Factorization for Online
Recommendation with Implicit Feedback".

Matrix factorisation ŷ_ui = p_u·q_i fit to binarised interactions by element-wise ALS, with
every missing entry a weighted negative whose weight grows with the item's popularity:

    L = Σ_{(u,i)∈R} w (1 − ŷ_ui)² + Σ_u Σ_{i∉R_u} c_i ŷ_ui² + λ (‖P‖² + ‖Q‖²),
    c_i = c0 · f_i^ω / Σ_j f_j^ω,   f_i = |R_i| / Σ_j |R_j|.

One epoch is the paper's Algorithm 1: a sweep over the users' coordinates, then over the
items'. The missing-data term never touches the M×N matrix: it is rewritten as
Σ_u p_uᵀ S^q p_u − Σ_{(u,i)∈R} c_i ŷ_ui² with S^q = Σ_i c_i q_i q_iᵀ (and symmetrically
with S^p = Σ_u p_u p_uᵀ for the items), so a sweep costs O((M+N)K² + |R|K).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.common.confidence import popularity_confidence
from ncae_exp.models.common.factors import FactorModel, check_non_negative, check_positive, check_positive_int, init_factors
from ncae_exp.models.common.interactions import binarise


class EALS(FactorModel):
    """Element-wise ALS with popularity-weighted missing data (implicit feedback only)."""

    protocols = ("implicit",)

    def __init__(
        self,
        factors: int = 64,
        l2: float = 7.0,
        c0: float = 512.0,
        omega: float = 0.5,
        w_observed: float = 1.0,
        init_std: float = 0.01,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_positive_int(factors=factors)
        check_non_negative(l2=l2, c0=c0, omega=omega)
        check_positive(w_observed=w_observed, init_std=init_std)
        if isinstance(seed, bool) or int(seed) != seed:
            raise ConfigError(f"model.seed must be an integer, got {seed!r}")
        self.factors, self.l2 = int(factors), float(l2)
        self.c0, self.omega, self.w_observed = float(c0), float(omega), float(w_observed)
        self.init_std, self.seed = float(init_std), int(seed)

    # ------------------------------------------------------------------ data
    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        # Implicit feedback: any interaction (whatever its play count) is a positive r = 1.
        x = binarise(train, dtype=np.float64)
        self.n_users, self.n_items = x.shape
        # The observed entries as coordinate lists; the per-user and per-item sums of the
        # sweeps are bincounts over them, so no CSC copy is needed.
        self.rows = np.repeat(np.arange(self.n_users), np.diff(x.indptr)).astype(np.int64)
        self.cols = x.indices.astype(np.int64)
        self.n_observed = int(len(self.rows))
        counts = np.bincount(self.cols, minlength=self.n_items).astype(np.float64)
        self.confidence = popularity_confidence(counts, self.c0, self.omega)
        # (w − c_i) on each observed entry: the observed weight replaces the missing one there.
        self.w_minus_c = self.w_observed - self.confidence[self.cols]
        rng = np.random.default_rng(self.seed)
        self.params = {
            "user_factors": init_factors(rng, self.n_users, self.factors, self.init_std),
            "item_factors": init_factors(rng, self.n_items, self.factors, self.init_std),
        }

    # ------------------------------------------------------------------ objective
    def _predicted_observed(self) -> np.ndarray:
        """ŷ_ui on every observed entry (the cache the sweeps keep up to date)."""
        p, q = self.params["user_factors"], self.params["item_factors"]
        return np.einsum("ij,ij->i", p[self.rows], q[self.cols])

    def objective(self, y: np.ndarray | None = None) -> float:
        """The total (unnormalised) L, from the K×K caches and the observed entries only
        (``y``: the ŷ cache on the observed entries, when the caller has it)."""
        p, q = self.params["user_factors"], self.params["item_factors"]
        y = self._predicted_observed() if y is None else y
        s_q = (q * self.confidence[:, None]).T @ q
        s_p = p.T @ p
        # Σ_u Σ_i c_i ŷ_ui² over all entries = tr(S^q S^p); the observed entries' share is
        # swapped for their w (1 − ŷ)².
        all_missing = float(np.sum(s_q * s_p))
        observed = float(np.sum(self.w_observed * (1.0 - y) ** 2 - self.confidence[self.cols] * y**2))
        reg = self.l2 * float(np.sum(p * p) + np.sum(q * q))
        return observed + all_missing + reg

    def training_loss(self) -> float:
        """L divided by the number of training interactions |R|."""
        return self.objective() / max(self.n_observed, 1)

    # ------------------------------------------------------------------ sweeps
    def _update_coordinate(
        self, f: int, own: np.ndarray, other: np.ndarray, idx_own: np.ndarray, idx_other: np.ndarray,
        cache: np.ndarray, scale: np.ndarray | float, y: np.ndarray,
    ) -> None:
        """Exact minimisation over coordinate f of every row of ``own`` (users or items),
        the other side fixed. Rows are independent given the other side, so all are updated
        at once; this equals the paper's per-user (per-item) loop. ``scale`` multiplies the
        cache term per row (1 for users, c_i for items); ``y`` is the ŷ cache, updated in
        place; ``own`` is changed in place.
        """
        n = own.shape[0]
        old = own[:, f].copy()
        other_f = other[:, f][idx_other]
        # ŷ without this coordinate's contribution.
        y_rest = y - old[idx_own] * other_f
        num = np.bincount(idx_own, weights=(self.w_observed - self.w_minus_c * y_rest) * other_f, minlength=n)
        # Σ_{k≠f} x_k s_kf, from the current (partly updated) row.
        num -= scale * (own @ cache[:, f] - old * cache[f, f])
        den = np.bincount(idx_own, weights=self.w_minus_c * other_f**2, minlength=n) + scale * cache[f, f] + self.l2
        # den is the coordinate's curvature, > 0 unless a row has no data, λ = 0 and the
        # cache is 0 there; such a coordinate is left at 0.
        new = np.divide(num, den, out=np.zeros(n), where=den > 0)
        own[:, f] = new
        y[:] = y_rest + new[idx_own] * other_f

    def _sweep_users(self, y: np.ndarray) -> None:
        p, q = self.params["user_factors"], self.params["item_factors"]
        s_q = (q * self.confidence[:, None]).T @ q
        for f in range(self.factors):
            self._update_coordinate(f, p, q, self.rows, self.cols, s_q, 1.0, y)

    def _sweep_items(self, y: np.ndarray) -> None:
        p, q = self.params["user_factors"], self.params["item_factors"]
        s_p = p.T @ p
        for f in range(self.factors):
            self._update_coordinate(f, q, p, self.cols, self.rows, s_p, self.confidence, y)

    def train_epoch(self) -> float:
        y = self._predicted_observed()
        self._sweep_users(y)
        self._sweep_items(y)
        # The sweeps keep y exact (tests/test_eals.py), so the objective reuses it.
        return self.objective(y) / max(self.n_observed, 1)

    def score_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Fold-in: the exact minimiser of L's user part with the items fixed (what the
        coordinate sweeps converge to): (S^q + Σ_{i∈R_u} (w − c_i) q_i q_iᵀ + λI) p =
        Σ_{i∈R_u} w q_i, x binarised."""
        from ncae_exp.models.common.fold_in import check_vectors, solve_users

        q = np.asarray(self.params["item_factors"], dtype=np.float64)
        x = binarise(check_vectors(x, len(q)), dtype=np.float64)
        s_q = (q * self.confidence[:, None]).T @ q
        w = solve_users(x, q, s_q, lambda i, r: self.w_observed - self.confidence[i],
                        lambda i, r: np.full(len(i), self.w_observed), lambda n: np.full(q.shape[1], self.l2))
        return w @ q.T

    def describe(self) -> dict[str, float]:
        return {**super().describe(), "n_observed": self.n_observed}

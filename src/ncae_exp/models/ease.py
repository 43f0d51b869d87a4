"""EASE: Steck (2019), "Embarrassingly Shallow Autoencoders for Sparse Data" (WWW '19).

A linear item-to-item autoencoder: B (items × items) minimises ||X − XB||²_F + λ||B||²_F
subject to diag(B) = 0 (an item may not predict itself), for the binarised user × item matrix
X. The closed form is B = I − P·diag(1/diag(P)) with P = (XᵀX + λI)⁻¹, i.e.
B_ij = −P_ij / P_jj off the diagonal and 0 on it. A user's scores are X_u · B.

Fit in closed form (one "epoch"). P needs the inverse of an items × items matrix; when there
are fewer users than items (Lastfm: 1,892 users, 17,632 items) the Woodbury identity gives
the same B from a users × users solve instead (see ``_b_woodbury``), seconds instead of
minutes and no items × items float64 matrix. B is kept in float32 (items² × 4 bytes: 1.24 GB
on Lastfm), computed in float64.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender
from ncae_exp.models.common.factors import check_positive
from ncae_exp.models.common.interactions import binarise

_BLOCK = 2048  # rows per block when filling B or summing the objective (bounds float64 temporaries)


def _b_direct(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """B from P = (XᵀX + λI)⁻¹ (items × items), the paper's formula as written."""
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += l2
    p = sla.inv(gram, overwrite_a=True, check_finite=False)
    b = p / (-np.diag(p))[None, :]
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


def _b_woodbury(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """The same B through (XᵀX + λI)⁻¹ = (I − XᵀK X)/λ with K = (XXᵀ + λI)⁻¹ (users × users).

    With Y = K X: P = (I − XᵀY)/λ, so P_jj = (1 − d_j)/λ where d_j = x_jᵀ y_j (columns j),
    and B_ij = −P_ij / P_jj = (XᵀY)_ij / (1 − d_j) for i ≠ j; λ cancels. 1 − d_j = λ P_jj > 0
    because P is positive definite.
    """
    n_items = x.shape[1]
    dense = x.toarray()
    kernel = (x @ x.T).toarray()
    kernel[np.diag_indices_from(kernel)] += l2
    y = sla.cho_solve(sla.cho_factor(kernel, overwrite_a=True, check_finite=False), dense, check_finite=False)
    d = np.einsum("uj,uj->j", dense, y)
    del dense
    y /= (1.0 - d)[None, :]
    xt = sp.csr_matrix(x.T)
    b = np.empty((n_items, n_items), np.float32)
    # By column blocks: the sparse product then reads a cache-sized slice of Y per block
    # (row blocks over all of Y were twice as slow on Lastfm, memory-bound).
    for start in range(0, n_items, _BLOCK // 2):
        stop = min(start + _BLOCK // 2, n_items)
        b[:, start:stop] = xt @ np.ascontiguousarray(y[:, start:stop])
    np.fill_diagonal(b, 0.0)
    return b


class Ease(Recommender):
    protocols = ("implicit",)
    iterative = False

    def __init__(self, l2: float = 200.0) -> None:
        check_positive(l2=l2)
        self.l2 = float(l2)
        self.x: sp.csr_matrix | None = None  # binarised training matrix, float32
        self.b = np.zeros((0, 0), np.float32)

    def prepare(self, train: sp.csr_matrix, rating_scale: RatingScale | None) -> None:
        x = binarise(train)  # implicit: any interaction counts once, whatever its weight (play count)
        self.x = x
        # Before the fit B = 0 (every score 0: the epoch-0 point). np.zeros does not touch
        # the memory until it is written.
        self.b = np.zeros((x.shape[1], x.shape[1]), np.float32)

    def _check_prepared(self) -> sp.csr_matrix:
        if self.x is None:
            raise ConfigError("EASE: call prepare(train, ...) before training or scoring")
        return self.x

    def train_epoch(self) -> float:
        x = self._check_prepared().astype(np.float64)
        n_users, n_items = x.shape
        self.b = np.zeros((0, 0), np.float32)  # drop the old B before building the new one
        self.b = _b_woodbury(x, self.l2) if n_users < n_items else _b_direct(x, self.l2)
        return self.training_loss()

    def training_loss(self) -> float:
        """(||X − XB||²_F + λ||B||²_F) / (users × items): the objective per matrix entry."""
        x = self._check_prepared()
        n_users, n_items = x.shape
        total = 0.0
        for start in range(0, n_users, _BLOCK):
            rows = x[start : start + _BLOCK]
            resid = rows.toarray().astype(np.float64) - rows @ self.b
            total += float(np.einsum("ij,ij->", resid, resid))
        for start in range(0, n_items, _BLOCK):
            block = self.b[start : start + _BLOCK]
            total += self.l2 * float(np.einsum("ij,ij->", block, block, dtype=np.float64))
        return total / (n_users * n_items)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        x = self._check_prepared()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        # (X_u B)_i = sum of B[j, i] over the user's items j (X is binary): gather, then sum per pair.
        rows = x[users]
        pair = np.repeat(np.arange(len(users)), np.diff(rows.indptr))
        weights = self.b[rows.indices, items[pair]].astype(np.float64)
        return np.bincount(pair, weights=weights, minlength=len(users)).astype(np.float64)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        x = self._check_prepared()
        return np.asarray(x[np.asarray(users, dtype=np.int64)] @ self.b)

    def score_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Fold-in: X·B for the new users' binarised vectors (EASE has no user parameters)."""
        from ncae_exp.models.common.fold_in import check_vectors

        return np.asarray(binarise(check_vectors(x, self.b.shape[0])) @ self.b)

    def get_state(self) -> dict[str, np.ndarray]:
        return {"B": self.b.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        if "B" not in state:
            raise ConfigError(f"saved EASE state lacks 'B' (has {sorted(state)})")
        b = np.asarray(state["B"], dtype=np.float32)
        if b.ndim != 2 or b.shape[0] != b.shape[1]:
            raise ConfigError(f"saved EASE B must be square (items × items), got shape {b.shape}")
        if self.x is not None and b.shape[0] != self.x.shape[1]:
            raise ConfigError(f"saved EASE B has shape {b.shape}, the data has {self.x.shape[1]} items")
        self.b = b.copy()

    def describe(self) -> dict[str, float]:
        return {"n_parameters": int(self.b.size), "b_megabytes": round(self.b.nbytes / 2**20, 1)}

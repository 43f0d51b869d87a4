"""WMF (models/wmf.py): each sweep solves Hu et al.'s weighted normal equations exactly, and
the weighted objective never rises across sweeps."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.models.wmf import WMF, objective


def _matrix(seed: int = 0, n_users: int = 15, n_items: int = 12) -> sp.csr_matrix:
    """Play counts (not just ones) so the test also checks they are binarised."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.3) * rng.integers(1, 50, (n_users, n_items))
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 3  # nobody is empty
    return sp.csr_matrix(dense.astype(np.float32))


def _dense_weighted_solution(p_u: np.ndarray, y: np.ndarray, c: float, l2: float) -> np.ndarray:
    """(Yᵀ C_u Y + λI) x = Yᵀ C_u p_u, C_u = diag(1 at positives, c elsewhere), densely."""
    weights = np.where(p_u > 0, 1.0, c)
    a = y.T @ (weights[:, None] * y) + l2 * np.eye(y.shape[1])
    return np.linalg.solve(a, y.T @ (weights * p_u))


def _dense_objective(p: np.ndarray, x: np.ndarray, y: np.ndarray, c: float, l2: float) -> float:
    s = x @ y.T
    weights = np.where(p > 0, 1.0, c)
    return float(np.sum(weights * (p - s) ** 2) + l2 * (np.sum(x**2) + np.sum(y**2)))


def test_one_sweep_solves_each_users_weighted_normal_equations():
    train = _matrix()
    model = WMF(factors=4, l2=0.1, negative_weight=0.05, seed=1)
    model.prepare(train, None)
    items_before = model.get_state()["item_factors"]
    model.train_epoch()
    p = (train.toarray() > 0).astype(np.float64)
    users_after = model.params["user_factors"]
    for u in range(train.shape[0]):
        expected = _dense_weighted_solution(p[u], items_before, 0.05, 0.1)
        np.testing.assert_allclose(users_after[u], expected, atol=1e-5, rtol=1e-5)
    # the item half of the sweep solves the same equations given the new user factors
    items_after = model.params["item_factors"]
    for i in range(train.shape[1]):
        expected = _dense_weighted_solution(p[:, i], users_after, 0.05, 0.1)
        np.testing.assert_allclose(items_after[i], expected, atol=1e-5, rtol=1e-5)


def test_objective_matches_dense_and_never_rises():
    train = _matrix(seed=2)
    model = WMF(factors=3, l2=0.1, negative_weight=0.05, seed=0)
    model.prepare(train, None)
    p = (train.toarray() > 0).astype(np.float64)
    n_positives = int(np.count_nonzero(p))
    values = [model.training_loss()]
    for _ in range(8):
        values.append(model.train_epoch())
        x, y = model.params["user_factors"], model.params["item_factors"]
        dense = _dense_objective(p, x, y, 0.05, 0.1)
        assert objective(sp.csr_matrix(p), x, y, 0.05, 0.1) == pytest.approx(dense, rel=1e-10)
        assert values[-1] == pytest.approx(dense / n_positives, rel=1e-10)
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:])), values
    assert values[-1] < 0.5 * values[0]


def test_settings_are_validated():
    for bad in ({"factors": 0}, {"l2": 0.0}, {"negative_weight": 1.5}, {"negative_weight": -0.1},
                {"num_threads": 0}, {"factors": 2.5}):
        with pytest.raises(ConfigError, match="model."):
            WMF(**bad)

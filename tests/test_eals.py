"""eALS (models/eals.py) against dense-array computations whose answers are known.

The dense reference builds the full weight matrix W (w on observed entries, c_i on missing
ones) and the 0/1 target matrix R, so L = Σ W (R − PQᵀ)² + λ(‖P‖² + ‖Q‖²).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.models.common.confidence import popularity_confidence as popularity_weights
from ncae_exp.models.eals import EALS


def _matrix(n_users=14, n_items=11, density=0.3, seed=0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density) * rng.integers(1, 9, (n_users, n_items))
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 3  # nobody empty
    dense[:, -1] = 0  # an item nobody interacted with (c = 0)
    return sp.csr_matrix(dense.astype(np.float32))


def _model(x, seed=0, **kw) -> EALS:
    settings = dict(factors=3, l2=0.05, c0=4.0, omega=0.5, w_observed=1.0, init_std=0.3, seed=seed)
    settings.update(kw)
    m = EALS(**settings)
    m.prepare(x, None)
    return m


def _dense(m: EALS):
    r = np.zeros((m.n_users, m.n_items))
    r[m.rows, m.cols] = 1.0
    w = np.where(r > 0, m.w_observed, m.confidence[None, :])
    return r, w


def _dense_objective(m: EALS) -> float:
    r, w = _dense(m)
    p, q = m.params["user_factors"], m.params["item_factors"]
    return float(np.sum(w * (r - p @ q.T) ** 2) + m.l2 * (np.sum(p**2) + np.sum(q**2)))


def test_popularity_weights_follow_the_formula():
    counts = np.array([4.0, 1.0, 0.0, 9.0])
    f = counts / counts.sum()
    expected = 10.0 * f**0.5 / np.sum(f**0.5)
    np.testing.assert_allclose(popularity_weights(counts, 10.0, 0.5), expected)
    np.testing.assert_allclose(popularity_weights(counts, 6.0, 0.0), [2.0, 2.0, 0.0, 2.0])


@pytest.mark.parametrize("w_observed,omega", [(1.0, 0.5), (2.5, 0.0), (0.3, 1.0)])
def test_fast_objective_equals_dense_objective(w_observed, omega):
    m = _model(_matrix(), w_observed=w_observed, omega=omega)
    for _ in range(3):
        np.testing.assert_allclose(m.objective(), _dense_objective(m), rtol=1e-10)
        m.train_epoch()
    np.testing.assert_allclose(m.training_loss() * m.n_observed, _dense_objective(m), rtol=1e-10)


def test_objective_never_increases():
    # c0 large enough that popular items get c_i > w (then w − c_i < 0 on observed entries).
    m = _model(_matrix(30, 25, seed=1), c0=40.0, factors=4)
    assert m.confidence.max() > m.w_observed
    previous = m.objective()
    for _ in range(40):
        m.train_epoch()
        current = m.objective()
        assert current <= previous * (1 + 1e-12) + 1e-12, (current, previous)
        previous = current


@pytest.mark.parametrize("side", ["users", "items"])
def test_one_coordinate_update_is_the_exact_1d_minimiser(side):
    m = _model(_matrix(), c0=20.0, factors=4)
    m.train_epoch()  # away from the initial point
    r, w = _dense(m)
    p, q = m.params["user_factors"].copy(), m.params["item_factors"].copy()
    f = 2
    if side == "users":
        # p_uf = Σ_i W_ui q_if (R_ui − Σ_{k≠f} p_uk q_ik) / (Σ_i W_ui q_if² + λ)
        rest = r - (p @ q.T - np.outer(p[:, f], q[:, f]))
        expected = (w * rest) @ q[:, f] / (w @ q[:, f] ** 2 + m.l2)
        s_q = (q * m.confidence[:, None]).T @ q
        m._update_coordinate(f, m.params["user_factors"], q, m.rows, m.cols, s_q, 1.0, m._predicted_observed())
        got, before, after_other = m.params["user_factors"], p, m.params["item_factors"]
    else:
        rest = r - (p @ q.T - np.outer(p[:, f], q[:, f]))
        expected = (w * rest).T @ p[:, f] / (w.T @ p[:, f] ** 2 + m.l2)
        s_p = p.T @ p
        m._update_coordinate(f, m.params["item_factors"], p, m.cols, m.rows, s_p, m.confidence,
                             m._predicted_observed())
        got, before, after_other = m.params["item_factors"], q, m.params["user_factors"]
    np.testing.assert_allclose(got[:, f], expected, rtol=1e-9, atol=1e-12)
    # Only coordinate f of that side moved.
    np.testing.assert_array_equal(np.delete(got, f, axis=1), np.delete(before, f, axis=1))
    np.testing.assert_array_equal(after_other, q if side == "users" else p)


def test_sweep_keeps_the_prediction_cache_exact():
    m = _model(_matrix(), c0=20.0)
    y = m._predicted_observed()
    m._sweep_users(y)
    np.testing.assert_allclose(y, m._predicted_observed(), rtol=1e-12, atol=1e-14)
    m._sweep_items(y)
    np.testing.assert_allclose(y, m._predicted_observed(), rtol=1e-12, atol=1e-14)


def test_converged_factors_solve_the_weighted_normal_equations():
    m = _model(_matrix(10, 8, seed=2), c0=6.0, factors=2, l2=0.1)
    for _ in range(300):
        m.train_epoch()
    r, w = _dense(m)
    p, q = m.params["user_factors"], m.params["item_factors"]
    eye = m.l2 * np.eye(m.factors)
    # P fixed: (Pᵀ W_i P + λI) q_i = Pᵀ W_i r_i for every item i (W_i = diag of column i).
    for i in range(m.n_items):
        a = p.T @ (w[:, i, None] * p) + eye
        np.testing.assert_allclose(q[i], np.linalg.solve(a, p.T @ (w[:, i] * r[:, i])), atol=1e-9)
    # Q fixed: the same for every user's row.
    for u in range(m.n_users):
        a = q.T @ (w[u, :, None] * q) + eye
        np.testing.assert_allclose(p[u], np.linalg.solve(a, q.T @ (w[u] * r[u])), atol=1e-9)
    assert np.abs(p).max() > 0.1  # not the trivial all-zero solution


def test_values_are_binarised():
    x = _matrix()
    ones = x.copy()
    ones.data[:] = 1.0
    a, b = _model(x), _model(ones)
    a.train_epoch(), b.train_epoch()
    np.testing.assert_array_equal(a.params["user_factors"], b.params["user_factors"])


@pytest.mark.parametrize("bad", [{"factors": 0}, {"factors": 2.5}, {"l2": -1.0}, {"c0": -1.0},
                                 {"omega": float("nan")}, {"w_observed": 0.0}, {"init_std": 0.0}])
def test_bad_settings_name_the_key(bad):
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=f"model.{key}"):
        EALS(**bad)

"""ALS-WR's solves against a dense normal-equation solution, and its objective never rising."""

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.alswr import ALSWR

SCALE = RatingScale(1.0, 5.0)


def _small_matrix() -> np.ndarray:
    """6 users × 5 items, some entries missing (0), user 5 has no rating."""
    rng = np.random.default_rng(1)
    dense = rng.integers(1, 6, size=(6, 5)).astype(float)
    dense[rng.random(dense.shape) < 0.4] = 0.0
    dense[0] = [5, 0, 3, 0, 1]
    dense[5] = 0.0
    return dense


def _dense_solution(ratings: np.ndarray, fixed: np.ndarray, lam: float, mu: float) -> np.ndarray:
    """Row by row: (F_rᵀF_r + λ n_r I) x = F_rᵀ(r_r − μ) over the row's observed entries."""
    k = fixed.shape[1]
    out = np.zeros((ratings.shape[0], k))
    for r, row in enumerate(ratings):
        seen = row != 0
        if seen.any():
            f = fixed[seen]
            out[r] = np.linalg.solve(f.T @ f + lam * seen.sum() * np.eye(k), f.T @ (row[seen] - mu))
    return out


@pytest.mark.parametrize("center", [False, True])
def test_user_and_item_updates_solve_the_weighted_lambda_normal_equations(center):
    dense = _small_matrix()
    m = ALSWR(factors=3, l2=0.3, center=center, seed=0)
    m.prepare(sp.csr_matrix(dense.astype(np.float32)), SCALE)
    mu = dense[dense != 0].mean() if center else 0.0
    assert float(m.params["global_bias"]) == pytest.approx(mu)
    q = m.params["item_factors"].copy()
    m._update_users()
    expected = _dense_solution(dense, q, 0.3, mu)
    np.testing.assert_allclose(m.params["user_factors"], expected, rtol=0, atol=1e-8)
    assert np.all(m.params["user_factors"][5] == 0.0)  # no ratings: zero factors
    p = m.params["user_factors"].copy()
    m._update_items()
    expected = _dense_solution(dense.T, p, 0.3, mu)
    np.testing.assert_allclose(m.params["item_factors"], expected, rtol=0, atol=1e-8)


def test_training_loss_is_the_weighted_lambda_objective_per_rating():
    dense = _small_matrix()
    m = ALSWR(factors=3, l2=0.3, seed=0)
    m.prepare(sp.csr_matrix(dense.astype(np.float32)), SCALE)
    P, Q = m.params["user_factors"], m.params["item_factors"]
    seen = dense != 0
    sq = np.sum(((dense - P @ Q.T) ** 2)[seen])
    reg = 0.3 * (seen.sum(1) @ np.sum(P**2, 1) + seen.sum(0) @ np.sum(Q**2, 1))
    assert m.training_loss() == pytest.approx((sq + reg) / seen.sum())


@pytest.mark.parametrize("center", [False, True])
def test_objective_never_increases_across_sweeps(center):
    rng = np.random.default_rng(0)
    dense = np.clip(np.rint(3 + rng.normal(size=(50, 4)) @ rng.normal(size=(4, 30))), 1, 5)
    dense[rng.random(dense.shape) < 0.6] = 0.0
    m = ALSWR(factors=5, l2=0.05, center=center, seed=0)
    m.prepare(sp.csr_matrix(dense.astype(np.float32)), SCALE)
    losses = [m.training_loss()] + [m.train_epoch() for _ in range(15)]
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.5 * losses[0]


def test_predictions_add_the_mean_when_centred():
    dense = _small_matrix()
    m = ALSWR(factors=2, center=True, seed=0)
    m.prepare(sp.csr_matrix(dense.astype(np.float32)), SCALE)
    m.train_epoch()
    p = m.params
    expected = dense[dense != 0].mean() + p["user_factors"][0] @ p["item_factors"][2]
    assert m.predict(np.array([0]), np.array([2]))[0] == pytest.approx(expected)


@pytest.mark.parametrize("bad", [{"factors": 0}, {"l2": 0.0}, {"init_std": -1.0}, {"center": "yes"}])
def test_bad_settings_name_the_key(bad):
    with pytest.raises(ConfigError, match=f"model.{next(iter(bad))}"):
        ALSWR(**bad)

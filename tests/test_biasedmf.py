"""BiasedMF's SGD step against a hand-computed one, its objective falling, and its scores
carrying μ + b_u + b_i."""

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.biasedmf import BiasedMF

SCALE = RatingScale(1.0, 5.0)


def _two_by_two(**kwargs) -> BiasedMF:
    """A fitted-shape model on R = [[5, 3], [4, 1]] (μ = 3.25) with known parameters."""
    model = BiasedMF(factors=2, **kwargs)
    model.prepare(sp.csr_matrix(np.array([[5.0, 3.0], [4.0, 1.0]], np.float32)), SCALE)
    model.params["user_factors"] = np.array([[0.1, 0.2], [-0.3, 0.4]])
    model.params["item_factors"] = np.array([[0.5, -0.1], [0.2, 0.3]])
    model.params["user_bias"] = np.array([0.1, -0.2])
    model.params["item_bias"] = np.array([0.3, -0.4])
    return model


def test_one_rating_step_is_the_hand_computed_gradient_step():
    m = _two_by_two(learning_rate=0.1, l2=0.05, l2_bias=0.02)
    # rating (u=0, i=1) = 3: prediction 3.25 + 0.1 − 0.4 + (0.1·0.2 + 0.2·0.3) = 3.03, e = −0.03
    e = 3.0 - (3.25 + 0.1 - 0.4 + 0.08)
    assert e == pytest.approx(-0.03)
    returned = m._sgd_step(np.array([0]), np.array([1]), np.array([3.0]))
    p = m.params
    assert p["user_bias"][0] == pytest.approx(0.1 + 0.1 * (e - 0.02 * 0.1))
    assert p["item_bias"][1] == pytest.approx(-0.4 + 0.1 * (e - 0.02 * -0.4))
    p_u, q_i = np.array([0.1, 0.2]), np.array([0.2, 0.3])
    np.testing.assert_allclose(p["user_factors"][0], p_u + 0.1 * (e * q_i - 0.05 * p_u))
    np.testing.assert_allclose(p["item_factors"][1], q_i + 0.1 * (e * p_u - 0.05 * q_i))
    # the other user and item are untouched
    np.testing.assert_array_equal(p["user_factors"][1], [-0.3, 0.4])
    np.testing.assert_array_equal(p["item_factors"][0], [0.5, -0.1])
    assert p["user_bias"][1] == -0.2 and p["item_bias"][0] == 0.3
    # the returned objective: e² + λ(‖p_u‖² + ‖q_i‖²) + λ_b(b_u² + b_i²) before the step
    assert returned == pytest.approx(e**2 + 0.05 * (0.05 + 0.13) + 0.02 * (0.01 + 0.16))


def test_full_batch_step_sums_each_ratings_step():
    """All four ratings in one batch: every parameter moves by the sum of its ratings'
    steps, each computed from the batch-start parameters (hand-computed, dense)."""
    lr, lam, lam_b = 0.1, 0.05, 0.02
    m = _two_by_two(learning_rate=lr, l2=lam, l2_bias=lam_b)
    P, Q = m.params["user_factors"].copy(), m.params["item_factors"].copy()
    bu, bi = m.params["user_bias"].copy(), m.params["item_bias"].copy()
    R = np.array([[5.0, 3.0], [4.0, 1.0]])
    E = R - (3.25 + bu[:, None] + bi[None, :] + P @ Q.T)  # errors of all four ratings
    m._sgd_step(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), R.ravel())
    # user u: Σ_i [e_ui q_i − λ p_u] = E[u] @ Q − 2λ p_u (each user has two ratings)
    np.testing.assert_allclose(m.params["user_factors"], P + lr * (E @ Q - 2 * lam * P), atol=1e-12)
    np.testing.assert_allclose(m.params["item_factors"], Q + lr * (E.T @ P - 2 * lam * Q), atol=1e-12)
    np.testing.assert_allclose(m.params["user_bias"], bu + lr * (E.sum(1) - 2 * lam_b * bu), atol=1e-12)
    np.testing.assert_allclose(m.params["item_bias"], bi + lr * (E.sum(0) - 2 * lam_b * bi), atol=1e-12)


def test_predictions_include_global_and_bias_terms():
    m = _two_by_two()
    p = m.params
    expected = 3.25 + p["user_bias"][1] + p["item_bias"][0] + p["user_factors"][1] @ p["item_factors"][0]
    assert float(p["global_bias"]) == pytest.approx(3.25)  # μ = mean training rating
    assert m.predict(np.array([1]), np.array([0]))[0] == pytest.approx(expected)
    # with zero factors the prediction is exactly μ + b_u + b_i
    p["user_factors"][:] = 0.0
    expected = 3.25 + p["user_bias"][:, None] + p["item_bias"][None, :]
    np.testing.assert_allclose(m.score_items(np.array([0, 1])), expected)


def test_training_loss_is_the_mean_regularised_squared_error():
    m = _two_by_two(l2=0.05, l2_bias=0.02)
    p = m.params
    R = np.array([[5.0, 3.0], [4.0, 1.0]])
    pred = 3.25 + p["user_bias"][:, None] + p["item_bias"][None, :] + p["user_factors"] @ p["item_factors"].T
    E = R - pred
    # every user and item has two ratings, each regularising it once
    reg = 2 * 0.05 * (np.sum(p["user_factors"] ** 2) + np.sum(p["item_factors"] ** 2))
    reg += 2 * 0.02 * (np.sum(p["user_bias"] ** 2) + np.sum(p["item_bias"] ** 2))
    assert m.training_loss() == pytest.approx((np.sum(E**2) + reg) / 4)


def test_objective_falls_on_a_low_rank_matrix():
    rng = np.random.default_rng(0)
    dense = 3.0 + rng.normal(size=(60, 3)) @ rng.normal(size=(3, 40)) * 0.5
    mask = rng.random(dense.shape) < 0.5
    train = sp.csr_matrix(np.where(mask, dense, 0.0).astype(np.float32))
    m = BiasedMF(factors=3, learning_rate=0.02, l2=0.01, batch_size=64, seed=0)
    m.prepare(train, SCALE)
    losses = [m.training_loss()] + [m.train_epoch() for _ in range(40)]
    assert losses[-1] < 0.3 * losses[0]
    assert all(b < a for a, b in zip(losses[1::5], losses[6::5]))
    assert m.training_loss() < 0.15  # the fit itself, not just the running mean


@pytest.mark.parametrize("bad", [{"factors": 0}, {"learning_rate": 0.0}, {"l2": -1.0}, {"batch_size": 2.5}])
def test_bad_settings_name_the_key(bad):
    with pytest.raises(ConfigError, match=f"model.{next(iter(bad))}"):
        BiasedMF(**bad)

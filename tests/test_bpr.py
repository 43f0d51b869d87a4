"""BPR (models/bpr.py): the analytic gradients match finite differences of the BPR loss, the
sampler never returns a positive, and training lowers the loss on a tiny dataset."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.models.bpr import BPR, triple_loss_and_grads
from ncae_exp.models.common.sampling import NegativeSampler


def _matrix(seed: int = 0, n_users: int = 30, n_items: int = 20) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.3) * rng.integers(1, 9, (n_users, n_items))
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 2
    return sp.csr_matrix(dense.astype(np.float32))


def test_gradients_match_central_differences():
    rng = np.random.default_rng(0)
    k, l2, eps = 4, 0.3, 1e-6
    args = [rng.normal(size=(1, k)), rng.normal(size=(1, k)), rng.normal(size=(1, k)),
            rng.normal(size=1), rng.normal(size=1)]
    analytic = triple_loss_and_grads(*args, l2)[1:]
    for which, grad in enumerate(analytic):
        numeric = np.zeros_like(args[which])
        for idx in np.ndindex(args[which].shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[which][idx] += eps
            minus[which][idx] -= eps
            numeric[idx] = (triple_loss_and_grads(*plus, l2)[0][0] - triple_loss_and_grads(*minus, l2)[0][0]) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_loss_is_minus_log_sigmoid_plus_penalty():
    w, hi, hj = np.array([[1.0, 2.0]]), np.array([[0.5, -1.0]]), np.array([[0.0, 1.0]])
    loss = triple_loss_and_grads(w, hi, hj, np.zeros(1), np.zeros(1), 0.1)[0][0]
    x = 1.0 * 0.5 + 2.0 * -2.0  # w·(hi − hj)
    penalty = 0.05 * (5.0 + 1.25 + 1.0)
    assert loss == pytest.approx(-np.log(1.0 / (1.0 + np.exp(-x))) + penalty, rel=1e-12)


def test_sampler_never_returns_a_positive():
    train = _matrix(seed=1)
    # one user with a single negative left: every draw for them must be that item
    dense = train.toarray()
    dense[0] = 1.0
    dense[0, 7] = 0.0
    train = sp.csr_matrix(dense)
    sampler = NegativeSampler(train)
    rng = np.random.default_rng(0)
    users = rng.integers(0, train.shape[0], 20000)
    users[:50] = 0
    negatives = sampler.sample(users, rng)
    assert not np.any(dense[users, negatives] > 0)
    assert np.all(negatives[users == 0] == 7)
    # every negative of a user is reachable (uniform over their non-interacted items)
    u = 3
    drawn = set(sampler.sample(np.full(3000, u), rng).tolist())
    assert drawn == set(np.flatnonzero(dense[u] == 0).tolist())


def test_loss_decreases_over_a_few_epochs():
    # two communities, each interacting with half of its own 10 items: learnable structure
    rng = np.random.default_rng(2)
    dense = np.zeros((30, 20), np.float32)
    for u in range(30):
        own = np.arange(10) + (0 if u < 15 else 10)
        dense[u, rng.choice(own, 5, replace=False)] = 1.0
    model = BPR(factors=8, learning_rate=0.1, l2=0.01, batch_size=16, seed=0)
    model.prepare(sp.csr_matrix(dense), None)
    losses = [model.training_loss()]
    for _ in range(10):
        model.train_epoch()
        losses.append(model.training_loss())
    assert losses[0] == pytest.approx(np.log(2.0), abs=0.05)  # small initial factors: x ≈ 0
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.5 * losses[0], losses


def test_settings_are_validated():
    for bad in ({"factors": 0}, {"learning_rate": 0.0}, {"l2": -1.0}, {"batch_size": 0},
                {"item_bias": "yes"}):
        with pytest.raises(ConfigError, match="model."):
            BPR(**bad)

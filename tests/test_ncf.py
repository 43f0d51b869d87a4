"""NCF / NeuMF (models/ncf.py) and its negative sampler (models/common/sampling.py):
answers known in advance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from scipy.stats import chisquare

from ncae_exp.errors import ConfigError
from ncae_exp.models.common.sampling import NegativeSampler, sample_negatives
from ncae_exp.models.ncf import NAMES, NCF


def _dense_positives(seed: int = 0) -> sp.csr_matrix:
    """40 users × 25 items, ~80 % of entries positive; every user keeps >= 1 negative."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((40, 25)) < 0.8).astype(np.float32)
    dense[:, 0] = 0.0  # item 0 is nobody's positive
    dense[3] = 1.0
    dense[3, 7] = 0.0  # user 3's only negative is item 7
    return sp.csr_matrix(dense)


def test_sampler_never_returns_a_positive():
    positives = _dense_positives()
    sampler = NegativeSampler(positives)
    users = np.repeat(np.arange(40), 2_500)  # 100,000 draws
    items = sampler.sample(users, np.random.default_rng(1))
    dense = positives.toarray()
    assert np.all(dense[users, items] == 0)
    assert np.all(items[users == 3] == 7)


def test_sampler_ignores_stored_zeros():
    # an explicit 0 in the CSR data is not an interaction, so it can be drawn
    m = sp.csr_matrix((np.array([1.0, 0.0], np.float32), (np.array([0, 0]), np.array([0, 1]))), shape=(1, 2))
    items = NegativeSampler(m).sample(np.zeros(50, np.int64), np.random.default_rng(0))
    assert np.all(items == 1)


def test_sampler_draws_uniformly_over_the_users_negatives():
    positives = _dense_positives()
    dense = positives.toarray()
    user = int(np.argmax((dense == 0).sum(1) >= 6))  # a user with several negatives
    negatives = np.flatnonzero(dense[user] == 0)
    draws = NegativeSampler(positives).sample(np.full(60_000, user), np.random.default_rng(2))
    counts = np.array([(draws == j).sum() for j in negatives])
    assert counts.sum() == len(draws)
    # Uniform: every negative near 60000/len; chi-square goodness of fit does not reject.
    assert chisquare(counts).pvalue > 1e-3, counts
    np.testing.assert_allclose(counts / len(draws), 1.0 / len(negatives), rtol=0.05)


def test_sampler_is_deterministic_per_seed():
    positives = _dense_positives()
    users = np.arange(40).repeat(50)
    a = NegativeSampler(positives).sample(users, np.random.default_rng(7))
    b = sample_negatives(positives, users, np.random.default_rng(7))
    c = sample_negatives(positives, users, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sampler_refuses_a_user_without_negatives():
    full = sp.csr_matrix(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="every item"):
        NegativeSampler(full).sample(np.array([1]), np.random.default_rng(0))


# -- the model ------------------------------------------------------------------------------
def _tiny_train() -> sp.csr_matrix:
    """Two blocks of users, each interacting with its own half of 20 items."""
    rng = np.random.default_rng(0)
    dense = np.zeros((30, 20), np.float32)
    dense[:15, :10] = rng.random((15, 10)) < 0.6
    dense[15:, 10:] = rng.random((15, 10)) < 0.6
    dense[:, [0]] = 0
    dense[:15, 0] = 1
    return sp.csr_matrix(dense)


def _model(**kw) -> NCF:
    settings = {"factors": 8, "negatives": 4, "learning_rate": 0.01, "batch_size": 32, "seed": 0, **kw}
    m = NCF(**settings)
    m.prepare(_tiny_train(), None)
    return m


def test_training_loss_decreases():
    m = _model()
    start = m.training_loss()
    assert start == pytest.approx(np.log(2.0), abs=0.01)  # logits ≈ 0 at the start
    losses = [m.train_epoch() for _ in range(15)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]
    assert m.training_loss() < 0.6 * start


def test_one_epoch_has_every_positive_and_the_negatives():
    m = _model(negatives=3)
    users, items, labels = m._examples(np.random.default_rng(0))
    train = _tiny_train()
    assert labels.sum() == train.nnz
    assert len(labels) == 4 * train.nnz
    dense = train.toarray()
    np.testing.assert_array_equal(dense[users, items], labels)  # label 1 exactly on positives


def _hand_forward(state: dict[str, np.ndarray], u: int, i: int) -> float:
    """NeuMF as in He et al. 2017 Eq. 11-12, in float64, with the 2K-wide concatenation."""
    s = {k: v.astype(np.float64) for k, v in state.items()}
    gmf = s["gmf_user"][u] * s["gmf_item"][i]
    z = np.concatenate([s["mlp_user"][u], s["mlp_item"][i]])
    h1 = np.maximum(z @ s["mlp_kernel_1"] + s["mlp_bias_1"], 0.0)
    h2 = np.maximum(h1 @ s["mlp_kernel_2"] + s["mlp_bias_2"], 0.0)
    return float(expit(np.concatenate([gmf, h2]) @ s["out_kernel"] + s["out_bias"]))


def test_output_equals_a_hand_computation_from_the_weights():
    m = _model()
    # Weights large enough that every part matters and some ReLUs are off.
    rng = np.random.default_rng(5)
    state = {k: rng.normal(0.0, 0.5, v.shape).astype(np.float32) for k, v in m.get_state().items()}
    m.set_state(state)
    assert state["mlp_kernel_1"].shape == (16, 8) and state["mlp_kernel_2"].shape == (8, 4)
    assert state["out_kernel"].shape == (12,)
    users, items = np.array([0, 4, 17, 29]), np.array([3, 0, 12, 19])
    expected = np.array([_hand_forward(state, u, i) for u, i in zip(users, items)])
    np.testing.assert_allclose(m.predict(users, items), expected, rtol=1e-5)
    np.testing.assert_allclose(m.score_items(users)[np.arange(4), items], expected, rtol=1e-5)
    # both ReLU regimes occur in this check
    z = np.concatenate([state["mlp_user"][users], state["mlp_item"][items]], 1)
    pre = z @ state["mlp_kernel_1"] + state["mlp_bias_1"]
    assert (pre > 0).any() and (pre < 0).any()


def test_l2_penalty_is_the_stated_one():
    m0, m1 = _model(l2=0.0), _model(l2=0.3)
    users, items, labels = m0._examples(np.random.default_rng(0))
    users, items, labels = users[:20], items[:20], labels[:20]
    s = m1.get_state()
    rows = (np.sum(s["gmf_user"][users] ** 2, 1) + np.sum(s["gmf_item"][items] ** 2, 1)
            + np.sum(s["mlp_user"][users] ** 2, 1) + np.sum(s["mlp_item"][items] ** 2, 1))
    dense = sum(np.sum(s[k] ** 2) for k in ("mlp_kernel_1", "mlp_kernel_2", "out_kernel"))
    gap = float(m1.objective(users, items, labels)) - float(m0.objective(users, items, labels))
    assert gap == pytest.approx(0.5 * 0.3 * (rows.mean() + dense), rel=1e-4)


def test_state_names_and_bad_settings():
    assert set(_model().get_state()) == set(NAMES)
    for bad in ({"factors": 1}, {"negatives": 0}, {"learning_rate": 0.0}, {"l2": -1.0}, {"batch_size": 2.5}):
        with pytest.raises(ConfigError, match="model."):
            NCF(**bad)

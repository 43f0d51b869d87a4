"""Eq. 5/6 on hand-computed cases, and the sparse implementation against a dense one."""

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from ncae_exp.data.interactions import RatingScale
from ncae_exp.models.ncae.batches import dropout_mask, epoch_batches, make_batch
from ncae_exp.models.ncae.dense_reference import dense_arrays, dense_objective
from ncae_exp.models.ncae.losses import eq5_loss, eq6_objective
from ncae_exp.models.ncae import NCAE, ExplicitFeedback


def test_eq5_hand_computed_alpha_ne_beta():
    # Row 0: targets 4,2,5 predicted 3.5,2.5,4; entry 0 dropped.
    # Row 1: targets 1,3 predicted 2,3; entry 1 dropped.
    pred = [3.5, 2.5, 4.0, 2.0, 3.0]
    target = [4.0, 2.0, 5.0, 1.0, 3.0]
    dropped = [True, False, False, False, True]
    rows = [0, 0, 0, 1, 1]
    per_row = eq5_loss(pred, target, dropped, rows, 2, alpha=2.0, beta=0.5).numpy()
    # α/|K|·0.25 + β/|K|·(0.25 + 1) with |K| = 3  → (0.5 + 0.625)/3
    assert per_row[0] == pytest.approx((2.0 * 0.25 + 0.5 * 0.25 + 0.5 * 1.0) / 3)
    # β/|K|·1 + α/|K|·0 with |K| = 2
    assert per_row[1] == pytest.approx(0.5 * 1.0 / 2)
    w = tf.constant([[1.0, -2.0]])
    total = eq6_objective(per_row, [w], lam=0.1).numpy()
    assert total == pytest.approx((0.375 + 0.25) / 2 + 0.05 * 5.0)


def test_eq5_swapping_alpha_beta_changes_only_weighting():
    pred, target, rows = [1.0, 1.0], [2.0, 4.0], [0, 0]
    a = eq5_loss(pred, target, [True, False], rows, 1, alpha=1.0, beta=0.0).numpy()[0]
    b = eq5_loss(pred, target, [True, False], rows, 1, alpha=0.0, beta=1.0).numpy()[0]
    assert a == pytest.approx(1.0 / 2) and b == pytest.approx(9.0 / 2)


def _tiny_model(based="user", hidden=(1,), l2=0.0, alpha=1.0, beta=1.0, q=0.5):
    r = sp.csr_matrix(np.array([[4.0, 0.0, 2.0], [0.0, 5.0, 1.0]], np.float32))
    m = NCAE(ExplicitFeedback(alpha, beta), hidden=list(hidden), based=based, dropout=q, l2=l2, batch_size=2, seed=0)
    m.prepare(r, RatingScale(1.0, 5.0))
    return m, r


def test_full_objective_hand_computed_with_given_mask():
    """One hidden unit, hand-set weights, a fixed mask: the model's Eq. 6 equals the formula."""
    m, r = _tiny_model(alpha=2.0, beta=0.5, l2=0.01)
    net = m.network
    w1 = np.array([[0.1], [-0.2], [0.3]], np.float32)  # D × K
    b1 = np.array([0.05], np.float32)
    wl = np.array([[0.5], [-1.0], [2.0]], np.float32)  # D × K (output-major)
    bl = np.array([0.1, 0.0, -0.1], np.float32)
    net.encoder.kernel.assign(w1), net.encoder.bias.assign(b1)
    net.output_layer.kernel.assign(wl), net.output_layer.bias.assign(bl)
    # user 0 has (0: 4.0) dropped and (2: 2.0) kept; user 1 has (1: 5.0) kept and (2: 1.0) dropped
    mask = np.array([True, False, False, True])
    batch = make_batch(m.x, np.array([0, 1]), mask, q=0.5)
    loss = float(m.batch_loss(batch))

    def out(z, j):
        return 3.0 + 2.0 * np.tanh(z * wl[j, 0] + bl[j])

    z0 = np.tanh(2.0 * 2.0 * w1[2, 0] + b1[0])  # kept 2.0 scaled by 1/(1-q) = 2
    z1 = np.tanh(5.0 * 2.0 * w1[1, 0] + b1[0])
    l0 = (2.0 * (out(z0, 0) - 4.0) ** 2 + 0.5 * (out(z0, 2) - 2.0) ** 2) / 2
    l1 = (0.5 * (out(z1, 1) - 5.0) ** 2 + 2.0 * (out(z1, 2) - 1.0) ** 2) / 2
    reg = 0.5 * 0.01 * sum(float(np.sum(a**2)) for a in (w1, b1, wl, bl))
    assert loss == pytest.approx((l0 + l1) / 2 + reg, rel=1e-5)


@pytest.mark.parametrize("based,hidden", [("user", [7]), ("item", [6, 5]), ("user", [4, 3, 5])])
def test_sparse_gradients_equal_dense_masked_gradients(based, hidden):
    rng = np.random.default_rng(3)
    dense = np.where(rng.random((12, 9)) < 0.35, rng.integers(1, 6, (12, 9)), 0).astype(np.float32)
    dense[0, :] = 0  # an empty row: must be skipped, not divided by zero
    dense[:, 4] = 0  # an output column nobody has observed
    r = sp.csr_matrix(dense)
    m = NCAE(ExplicitFeedback(1.7, 0.6), hidden=hidden, based=based, dropout=0.5, l2=0.003, batch_size=64, seed=1)
    m.prepare(r, RatingScale(1.0, 5.0))
    batch = next(epoch_batches(m.x, 64, 0.5, np.random.default_rng(5)))
    variables = m.network.trainable_variables

    with tf.GradientTape() as tape:
        sparse_loss = m.objective(batch)
    sparse_grads = [tf.convert_to_tensor(g) for g in tape.gradient(sparse_loss, variables)]

    x, target, weight = dense_arrays(batch, m.x.shape[1], 1.7, 0.6)
    with tf.GradientTape() as tape:
        dense_loss = dense_objective(m.network, tf.constant(x), tf.constant(target), tf.constant(weight), 0.003)
    dense_grads = tape.gradient(dense_loss, variables)

    assert float(sparse_loss) == pytest.approx(float(dense_loss), rel=1e-5)
    for v, gs, gd in zip(variables, sparse_grads, dense_grads):
        np.testing.assert_allclose(gs.numpy(), gd.numpy(), rtol=1e-4, atol=1e-6, err_msg=v.path)


def test_unobserved_outputs_get_no_gradient():
    rng = np.random.default_rng(0)
    dense = np.where(rng.random((10, 8)) < 0.4, rng.integers(1, 6, (10, 8)), 0).astype(np.float32)
    dense[:, [2, 6]] = 0
    m = NCAE(hidden=[5], based="user", dropout=0.5, l2=0.0, batch_size=64, seed=0)
    m.prepare(sp.csr_matrix(dense), RatingScale(1.0, 5.0))
    batch = next(epoch_batches(m.x, 64, 0.5, np.random.default_rng(1)))
    out = m.network.output_layer
    with tf.GradientTape() as tape:
        loss = m.objective(batch)
    g_kernel, g_bias = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, [out.kernel, out.bias])]
    assert np.all(g_kernel[[2, 6]] == 0) and np.all(g_bias[[2, 6]] == 0)
    assert np.any(g_kernel[[0, 1, 3]] != 0)
    # The dense path with an all-ones weight (errors on unobserved outputs kept) would differ.
    x, target, weight = dense_arrays(batch, 8, 1.0, 1.0)
    with tf.GradientTape() as tape:
        loss_all = dense_objective(m.network, tf.constant(x), tf.constant(target), tf.ones_like(weight), 0.0)
    assert np.any(tape.gradient(loss_all, out.bias).numpy()[[2, 6]] != 0)


def test_dropout_only_observed_entries_scaled_and_fresh_each_epoch():
    rng = np.random.default_rng(0)
    dense = np.where(rng.random((50, 40)) < 0.3, rng.integers(1, 6, (50, 40)), 0).astype(np.float32)
    x = sp.csr_matrix(dense)
    batches = list(epoch_batches(x, 128, 0.5, np.random.default_rng(1)))
    (b,) = batches
    # every input entry is an observed one, scaled by 1/(1-q) = 2
    kept_targets = b.t_values[~b.t_dropped]
    np.testing.assert_allclose(np.sort(b.in_values), np.sort(kept_targets * 2.0))
    assert len(b.t_values) == x.nnz
    assert 0.4 < b.t_dropped.mean() < 0.6
    m1 = dropout_mask(x.nnz, 0.5, np.random.default_rng(7))
    gen = np.random.default_rng(7)
    first, second = dropout_mask(x.nnz, 0.5, gen), dropout_mask(x.nnz, 0.5, gen)
    assert np.array_equal(first, m1) and not np.array_equal(first, second)
    assert not dropout_mask(x.nnz, 0.0, gen).any()

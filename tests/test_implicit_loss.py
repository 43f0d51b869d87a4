"""Eq. 11: hand-computed values, and the Gram path against the dense path."""

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from ncae_exp.errors import ConfigError
from ncae_exp.models.ncae import NCAE, ImplicitFeedback
from ncae_exp.models.ncae.batches import epoch_batches, sparse_input
from ncae_exp.models.ncae.losses import eq11_dense, eq11_full, eq11_gram


def test_eq11_dense_hand_computed():
    out = tf.constant([[0.5, 0.2, -0.1], [1.2, 0.0, 0.3]])
    observed = tf.constant([[1, 0, 0], [1, 0, 1]])
    c = tf.constant([2.0, 10.0, 4.0])
    per_row = eq11_dense(out, observed, c).numpy()
    # row 0: (0.5-1)^2 + 10*0.2^2 + 4*0.1^2 ; row 1: (1.2-1)^2 + 10*0 + (0.3-1)^2
    assert per_row[0] == pytest.approx(0.25 + 0.4 + 0.04)
    assert per_row[1] == pytest.approx(0.04 + 0.49)


def test_eq11_full_equals_the_masked_formula_with_its_gradient():
    """The fast full-output form (ŷ² · c plus the observed correction) is Eq. 11's masked sum."""
    rng = np.random.default_rng(4)
    out = tf.Variable(np.tanh(rng.normal(size=(4, 9))).astype(np.float32))
    rows = tf.constant([0, 0, 1, 3, 3, 3], tf.int32)  # row 2 has nothing observed
    cols = tf.constant([2, 8, 0, 1, 5, 8], tf.int32)
    c = tf.constant(rng.uniform(0, 5, size=9), tf.float32)
    observed = tf.scatter_nd(tf.stack([rows, cols], axis=1), tf.ones(6), [4, 9])
    with tf.GradientTape(persistent=True) as tape:
        fast = eq11_full(out, rows, cols, c)
        plain = eq11_dense(out, observed, c)
        weights = tf.constant([1.0, 2.0, 3.0, 4.0])
        fast_sum, plain_sum = tf.reduce_sum(fast * weights), tf.reduce_sum(plain * weights)
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(fast_sum, out).numpy(), tape.gradient(plain_sum, out).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_eq11_gram_equals_dense_on_a_hand_set_linear_layer():
    rng = np.random.default_rng(0)
    h = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    kernel = tf.constant(rng.normal(size=(6, 4)), tf.float32)
    bias = tf.constant(rng.normal(size=6), tf.float32)
    c = tf.constant(rng.uniform(0, 3, size=6), tf.float32)
    rows = tf.constant([0, 0, 1, 2, 2, 2])
    cols = tf.constant([1, 4, 0, 2, 3, 5])
    full = tf.matmul(h, kernel, transpose_b=True) + bias
    obs_pred = tf.gather_nd(full, tf.stack([rows, cols], axis=1))
    observed = tf.scatter_nd(tf.stack([rows, cols], axis=1), tf.ones(6), [3, 6])
    np.testing.assert_allclose(
        eq11_gram(h, kernel, bias, c, rows, cols, obs_pred).numpy(), eq11_dense(full, observed, c).numpy(), rtol=1e-5
    )


@pytest.mark.parametrize("hidden", [[8], [7, 5]])
def test_gram_path_equals_dense_path_loss_and_gradients(hidden):
    rng = np.random.default_rng(1)
    dense = (rng.random((40, 30)) < 0.15).astype(np.float32)
    dense[:, 7] = 0  # an item nobody interacted with: c = 0 there
    feedback = ImplicitFeedback(output="linear", augment_p=1.0)
    m = NCAE(feedback, hidden=hidden, based="user", dropout=0.5, l2=0.01, batch_size=64, seed=2)
    m.prepare(sp.csr_matrix(dense), None)
    batch = next(epoch_batches(m.x_fit, 64, 0.5, np.random.default_rng(3)))
    variables = m.network.trainable_variables
    results = {}
    for path in ("gram", "dense"):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(feedback.eq11_per_row(m.network, sparse_input(batch, m.dim), batch, path))
        results[path] = (float(loss), [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, variables)])
    assert results["gram"][0] == pytest.approx(results["dense"][0], rel=1e-4)
    for v, g_gram, g_dense in zip(variables, results["gram"][1], results["dense"][1]):
        np.testing.assert_allclose(g_gram, g_dense, rtol=2e-3, atol=2e-5, err_msg=v.path)


def test_implicit_model_trains_and_ranks_observed_items_up():
    rng = np.random.default_rng(0)
    # two communities of users and items: a model that learns must score in-community items higher
    dense = np.zeros((60, 40), np.float32)
    dense[:30, :20] = rng.random((30, 20)) < 0.5
    dense[30:, 20:] = rng.random((30, 20)) < 0.5
    m = NCAE(ImplicitFeedback(c0=8.0, augment_p=1.0), hidden=[8], based="user", dropout=0.5, l2=0.001,
             learning_rate=0.01, batch_size=16, seed=0)
    m.prepare(sp.csr_matrix(dense), None)
    first = m.train_epoch()
    for _ in range(30):
        last = m.train_epoch()
    assert last < first
    scores = m.score_items(np.arange(60))
    assert scores[:30, :20].mean() > scores[:30, 20:].mean() + 0.1
    assert scores[30:, 20:].mean() > scores[30:, :20].mean() + 0.1


def test_implicit_settings_are_validated():
    with pytest.raises(ConfigError, match="gram"):
        ImplicitFeedback(output="tanh", loss_path="gram")
    with pytest.raises(ConfigError, match="augment_p"):
        ImplicitFeedback(augment_p=0.0)
    with pytest.raises(ConfigError, match="based=user"):
        NCAE(ImplicitFeedback(), hidden=[4], based="item").prepare(sp.csr_matrix(np.eye(3, dtype=np.float32)), None)

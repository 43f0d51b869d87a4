"""The fast training step is the same step: sparse kernels (both paths) against dense
arithmetic, the fused Adam against Keras' Adam with the penalty in the loss, and a whole NCAE
step against the plain formulation it replaced."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from ncae_exp.models.common.fused_adam import FusedAdam
from ncae_exp.models.ncae import sparse_ops
from ncae_exp.models.ncae.losses import l2_penalty


def _sparse(rng, n_rows=5, n_cols=40, density=0.2):
    x = sp.random(n_rows, n_cols, density=density, random_state=np.random.RandomState(1), dtype=np.float32).tocoo()
    order = rng.permutation(x.nnz)  # unsorted entries: neither path may rely on order
    idx = np.stack([x.row[order], x.col[order]], 1).astype(np.int64)
    return x.toarray(), idx, x.data[order].astype(np.float32)


@pytest.mark.parametrize("path", sparse_ops.PATHS)
def test_sparse_matmul_and_its_gradient_equal_dense_arithmetic(path):
    rng = np.random.default_rng(0)
    dense_x, idx, vals = _sparse(rng)
    w = tf.Variable(rng.normal(size=(40, 6)).astype(np.float32))
    up = rng.normal(size=(5, 6)).astype(np.float32)
    with tf.GradientTape() as tape:
        out = sparse_ops.sparse_matmul(tf.constant(idx), tf.constant(vals), tf.constant(5, tf.int64), w, path)
        loss = tf.reduce_sum(out * up)
    grad = tape.gradient(loss, w)
    assert isinstance(grad, tf.IndexedSlices)  # only touched rows, never a dense 40 × 6
    np.testing.assert_allclose(out.numpy(), dense_x @ w.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf.convert_to_tensor(grad).numpy(), dense_x.T @ up, rtol=1e-5, atol=1e-6)
    untouched = np.flatnonzero(dense_x.sum(0) == 0)
    assert len(untouched) and not np.isin(untouched, grad.indices.numpy()).any()


@pytest.mark.parametrize("path", sparse_ops.PATHS)
def test_sampled_outputs_and_gradients_equal_dense_arithmetic(path):
    rng = np.random.default_rng(1)
    h = tf.Variable(rng.normal(size=(5, 6)).astype(np.float32))
    kernel = tf.Variable(rng.normal(size=(40, 6)).astype(np.float32))
    rows = np.array([0, 0, 3, 4, 4, 2, 1], np.int32)
    cols = np.array([7, 3, 7, 39, 0, 12, 3], np.int32)
    g = rng.normal(size=len(rows)).astype(np.float32)
    with tf.GradientTape() as tape:
        out = sparse_ops.sampled_outputs(h, kernel, tf.constant(rows), tf.constant(cols), path)
        loss = tf.reduce_sum(out * g)
    dh, dk = tape.gradient(loss, [h, kernel])
    full = h.numpy() @ kernel.numpy().T
    np.testing.assert_allclose(out.numpy(), full[rows, cols], rtol=1e-5, atol=1e-6)
    coeff = np.zeros((5, 40), np.float32)
    np.add.at(coeff, (rows, cols), g)
    np.testing.assert_allclose(tf.convert_to_tensor(dh).numpy(), coeff @ kernel.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf.convert_to_tensor(dk).numpy(), coeff.T @ h.numpy(), rtol=1e-5, atol=1e-6)


def test_the_cheaper_path_follows_the_batch_shape():
    """Blocks while a batch's rows share their columns (B·U ≤ c·nnz), entries otherwise."""
    dense_rows = sp.csr_matrix(np.ones((64, 30), np.float32))  # 64 rows × the same 30 columns: 1 cell/entry
    assert sparse_ops.choose_path(dense_rows, 16, 48) == "blocks"
    # 200 rows with 2 columns each, all different: U = 2·B, B·U/nnz = B
    spread = sp.csr_matrix((np.ones(400, np.float32), np.arange(400), np.arange(0, 401, 2)), shape=(200, 400))
    assert sparse_ops.choose_path(spread, 40, 48) == "blocks"  # 40 cells per entry
    assert sparse_ops.choose_path(spread, 60, 48) == "entries"  # 60 cells per entry
    assert sparse_ops.choose_path(spread, 60, 150) == "blocks"
    assert sparse_ops.choose_path(sp.csr_matrix((5, 7), dtype=np.float32), 4, 48) == "blocks"  # nothing observed


@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_fused_adam_equals_keras_adam_with_the_penalty_in_the_loss(l2):
    rng = np.random.default_rng(3)
    init = [rng.normal(size=(30, 4)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
    x = tf.constant(rng.normal(size=(8, 30)).astype(np.float32))
    rows = tf.constant([1, 5, 5, 29, 0, 7], tf.int32)

    def data_loss(w, b):
        # a gather makes w's gradient sparse (IndexedSlices), b's is dense
        return tf.reduce_sum(tf.square(tf.gather(w, rows) @ tf.ones((4, 1)))) + tf.reduce_sum(tf.tanh(x @ w + b))

    def run(fused: bool):
        w, b = keras.Variable(init[0]), keras.Variable(init[1])
        opt = keras.optimizers.Adam(learning_rate=0.01)
        opt.build([w, b])
        adam = FusedAdam(opt, [w, b], l2)
        for _ in range(4):
            with tf.GradientTape() as tape:
                loss = data_loss(w, b) + (0.0 if fused else l2_penalty([w, b], l2))
            grads = tape.gradient(loss, [w.value, b.value])
            if fused:
                adam.apply(grads)
            else:
                opt.apply_gradients(zip(grads, [w, b]))
        return [w.numpy(), b.numpy()], [v.numpy() for v in opt.variables]

    (w_f, b_f), state_f = run(True)
    (w_k, b_k), state_k = run(False)
    # Float rounding only: each step moves a weight by ≈ lr = 0.01, so a wrong bias
    # correction, ε or λ would differ by ~1e-3; summation order differs by ~1e-6.
    np.testing.assert_allclose(w_f, w_k, atol=1e-5)
    np.testing.assert_allclose(b_f, b_k, atol=1e-5)
    assert np.abs(w_f - init[0]).max() > 0.02  # it did move
    assert len(state_f) == len(state_k)
    for a, b in zip(state_f, state_k):  # step count, moments: a checkpoint cannot tell them apart
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_fused_adam_refuses_what_it_does_not_do():
    w = keras.Variable(np.zeros((2, 2), np.float32))
    opt = keras.optimizers.Adam(amsgrad=True)
    opt.build([w])
    with pytest.raises(ValueError, match="AMSGrad"):
        FusedAdam(opt, [w], 0.0)


@pytest.mark.parametrize("path", sparse_ops.PATHS)
@pytest.mark.parametrize("based,hidden", [("item", [16]), ("user", [12, 8])])
def test_ncae_fast_step_takes_the_step_the_plain_formulation_takes(based, hidden, path):
    """Three steps of the model's fast step (touched-column blocks, fused Adam, λW folded)
    against the dense masked reference with Keras' Adam and λ/2‖W‖² in the loss — the
    formulation NCAE trained with before — from the same start on the same batches."""
    from ncae_exp.data.interactions import RatingScale
    from ncae_exp.data.synthetic import generate_synthetic
    from ncae_exp.models.ncae import NCAE, ExplicitFeedback
    from ncae_exp.models.ncae.dense_reference import dense_train_step

    data = generate_synthetic(60, 40, 700, seed=4)

    def prepared():
        m = NCAE(ExplicitFeedback(), hidden=hidden, based=based, l2=0.05, learning_rate=0.01, batch_size=16, seed=3)
        m.prepare(data.matrix, RatingScale(1.0, 5.0))
        return m

    fast, plain = prepared(), prepared()
    fast.train_path = path
    batches = list(fast.epoch_batches())[:3]
    reference = dense_train_step(plain, "keras")
    for batch in batches:
        np.testing.assert_allclose(float(fast.train_step(batch)), float(reference(batch)), rtol=1e-5)
    changed = 0.0
    for a, b, v0 in zip(fast.network.trainable_variables, plain.network.trainable_variables,
                        prepared().network.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-5)
        changed = max(changed, float(np.abs(a.numpy() - v0.numpy()).max()))
    assert changed > 0.01  # three steps of lr 0.01 moved the weights
    assert int(fast.optimizer.iterations.numpy()) == int(plain.optimizer.iterations.numpy()) == 3


# Graph plumbing that TensorFlow places by itself (shape arithmetic, feeds), not compute.
_PLUMBING = {"NoOp", "Placeholder", "BroadcastGradientArgs"}


@pytest.mark.parametrize("feedback,based", [("explicit", "item"), ("implicit", "user"), ("implicit-linear", "user")])
def test_every_op_of_the_training_step_has_a_gpu_kernel(feedback, based):
    """A user's GPU runs the same step: no op in it is CPU-only (this machine has no GPU,
    so the check reads TensorFlow's kernel registry instead of running one)."""
    from tensorflow.python.framework import kernels

    from ncae_exp.data.interactions import RatingScale
    from ncae_exp.data.synthetic import generate_synthetic
    from ncae_exp.models.ncae import NCAE, ExplicitFeedback, ImplicitFeedback
    from ncae_exp.models.ncae.batches import BATCH_SPEC

    fb = {"explicit": ExplicitFeedback(), "implicit": ImplicitFeedback(),
          "implicit-linear": ImplicitFeedback(output="linear")}[feedback]
    m = NCAE(fb, hidden=[8, 8], based=based, batch_size=16, seed=0)
    m.prepare(generate_synthetic(60, 40, 700, seed=4).matrix, RatingScale(1.0, 5.0))
    graph = m._train_step.get_concrete_function(BATCH_SPEC).graph
    types = {op.type for op in graph.get_operations()}
    for fn in graph.as_graph_def().library.function:
        types |= {node.op for node in fn.node_def}
    assert "ResourceApplyAdam" in types and "Unique" in types
    cpu_only = sorted(
        t for t in types - _PLUMBING
        if not {"GPU", "DEFAULT"} & {k.device_type for k in kernels.get_registered_kernels_for_op(t).kernel}
    )
    assert not cpu_only

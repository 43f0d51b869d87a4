"""Mult-VAE^PR (models/multvae.py): its objective against a numpy computation from the
weights, the closed-form Gaussian KL, the β annealing schedule, and that training lowers
the loss."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.models.multvae import MultVAE, anneal_beta, gaussian_kl
from ncae_exp.models.ncae.batches import make_batch

TINY = dict(hidden=5, latent=3, batch_size=4, learning_rate=0.01)


def _counts() -> sp.csr_matrix:
    """6 users × 7 items of play counts (a count > 1 must still count once)."""
    dense = np.array(
        [
            [3, 0, 1, 0, 0, 0, 2],
            [0, 1, 0, 0, 5, 0, 0],
            [1, 1, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 4, 0],
            [2, 0, 0, 7, 0, 1, 1],
            [0, 9, 0, 0, 1, 0, 0],
        ],
        np.float32,
    )
    return sp.csr_matrix(dense)


def _random_state(model: MultVAE, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0.0, 0.5, v.shape).astype(np.float32) for k, v in model.get_state().items()}


def _numpy_loss(state, counts: np.ndarray, latent: int, beta: float, l2: float) -> float:
    """−Σ_i x_ui log softmax_i + β·KL per user, averaged, + l2·Σ‖W‖², with z = μ."""
    x = (counts > 0).astype(np.float64)
    inp = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = {k: v.astype(np.float64) for k, v in state.items()}
    h = np.tanh(inp @ s["encoder_hidden/kernel"] + s["encoder_hidden/bias"])
    out = h @ s["encoder_out/kernel"] + s["encoder_out/bias"]
    mu, logvar = out[:, :latent], out[:, latent:]
    logits = np.tanh(mu @ s["decoder_hidden/kernel"] + s["decoder_hidden/bias"]) @ s["decoder_out/kernel"]
    logits = logits + s["decoder_out/bias"]
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -(x * log_softmax).sum(axis=1)
    kl = 0.5 * (np.exp(logvar) + mu**2 - 1.0 - logvar).sum(axis=1)
    penalty = l2 * sum(np.sum(s[f"{n}/kernel"] ** 2) for n in ("encoder_hidden", "encoder_out", "decoder_hidden", "decoder_out"))
    return float(nll.mean() + beta * kl.mean() + penalty)


@pytest.mark.parametrize("beta,l2", [(0.0, 0.0), (0.2, 0.0), (0.7, 0.01)])
def test_batch_loss_equals_a_numpy_computation(beta, l2):
    counts = _counts()
    m = MultVAE(**TINY, l2=l2, seed=0)
    m.prepare(counts, None)
    state = _random_state(m)
    m.set_state(state)
    rows = np.arange(counts.shape[0])
    batch = make_batch(m.x, rows, None, 0.0)  # dropout off
    seed = np.array([1, 2], np.int64)
    got = float(m.objective(batch, np.float32(beta), seed, np.float32(0.0)))  # ε scaled to 0: z = μ
    want = _numpy_loss(state, counts.toarray(), 3, beta, l2)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # the compiled step computes the same value
    np.testing.assert_allclose(float(m._loss_step(batch, np.float32(beta), seed, np.float32(0.0))), want, rtol=1e-5)
    # and with ε drawn, the loss moves (z is sampled in training)
    assert float(m.objective(batch, np.float32(beta), seed, np.float32(1.0))) != pytest.approx(want, rel=1e-6)


def test_scores_are_the_decoder_logits_of_mu():
    counts = _counts()
    m = MultVAE(**TINY, seed=0)
    m.prepare(counts, None)
    state = _random_state(m)
    m.set_state(state)
    s = {k: v.astype(np.float64) for k, v in state.items()}
    x = (counts.toarray() > 0).astype(np.float64)
    inp = x / np.linalg.norm(x, axis=1, keepdims=True)
    mu = (np.tanh(inp @ s["encoder_hidden/kernel"] + s["encoder_hidden/bias"]) @ s["encoder_out/kernel"]
          + s["encoder_out/bias"])[:, :3]
    logits = np.tanh(mu @ s["decoder_hidden/kernel"] + s["decoder_hidden/bias"]) @ s["decoder_out/kernel"]
    logits += s["decoder_out/bias"]
    np.testing.assert_allclose(m.score_items(np.arange(6)), logits, rtol=1e-5, atol=1e-5)
    users, items = np.array([4, 0, 4, 2]), np.array([6, 1, 0, 3])
    np.testing.assert_allclose(m.predict(users, items), logits[users, items], rtol=1e-5, atol=1e-5)


def test_kl_is_zero_at_the_prior_and_matches_the_closed_form():
    zeros = np.zeros((3, 4), np.float32)
    np.testing.assert_array_equal(gaussian_kl(zeros, zeros).numpy(), np.zeros(3))
    # KL(N(1, e^0) ‖ N(0, 1)) = ½ per dimension; KL(N(0, e^{ln 4}) ‖ N(0,1)) = ½(4 − 1 − ln 4).
    mu = np.array([[1.0, 0.0]], np.float32)
    logvar = np.array([[0.0, np.log(4.0)]], np.float32)
    np.testing.assert_allclose(gaussian_kl(mu, logvar).numpy(), [0.5 + 0.5 * (3.0 - np.log(4.0))], rtol=1e-6)


def test_kl_term_vanishes_when_the_encoder_outputs_the_prior():
    counts = _counts()
    m = MultVAE(**TINY, seed=0)
    m.prepare(counts, None)
    state = _random_state(m)
    state["encoder_out/kernel"][:] = 0.0  # μ = 0 and log σ² = 0 for every user
    state["encoder_out/bias"][:] = 0.0
    m.set_state(state)
    batch = make_batch(m.x, np.arange(6), None, 0.0)
    nll, kl, _ = m.loss_terms(batch, np.array([3, 4], np.int64), np.float32(1.0))
    assert float(kl) == 0.0
    assert float(nll) > 0.0


def test_beta_follows_the_annealing_schedule():
    assert anneal_beta(0, 0.2, 1000) == 0.0
    assert anneal_beta(100, 0.2, 1000) == pytest.approx(0.1)
    assert anneal_beta(200, 0.2, 1000) == pytest.approx(0.2)
    assert anneal_beta(5000, 0.2, 1000) == pytest.approx(0.2)  # capped
    assert anneal_beta(0, 0.3, 0) == pytest.approx(0.3)  # 0 steps: no annealing
    # In training: one update per batch, β of update t is min(cap, t / total).
    m = MultVAE(**TINY, anneal_cap=0.5, total_anneal_steps=6, seed=0)
    m.prepare(_counts(), None)  # 6 users, batch 4: 2 updates an epoch
    seen: list[float] = []
    step = m._train_step
    m._train_step = lambda batch, beta, seed, noise: (seen.append(float(beta)), step(batch, beta, seed, noise))[1]
    m.training_loss()  # measuring does not count as updates
    assert m.update_count == 0
    for _ in range(3):
        m.train_epoch()
    np.testing.assert_allclose(seen, [0.0, 1 / 6, 2 / 6, 0.5, 0.5, 0.5], rtol=1e-6)
    assert m.update_count == 6 and m.beta == pytest.approx(0.5)


def test_training_lowers_the_loss_on_a_tiny_dataset():
    rng = np.random.default_rng(0)
    dense = np.zeros((60, 20), np.float32)
    dense[:30, :10] = rng.random((30, 10)) < 0.5  # two communities of users and items
    dense[30:, 10:] = rng.random((30, 10)) < 0.5
    dense[np.arange(60), np.where(np.arange(60) < 30, 0, 10)] = 1.0
    m = MultVAE(hidden=16, latent=4, batch_size=10, learning_rate=0.01, total_anneal_steps=0, dropout=0.2, seed=0)
    m.prepare(sp.csr_matrix(dense), None)
    before = m.training_loss()
    for _ in range(30):
        m.train_epoch()
    after = m.training_loss()
    assert after < 0.8 * before, (before, after)
    # and the scores put a user's own community first
    scores = m.score_items(np.arange(60))
    own = np.where(np.arange(60)[:, None] < 30, np.arange(20) < 10, np.arange(20) >= 10)
    assert (scores[own].reshape(60, 10).mean(1) > scores[~own].reshape(60, 10).mean(1)).all()


def test_same_seed_same_scores_and_state_keys():
    a, b = MultVAE(**TINY, seed=4), MultVAE(**TINY, seed=4)
    for m in (a, b):
        m.prepare(_counts(), None)
        m.train_epoch()
    np.testing.assert_array_equal(a.score_items(np.arange(6)), b.score_items(np.arange(6)))
    assert sorted(a.get_state()) == sorted(b.get_state())


@pytest.mark.parametrize(
    "kwargs,key",
    [({"hidden": 0}, "model.hidden"), ({"dropout": 1.0}, "model.dropout"), ({"anneal_cap": -0.1}, "model.anneal_cap"),
     ({"total_anneal_steps": -1}, "model.total_anneal_steps"), ({"learning_rate": 0}, "model.learning_rate"),
     ({"batch_size": 2.5}, "model.batch_size"), ({"l2": -1}, "model.l2")],
)
def test_bad_settings_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        MultVAE(**kwargs)

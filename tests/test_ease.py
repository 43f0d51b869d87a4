"""EASE's B against the constrained least squares solved column by column, independently."""

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.models.ease import Ease


def _random_counts(n_users: int, n_items: int, seed: int) -> np.ndarray:
    """Binary pattern with play-count values (1..9): EASE must binarise them."""
    rng = np.random.default_rng(seed)
    pattern = rng.random((n_users, n_items)) < 0.35
    return np.where(pattern, rng.integers(1, 10, (n_users, n_items)), 0).astype(np.float32)


def _reference_b(x: np.ndarray, l2: float) -> np.ndarray:
    """min ||X − XB||² + λ||B||² s.t. diag(B) = 0, per column: ridge regression of column j on
    the other columns, as an augmented least-squares problem [X_-j; √λ I] b ≈ [x_j; 0]."""
    n_items = x.shape[1]
    b = np.zeros((n_items, n_items))
    for j in range(n_items):
        free = np.flatnonzero(np.arange(n_items) != j)
        a = np.vstack([x[:, free], np.sqrt(l2) * np.eye(len(free))])
        target = np.concatenate([x[:, j], np.zeros(len(free))])
        b[free, j] = np.linalg.lstsq(a, target, rcond=None)[0]
    return b


# (users, items): more users than items takes the items × items inverse, fewer users than
# items the Woodbury (users × users) path; both must give the same B.
@pytest.mark.parametrize("shape", [(40, 12), (9, 25)], ids=["direct", "woodbury"])
@pytest.mark.parametrize("l2", [0.5, 30.0])
def test_b_equals_the_constrained_least_squares_solution(shape, l2):
    counts = _random_counts(*shape, seed=shape[0])
    x = (counts > 0).astype(np.float64)
    m = Ease(l2=l2)
    m.prepare(sp.csr_matrix(counts), None)
    loss = m.train_epoch()
    b = m.get_state()["B"]
    np.testing.assert_allclose(b, _reference_b(x, l2), atol=1e-6, rtol=0)
    assert np.all(np.diag(b) == 0.0)
    objective = np.sum((x - x @ b.astype(np.float64)) ** 2) + l2 * np.sum(b.astype(np.float64) ** 2)
    assert loss == pytest.approx(objective / x.size, rel=1e-6)


def test_scores_are_x_times_b():
    counts = _random_counts(30, 15, seed=5)
    x = (counts > 0).astype(np.float64)
    m = Ease(l2=3.0)
    m.prepare(sp.csr_matrix(counts), None)
    m.train_epoch()
    expected = x @ m.get_state()["B"].astype(np.float64)
    users = np.array([3, 0, 29, 3])
    np.testing.assert_allclose(m.score_items(users), expected[users], rtol=1e-5, atol=1e-6)
    pair_users, pair_items = np.array([0, 7, 7, 12]), np.array([14, 0, 3, 3])
    pred = m.predict(pair_users, pair_items)
    assert pred.dtype == np.float64
    np.testing.assert_allclose(pred, expected[pair_users, pair_items], rtol=1e-6, atol=1e-7)


def test_before_the_fit_b_is_zero_and_l2_must_be_positive():
    m = Ease(l2=10.0)
    m.prepare(sp.csr_matrix(_random_counts(6, 4, seed=1)), None)
    np.testing.assert_array_equal(m.score_items(np.arange(6)), np.zeros((6, 4)))
    with pytest.raises(ConfigError, match="model.l2"):
        Ease(l2=0.0)

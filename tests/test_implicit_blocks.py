"""Implicit NCAE building blocks: Eq. 10 confidence weights and Sec. 4.2 augmentation."""

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.models.ncae.augmentation import augment_sparse_users
from ncae_exp.models.common.confidence import popularity_confidence, uniform_confidence


def test_popularity_confidence_hand_computed():
    # f = [4/9, 1/9, 0, 4/9]; sqrt f = [2/3, 1/3, 0, 2/3], sum 5/3 -> c = 512·[2/5, 1/5, 0, 2/5]
    c = popularity_confidence(np.array([4, 1, 0, 4]), c0=512.0, omega=0.5)
    np.testing.assert_allclose(c, [204.8, 102.4, 0.0, 204.8], rtol=1e-12)
    # omega = 1: c = 512·f
    c1 = popularity_confidence([4, 1, 0, 4], c0=512.0, omega=1.0)
    np.testing.assert_allclose(c1, [512 * 4 / 9, 512 / 9, 0.0, 512 * 4 / 9], rtol=1e-12)


def test_omega_zero_gives_equal_weights_to_observed_items():
    c = popularity_confidence([10, 1, 0, 3], c0=6.0, omega=0.0)
    np.testing.assert_allclose(c, [2.0, 2.0, 0.0, 2.0])


def test_confidence_edge_cases():
    assert popularity_confidence([0, 0, 0]).tolist() == [0.0, 0.0, 0.0]
    assert popularity_confidence([5, 1], c0=0.0).tolist() == [0.0, 0.0]
    big = popularity_confidence([1e6, 1, 1], c0=1.0, omega=200.0)  # 1e-6^200 underflows
    assert np.all(np.isfinite(big)) and big[0] == pytest.approx(1.0)
    for kwargs in ({"c0": -1.0}, {"omega": -0.5}, {"c0": float("nan")}, {"omega": float("inf")}):
        with pytest.raises(ConfigError):
            popularity_confidence([1, 2], **kwargs)
    with pytest.raises(ValueError):
        popularity_confidence([1, -2])


def test_uniform_confidence():
    np.testing.assert_array_equal(uniform_confidence(3, 0.05), [0.05, 0.05, 0.05])
    assert uniform_confidence(2).tolist() == [0.05, 0.05]
    with pytest.raises(ConfigError):
        uniform_confidence(3, -0.1)


# 10 items; popularity by item index:
POP = np.array([10, 50, 30, 30, 5, 70, 1, 2, 3, 40], dtype=float)


def _train():
    dense = np.zeros((4, 10), dtype=np.float32)
    dense[0, [0, 1, 2, 3, 5, 9]] = [1, 2, 3, 4, 5, 6]  # 6/10 = 0.6: dense
    dense[1, [1, 2, 3, 4]] = [7, 8, 9, 10]  # 4/10 = 0.4: sparse
    dense[2, [3, 6]] = [11, 12]  # 2/10 = 0.2: sparse
    # user 3 has nothing: sparse, but an empty row is never added
    return sp.csr_matrix(dense)


def _row(m, i):
    r = m[i]
    return r.indices.tolist(), r.data.tolist()


def test_augmentation_drops_most_popular_items_of_sparse_users_only():
    train = _train()
    stacked, origin = augment_sparse_users(train, POP, epsilon=0.5, p=0.8)
    assert origin.tolist() == [1, 2] and origin.dtype == np.int64
    assert stacked.shape == (6, 10) and stacked.has_canonical_format
    assert (stacked[:4] != train).nnz == 0  # original rows first, untouched
    # user 1: drop floor(4·0.8) = 3 of pops 50, 30, 30, 5 -> keep item 4 with its value
    assert _row(stacked, 4) == ([4], [10.0])
    # user 2: drop floor(2·0.8) = 1 -> item 3 (pop 30) goes, item 6 stays
    assert _row(stacked, 5) == ([6], [12.0])


def test_augmentation_ties_broken_by_lower_index_first():
    # user 1 with p = 0.5 drops 2: item 1 (50), then items 2 and 3 tie at 30 -> item 2 goes
    stacked, origin = augment_sparse_users(_train(), POP, epsilon=0.5, p=0.5)
    assert origin.tolist() == [1, 2]
    assert _row(stacked, 4) == ([3, 4], [9.0, 10.0])
    assert _row(stacked, 5) == ([6], [12.0])  # floor(2·0.5) = 1


def test_augmentation_threshold_is_strict_and_p_one_is_a_noop():
    train = _train()
    _, origin = augment_sparse_users(train, POP, epsilon=0.4, p=0.8)
    assert origin.tolist() == [2]  # 4/10 is not < 0.4
    same, origin = augment_sparse_users(train, POP, epsilon=0.5, p=1.0)
    assert same is train and origin.tolist() == []
    same, origin = augment_sparse_users(train, POP, epsilon=0.0, p=0.8)
    assert same is train and origin.tolist() == []


def test_augmentation_floor_is_exact_despite_rounding():
    # 100 items, p = 0.29: 100·0.29 = 28.999999999999996 in floating point, still 29 dropped
    train = sp.csr_matrix(np.ones((1, 1000), dtype=np.float32) * (np.arange(1000) < 100))
    pop = np.arange(1000, 0, -1, dtype=float)  # lower index = more popular
    stacked, origin = augment_sparse_users(train, pop, epsilon=0.2, p=0.29)
    assert origin.tolist() == [0]
    assert stacked[1].indices.tolist() == list(range(29, 100))


def test_augmentation_validates_arguments():
    train = _train()
    for kwargs in ({"p": 0.0}, {"p": 1.5}, {"p": float("nan")}, {"epsilon": -0.1}):
        with pytest.raises(ConfigError):
            augment_sparse_users(train, POP, **kwargs)
    with pytest.raises(ValueError):
        augment_sparse_users(train, POP[:-1])

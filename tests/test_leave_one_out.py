"""The implicit leave-one-out split and the Table 5 thinning, on hand-made and synthetic data."""

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.data.interactions import Interactions
from ncae_exp.data.leave_one_out import keep_share, leave_one_out
from ncae_exp.data.synthetic import generate_synthetic
from ncae_exp.errors import ConfigError


def _toy(with_time=True):
    # user 0: items 0,1,2,3 at t = 10,40,20,30      -> test item 1 (latest)
    # user 1: items 1,4,5 at t = 5,5,1              -> test item 1 or 4 (tied latest)
    # user 2: items 0,5 (too few)                   -> all in train
    # user 3: nothing                               -> too few
    rows = [0, 0, 0, 0, 1, 1, 1, 2, 2]
    cols = [0, 1, 2, 3, 1, 4, 5, 0, 5]
    vals = np.array([7, 2, 3, 1, 9, 4, 5, 6, 8], dtype=np.float32)  # play counts
    m = sp.csr_matrix((vals, (rows, cols)), shape=(4, 6), dtype=np.float32)
    stamps = np.array([10, 40, 20, 30, 5, 5, 1, 3, 4], dtype=np.int64) if with_time else None
    return Interactions("toy", m, np.arange(1, 5), np.arange(1, 7), timestamps=stamps)


def _pairs(matrix):
    coo = matrix.tocoo()
    return set(zip(coo.row.tolist(), coo.col.tolist()))


def _check_partition(data, split):
    train = _pairs(split.train)
    val = set(zip(split.val_users.tolist(), split.val_items.tolist()))
    test = set(zip(split.test_users.tolist(), split.test_items.tolist()))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == _pairs(data.matrix)


def test_toy_split_by_timestamp():
    data = _toy()
    split = leave_one_out(data, seed=0)
    _check_partition(data, split)
    assert split.train.shape == data.matrix.shape
    assert split.train.dtype == np.float32 and set(split.train.data.tolist()) == {1.0}
    assert split.train.has_canonical_format
    assert split.test_users.tolist() == [0, 1] and split.val_users.tolist() == [0, 1]
    assert split.test_users.dtype == np.int64 and split.test_items.dtype == np.int64
    assert split.test_items[0] == 1
    assert split.test_items[1] in (1, 4)
    assert split.train[2].indices.tolist() == [0, 5]  # too few: kept whole
    assert split.stats() == {
        "n_train": 5,
        "n_val": 2,
        "n_test": 2,
        "n_users_too_few": 2,
        "test_by_timestamp": True,
    }


def test_timestamp_ties_and_validation_are_seeded_random():
    data = _toy()
    tests, vals0 = set(), set()
    for seed in range(30):
        split = leave_one_out(data, seed=seed)
        assert split.test_items[0] == 1  # never a tie for user 0
        tests.add(int(split.test_items[1]))
        vals0.add(int(split.val_items[0]))
    assert tests == {1, 4}  # both tied latest items get picked, item 5 (older) never
    assert vals0 == {0, 2, 3}  # any non-test item can be the validation item


def test_without_timestamps_test_item_is_random():
    data = _toy(with_time=False)
    picked = set()
    for seed in range(30):
        split = leave_one_out(data, seed=seed)
        _check_partition(data, split)
        assert split.stats()["test_by_timestamp"] is False
        picked.add(int(split.test_items[0]))
    assert picked == {0, 1, 2, 3}


def test_min_interactions():
    data = _toy()
    split = leave_one_out(data, seed=0, min_interactions=4)
    assert split.test_users.tolist() == [0] and split.stats()["n_users_too_few"] == 3
    split = leave_one_out(data, seed=0, min_interactions=2)
    assert split.test_users.tolist() == [0, 1, 2]
    assert split.train[2].nnz == 0
    with pytest.raises(ConfigError):
        leave_one_out(data, seed=0, min_interactions=1)


@pytest.fixture(scope="module")
def synthetic():
    return generate_synthetic(n_users=500, n_items=300, n_ratings=15_000, seed=3)


def test_synthetic_test_item_is_latest(synthetic):
    split = leave_one_out(synthetic, seed=1)
    _check_partition(synthetic, split)
    m = synthetic.matrix
    counts = np.diff(m.indptr)
    assert len(split.test_users) == np.count_nonzero(counts >= 3)
    assert split.stats()["n_users_too_few"] == np.count_nonzero(counts < 3)
    assert len(np.unique(split.test_users)) == len(split.test_users)
    # The test item's timestamp is the user's latest one.
    latest = np.array([synthetic.timestamps[m.indptr[u] : m.indptr[u + 1]].max() for u in split.test_users])
    pos = np.array([m.indptr[u] + np.searchsorted(m.indices[m.indptr[u] : m.indptr[u + 1]], i)
                    for u, i in zip(split.test_users, split.test_items)])
    np.testing.assert_array_equal(synthetic.timestamps[pos], latest)
    assert np.all(counts[split.test_users] - 2 == np.diff(split.train.indptr)[split.test_users])


def test_deterministic_per_seed_and_different_across_seeds(synthetic):
    a, b, c = (leave_one_out(synthetic, seed=s) for s in (7, 7, 8))
    for name in ("val_items", "test_items"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.train != b.train).nnz == 0
    assert np.mean(a.val_items != c.val_items) > 0.5


def test_keep_share_proportions():
    rows = [0] * 10 + [1] * 5 + [2]
    cols = list(range(10)) + list(range(5)) + [3]
    vals = np.arange(1, 17, dtype=np.float32)
    train = sp.csr_matrix((vals, (rows, cols)), shape=(4, 10))
    for share, expected in ((0.4, [4, 2, 1, 0]), (0.5, [5, 3, 1, 0]), (1.0, [10, 5, 1, 0])):
        kept = keep_share(train, share, seed=0)
        assert np.diff(kept.indptr).tolist() == expected
        assert kept.shape == train.shape and kept.has_canonical_format
        assert _pairs(kept) <= _pairs(train)
        np.testing.assert_array_equal(np.asarray(kept[kept.nonzero()]).ravel(),
                                      np.asarray(train[kept.nonzero()]).ravel())
    a, b = keep_share(train, 0.4, seed=0), keep_share(train, 0.4, seed=0)
    assert _pairs(a) == _pairs(b)
    assert len({frozenset(keep_share(train, 0.4, seed=s)[0].indices.tolist()) for s in range(10)}) > 1
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError):
            keep_share(train, bad, seed=0)


def test_keep_share_on_synthetic_overall_share(synthetic):
    train = leave_one_out(synthetic, seed=0).train
    kept = keep_share(train, 0.6, seed=2)
    assert kept.nnz / train.nnz == pytest.approx(0.6, abs=0.02)
    counts = np.diff(train.indptr)
    assert np.all(np.diff(kept.indptr)[counts > 0] >= 1)


def test_latest_validation_item_is_the_latest_but_the_test_item():
    # user 0: t = 10,40,20,30 -> test item 1 (t=40), validation item 3 (t=30)
    # user 1: t = 5,5,1 -> test one of items 1/4 (tied at 5), validation the other one
    for seed in range(6):
        split = leave_one_out(_toy(), seed=seed, validation="latest")
        val = dict(zip(split.val_users.tolist(), split.val_items.tolist()))
        test = dict(zip(split.test_users.tolist(), split.test_items.tolist()))
        assert test[0] == 1 and val[0] == 3
        assert {test[1], val[1]} == {1, 4}
        _check_partition(_toy(), split)
    # without timestamps "latest" cannot apply: the same seeded random item as "random"
    a = leave_one_out(_toy(with_time=False), seed=2, validation="latest")
    b = leave_one_out(_toy(with_time=False), seed=2)
    assert np.array_equal(a.val_items, b.val_items)
    with pytest.raises(ConfigError, match="split.validation"):
        leave_one_out(_toy(), seed=0, validation="oldest")


def test_latest_validation_on_synthetic_is_each_users_second_latest(synthetic):
    split = leave_one_out(synthetic, seed=1, validation="latest")
    m = synthetic.matrix.tocsr()
    stamps = np.asarray(synthetic.timestamps)
    for u, item in list(zip(split.val_users, split.val_items))[:50]:
        lo, hi = m.indptr[u], m.indptr[u + 1]
        times = dict(zip(m.indices[lo:hi].tolist(), stamps[lo:hi].tolist()))
        test_item = split.test_items[split.test_users == u][0]
        rest = [t for i, t in times.items() if i != test_item]
        assert times[item] == max(rest)

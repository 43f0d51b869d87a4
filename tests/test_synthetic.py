"""The synthetic generator: exact shape, determinism, real-data-like tails, learnable ratings."""

import time

import numpy as np
import pytest

from ncae_exp.data.loader import load_dataset
from ncae_exp.data.synthetic import generate_synthetic
from ncae_exp.errors import ConfigError


@pytest.fixture(scope="module")
def default():
    return generate_synthetic()


def _counts(inter):
    m = inter.matrix
    return np.diff(m.indptr), np.bincount(m.indices, minlength=m.shape[1])


def test_exact_shape_and_canonical(default):
    assert (default.n_users, default.n_items, default.n_ratings) == (1000, 800, 40_000)
    m = default.matrix
    assert m.dtype == np.float32 and m.has_canonical_format
    assert default.timestamps.dtype == np.int64 and default.timestamps.shape == m.data.shape
    assert default.user_ids.tolist() == list(range(1, 1001))
    assert default.item_ids.tolist() == list(range(1, 801))


def test_every_user_and_item_is_rated(default):
    per_user, per_item = _counts(default)
    assert per_user.min() >= 1 and per_item.min() >= 1


def test_heavy_tailed_popularity_and_activity(default):
    per_user, per_item = _counts(default)
    top_items = np.sort(per_item)[::-1][: len(per_item) // 10].sum() / default.n_ratings
    top_users = np.sort(per_user)[::-1][: len(per_user) // 10].sum() / default.n_ratings
    assert top_items > 0.3 and top_users > 0.3
    # a few very popular items and very active users, far above the typical one
    assert per_item.max() > 10 * np.median(per_item) and per_user.max() > 10 * np.median(per_user)


def test_deterministic_by_seed(default):
    same = generate_synthetic(seed=0)
    other = generate_synthetic(seed=1)
    assert (same.matrix != default.matrix).nnz == 0
    assert np.array_equal(same.matrix.indices, default.matrix.indices)
    assert np.array_equal(same.timestamps, default.timestamps)
    assert (other.matrix != default.matrix).nnz > 0


@pytest.mark.parametrize("scale,step", [((1, 5), 1.0), ((0.5, 5), 0.5), ((1, 10), 1.0)])
def test_ratings_on_the_scale_steps(scale, step):
    inter = generate_synthetic(
        n_users=300, n_items=200, n_ratings=6000, rating_scale=scale, rating_step=step
    )
    r = inter.matrix.data.astype(np.float64)
    grid = np.arange(scale[0], scale[1] + step / 2, step)
    assert set(np.unique(r).tolist()) == set(grid.tolist())  # on the grid, every step used
    assert (inter.rating_scale.low, inter.rating_scale.high) == tuple(float(v) for v in scale)


def test_ratings_carry_user_and_item_signal(default):
    """Per-user and per-item means fitted on 80% predict the other 20% better than the global
    mean: there is something for a model to learn."""
    m = default.matrix.tocoo()
    rng = np.random.default_rng(0)
    test = rng.random(m.nnz) < 0.2
    r, u, i = m.data.astype(np.float64), m.row, m.col
    mu = r[~test].mean()

    def mean_offset(index, residual, n):
        s = np.bincount(index[~test], residual[~test], minlength=n)
        c = np.bincount(index[~test], minlength=n)
        return s / (c + 5.0)  # shrunk towards 0

    bu = mean_offset(u, r - mu, m.shape[0])
    bi = mean_offset(i, r - mu - bu[u], m.shape[1])
    rmse_global = np.sqrt(np.mean((r[test] - mu) ** 2))
    rmse_bias = np.sqrt(np.mean((r[test] - mu - bu[u[test]] - bi[i[test]]) ** 2))
    assert rmse_bias < 0.9 * rmse_global


def test_full_matrix_and_minimal_cover():
    full = generate_synthetic(n_users=20, n_items=15, n_ratings=300)
    assert full.matrix.nnz == 300 and (full.matrix.toarray() > 0).all()
    cover = generate_synthetic(n_users=20, n_items=35, n_ratings=35)
    per_user, per_item = _counts(cover)
    assert cover.n_ratings == 35 and per_user.min() >= 1 and (per_item == 1).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_users=10, n_items=10, n_ratings=101), "exceeds n_users\\*n_items=100"),
        (dict(n_users=50, n_items=10, n_ratings=40), "below max\\(n_users, n_items\\)=50"),
        (dict(n_users=0), "n_users must be a positive integer"),
        (dict(n_items=2.5), "n_items must be a positive integer"),
        (dict(rating_scale=(5, 1)), "needs low < high"),
        (dict(rating_scale=(1, 5), rating_step=0.3), "must divide the scale"),
        (dict(rating_step=0), "must divide the scale"),
        (dict(exponent=-1), "exponent must be a number >= 0"),
        (dict(n_ratings="many"), "n_ratings must be a positive integer, got 'many'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match) as err:
        generate_synthetic(**kwargs)
    assert "\n" not in str(err.value)


def test_load_dataset_passes_the_config(tmp_path):
    cfg = {"name": "synthetic", "n_users": 120, "n_items": 90, "n_ratings": 3000,
           "rating_scale": [0.5, 5], "rating_step": 0.5, "seed": 3}
    inter = load_dataset(cfg, tmp_path)
    assert (inter.n_users, inter.n_items, inter.n_ratings) == (120, 90, 3000)
    assert inter.rating_scale.low == 0.5 and not any(tmp_path.iterdir())  # nothing cached
    with pytest.raises(ConfigError, match="unknown option\\(s\\) n_user"):
        load_dataset({"name": "synthetic", "n_user": 5}, tmp_path)


@pytest.mark.slow
def test_ml10m_shape_is_fast():
    start = time.perf_counter()
    inter = generate_synthetic(69_878, 10_677, 10_000_054, rating_scale=(0.5, 5), rating_step=0.5)
    elapsed = time.perf_counter() - start
    assert (inter.n_users, inter.n_items, inter.n_ratings) == (69_878, 10_677, 10_000_054)
    per_user, per_item = _counts(inter)
    assert per_user.min() >= 1 and per_item.min() >= 1
    assert elapsed < 60, f"{elapsed:.1f} s"

"""Mean ± std and the paired t-test against numbers worked by hand."""

import math

import numpy as np
import pytest

from ncae_exp.evaluation.significance import format_mean_std, mean_std, paired_t_test

# Five repeats of two models on the same seeds (RMSE-like numbers).
A = [0.910, 0.915, 0.905, 0.920, 0.912]
B = [0.922, 0.921, 0.915, 0.930, 0.918]


def test_paired_t_by_hand():
    d = np.subtract(A, B)  # -0.012 -0.006 -0.010 -0.010 -0.006
    mean = d.sum() / 5  # -0.0088
    sd = math.sqrt(((d - mean) ** 2).sum() / 4)
    t = mean / (sd / math.sqrt(5))
    out = paired_t_test(A, B)
    assert out["mean_diff"] == pytest.approx(-0.0088)
    assert out["t"] == pytest.approx(t)
    assert out["t"] == pytest.approx(-7.3333, abs=1e-3)  # sd = 0.0026833, se = 0.0012
    # Two-sided p for t = -7.333 with 4 degrees of freedom (t table: p(|t| > 7.173) = 0.002).
    assert 0.0015 < out["p"] < 0.002
    assert out["n"] == 5


def test_paired_t_matches_scipy_on_fixed_samples():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = rng.normal(0.5, 0.02, 7), rng.normal(0.49, 0.02, 7)
    ref = stats.ttest_rel(a, b)
    out = paired_t_test(a, b)
    assert out["t"] == pytest.approx(ref.statistic) and out["p"] == pytest.approx(ref.pvalue)


def test_no_variance_or_one_pair_gives_no_p_value():
    assert math.isnan(paired_t_test([0.9], [0.8])["p"])
    assert math.isnan(paired_t_test([0.9, 0.8], [0.8, 0.7])["p"])  # constant difference
    with pytest.raises(ValueError):
        paired_t_test([1, 2], [1])


def test_mean_std_is_the_sample_std():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(math.sqrt(5 / 3))
    assert mean_std([0.7]) == (0.7, 0.0)
    assert format_mean_std([1.0, 2.0, 3.0, 4.0], 2) == "2.50 ± 1.29"

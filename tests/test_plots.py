"""The run plots read only the metric keys they plot."""

import matplotlib.image as mpimg

from ncae_exp.tracking.plots import metrics_vs_cutoff


def test_metrics_vs_m_ignores_std_and_bucket_keys_and_draws_error_bars(tmp_path, monkeypatch):
    import matplotlib.axes

    drawn = []
    real = matplotlib.axes.Axes.errorbar

    def spy(self, x, y, yerr=None, **kw):
        drawn.append((list(x), list(y), None if yerr is None else list(yerr)))
        return real(self, x, y, yerr=yerr, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    final = {"test_hr_at_50": 0.3, "test_hr_at_100": 0.5, "test_ndcg_at_50": 0.1, "test_ndcg_at_100": 0.15,
             "test_hr_at_100_std": 0.01, "test_hr_at_50_std": 0.02, "test_ndcg_at_50_std": 0.03,
             "test_ndcg_at_100_std": 0.04, "test_hr_at_100_users_1_5": 0.2, "val_hr_at_100": 0.9}
    path = metrics_vs_cutoff(final, tmp_path / "m.png")
    assert mpimg.imread(path).shape[0] > 100
    assert drawn == [([50, 100], [0.3, 0.5], [0.02, 0.01]), ([50, 100], [0.1, 0.15], [0.03, 0.04])]
    drawn.clear()
    metrics_vs_cutoff({k: v for k, v in final.items() if not k.endswith("_std")}, tmp_path / "n.png")
    assert drawn[0][2] is None  # one run: no error bars
    assert metrics_vs_cutoff({"test_rmse": 0.9}, tmp_path / "e.png") is None

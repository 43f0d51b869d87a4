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


def test_learning_curves_label_the_best_epoch_inside_the_axes_with_integer_epoch_ticks(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from ncae_exp.tracking import plots

    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)  # keep the figure to inspect it
    history = [{"step": s, "train_loss": 2.0 - 0.1 * s, "val_rmse": 1.0 - 0.01 * s, "train_rmse": 0.9}
               for s in range(4)]
    path = plots.learning_curves(history, tmp_path / "lc.png", best_epoch=2, title="ncae on synthetic (explicit)")
    assert mpimg.imread(path).shape[0] > 100
    (fig,) = figures
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        frame = ax.get_window_extent(renderer)
        for text in ax.texts:  # no free text over the frame
            box = text.get_window_extent(renderer)
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    legend = fig.axes[1].get_legend()
    assert "best epoch 2" in [t.get_text() for t in legend.get_texts()]
    box, frame = legend.get_window_extent(renderer), fig.axes[1].get_window_extent(renderer)
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    plt.close(fig)

"""Figures logged as artifacts: learning curves from a fit's history."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves(history: list[dict[str, float]], path: Path, best_epoch: int | None = None, title: str = "") -> Path:
    """Training objective (left) and the headline series (right) per epoch: every ``*_rmse``,
    and HR/NDCG at 100 (the other cutoffs are in MLflow and in metrics_vs_m.png)."""
    steps = [h["step"] for h in history]
    metric_keys = sorted({k for h in history for k in h if k.endswith(("_rmse", "_at_100"))})
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(steps, [h.get("train_loss") for h in history], marker=".", label="train_loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training objective")
    ax_loss.legend()
    for key in metric_keys:
        ax_metric.plot(steps, [h.get(key, float("nan")) for h in history], marker=".", label=key)
    if best_epoch is not None:
        # The label goes in the legend: a text at the line's top ran over the frame and title.
        ax_loss.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
        ax_metric.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch {best_epoch}")
    ax_metric.set_xlabel("epoch")
    ax_metric.legend(loc="best", fontsize=8)
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def metrics_vs_cutoff(final: dict[str, float], path: Path, title: str = "") -> Path | None:
    """HR@M and NDCG@M against M (the paper's Fig. 9-10) from a run's final test metrics;
    None when the run has no ranking metrics."""
    import re

    # test_hr_at_100, not test_hr_at_100_std (retrain repeats) or test_hr_at_100_users_1_5 (buckets)
    cutoffs = sorted(int(m.group(1)) for k in final if (m := re.fullmatch(r"test_hr_at_(\d+)", k)))
    if not cutoffs:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name in ("hr", "ndcg"):
        values = [final[f"test_{name}_at_{m}"] for m in cutoffs]
        std = [final.get(f"test_{name}_at_{m}_std") for m in cutoffs]
        label = f"test {name.upper()}@M" + (" (mean ± std over repeats)" if None not in std else "")
        ax.errorbar(cutoffs, values, yerr=None if None in std else std, marker="o", capsize=3, label=label)
    ax.set_xlabel("M (length of the ranked list)")
    ax.set_xticks(cutoffs)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)

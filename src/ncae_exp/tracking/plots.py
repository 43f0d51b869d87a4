"""Figures logged as artifacts: learning curves from a fit's history."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def learning_curves(history: list[dict[str, float]], path: Path, best_epoch: int | None = None, title: str = "") -> Path:
    """Training objective (left) and every ``*_rmse`` / ``*_hr_at_*`` series (right) per epoch."""
    steps = [h["step"] for h in history]
    metric_keys = sorted({k for h in history for k in h if k not in ("step", "train_loss")})
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(steps, [h.get("train_loss") for h in history], marker=".", label="train_loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training objective")
    ax_loss.legend()
    for key in metric_keys:
        ax_metric.plot(steps, [h.get(key, float("nan")) for h in history], marker=".", label=key)
    if best_epoch is not None:
        for ax in (ax_loss, ax_metric):
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
        ax_metric.annotate(f"best epoch {best_epoch}", xy=(best_epoch, 0.98), xycoords=("data", "axes fraction"), fontsize=8)
    ax_metric.set_xlabel("epoch")
    ax_metric.legend()
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

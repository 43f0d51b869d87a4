"""The epoch loop: train, evaluate, log, keep the best epoch.

Model-agnostic: it drives any :class:`Recommender` and reports through a :class:`Tracker`.
Step 0 of every series is the model before the first training epoch (the paper's Fig. 5
"epoch-0").
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ncae_exp.errors import ConfigError, TrainingError
from ncae_exp.models.base import Recommender
from ncae_exp.tracking.base import Tracker

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    best_epoch: int
    best_value: float | None  # the selection metric at best_epoch (None: no selection)
    epochs_run: int
    epoch_seconds: float  # mean wall time of one training epoch (train_epoch only)
    fit_seconds: float  # the whole fit, evaluations included
    history: list[dict[str, float]] = field(default_factory=list)  # one dict per step
    extras: dict[str, float] = field(default_factory=dict)  # e.g. pretrain_seconds


class Trainer:
    """Runs ``epochs`` epochs and restores the parameters of the best one.

    ``select`` names the validation metric that picks the best epoch (``mode`` min or max);
    when ``evaluate`` does not return it (no validation set), the last epoch is kept.
    ``patience`` stops early after that many epochs without improvement (None = never).
    A model that is not ``iterative`` (fit in closed form) gets one epoch, whatever
    ``epochs`` says.
    """

    def __init__(
        self,
        epochs: int,
        select: str,
        mode: str = "min",
        patience: int | None = None,
    ):
        if int(epochs) < 1:
            raise ConfigError(f"trainer.epochs must be >= 1, got {epochs}")
        if mode not in ("min", "max"):
            raise ConfigError(f"selection mode must be 'min' or 'max', got {mode!r}")
        if patience is not None and int(patience) < 1:
            raise ConfigError(f"trainer.patience must be >= 1 or null, got {patience}")
        self.epochs = int(epochs)
        self.select = select
        self.mode = mode
        self.patience = None if patience is None else int(patience)

    @classmethod
    def fixed(cls, epochs: int) -> "Trainer":
        """Exactly ``epochs`` epochs with nothing to select on (retraining with the epoch
        count that selection chose; 0 keeps the model as it is after pre-training or
        initialisation — the selected "epoch 0")."""
        if int(epochs) < 0:
            raise ConfigError(f"a retraining needs >= 0 epochs, got {epochs}")
        trainer = cls(epochs=1, select="", mode="min")
        trainer.epochs = int(epochs)
        return trainer

    def _better(self, value: float, best: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        if best is None:
            return True
        return value < best if self.mode == "min" else value > best

    def fit(self, model: Recommender, evaluate: Callable[[Recommender], dict[str, float]], tracker: Tracker) -> FitResult:
        """``evaluate(model)`` returns the per-epoch metrics (e.g. ``val_rmse``, ``train_rmse``);
        every series goes to ``tracker`` (step = epoch)."""
        t_fit = time.perf_counter()
        history: list[dict[str, float]] = []
        n_epochs = self.epochs if model.iterative else 1

        def record(step: int, metrics: dict[str, float]) -> None:
            tracker.log_metrics(metrics, step=step)
            history.append({"step": step, **metrics})

        extras = model.before_fit(tracker.log_metrics)  # pre-training, if any
        step0 = {"train_loss": model.training_loss(), **evaluate(model)}
        record(0, step0)
        log.info("epoch 0/%d %s", n_epochs, _fmt(step0))
        best_epoch, best_value = 0, step0.get(self.select)
        best_state = model.get_state()
        epoch_times: list[float] = []
        since_best = 0
        epoch = 0
        for epoch in range(1, n_epochs + 1):
            t0 = time.perf_counter()
            loss = model.train_epoch()
            epoch_times.append(time.perf_counter() - t0)
            if not math.isfinite(loss):
                raise TrainingError(f"training loss became {loss} at epoch {epoch}; lower model.learning_rate")
            metrics = {"train_loss": loss, **evaluate(model)}
            record(epoch, metrics)
            value = metrics.get(self.select)
            improved = self._better(value, best_value) if self.select in metrics else True
            if improved:
                best_epoch, best_value, since_best = epoch, value, 0
                best_state = model.get_state()
            else:
                since_best += 1
            log.info(
                "epoch %d/%d %s (%.2fs)%s",
                epoch,
                n_epochs,
                _fmt(metrics),
                epoch_times[-1],
                " *" if improved else "",
            )
            if self.patience is not None and since_best >= self.patience:
                log.info("no %s improvement for %d epochs: stopping early", self.select, self.patience)
                break
        model.set_state(best_state)
        return FitResult(
            best_epoch=best_epoch,
            best_value=best_value if self.select in step0 else None,
            epochs_run=epoch,
            epoch_seconds=sum(epoch_times) / max(len(epoch_times), 1),
            fit_seconds=time.perf_counter() - t_fit,
            history=history,
            extras=dict(extras),
        )


def _fmt(metrics: dict[str, float]) -> str:
    """The console line keeps the headline numbers; every metric still goes to the tracker."""
    shown = {k: v for k, v in metrics.items() if k == "train_loss" or k.endswith(("_rmse", "_at_100"))}
    return " ".join(f"{k}={v:.4f}" for k, v in shown.items())

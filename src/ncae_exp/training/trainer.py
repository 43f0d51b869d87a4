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
from ncae_exp.tracking.console import PROGRESS_LINE
from ncae_exp.training.checkpoint import Checkpoint, Progress
from ncae_exp.training.progress import FitProgress

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
        self.interrupted: FitResult | None = None  # the fit so far, after a KeyboardInterrupt

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

    def fit(self, model: Recommender, evaluate: Callable[[Recommender], dict[str, float]], tracker: Tracker,
            checkpoint: Checkpoint | None = None, on_epoch: Callable[[FitResult], None] | None = None) -> FitResult:
        """``evaluate(model)`` returns the per-epoch metrics (e.g. ``val_rmse``, ``train_rmse``);
        every series goes to ``tracker`` (step = epoch).

        ``checkpoint``: written after the epoch-0 evaluation and after every epoch. When it
        already holds this fit (a resumed run), the fit goes on from its last epoch: no
        pre-training, and the epochs it has are not logged again. ``on_epoch(fit so far)``
        runs after each checkpoint (the pipeline writes results.json there). On Ctrl-C or
        SIGTERM (a KeyboardInterrupt) the best epoch's parameters are put back into the model
        and ``self.interrupted`` holds the fit so far before the interrupt goes on."""
        t_fit = time.perf_counter()
        self.interrupted = None
        n_epochs = self.epochs if model.iterative else 1
        if not model.iterative:
            checkpoint = None  # one closed-form step: nothing to resume part-way (EASE's B can be GBs)
        loaded = checkpoint.load() if checkpoint is not None and checkpoint.exists() else None
        self._best_state = None  # the best epoch's parameters
        if loaded is None:
            progress = Progress(n_epochs=n_epochs)
        else:
            progress, train_state, self._best_state = loaded
            if progress.n_epochs != n_epochs:
                raise ConfigError(f"the checkpoint in {checkpoint.folder} is of a {progress.n_epochs}-epoch fit, "
                                  f"this one has {n_epochs}: use the run's settings or another output folder")
            model.set_train_state(train_state)
            if self._best_state is None:
                self._best_state = model.get_state()
            log.info("resuming from the checkpoint after epoch %d/%d (best epoch %d)", progress.epoch, n_epochs,
                     progress.best_epoch)
        earlier = progress.fit_seconds

        def result() -> FitResult:
            extras = dict(progress.extras)
            if checkpoint is not None and progress.history:
                extras["checkpoint_seconds"] = progress.checkpoint_seconds / (progress.epoch + 1)
            selecting = bool(progress.history) and self.select in progress.history[0]
            return FitResult(
                best_epoch=progress.best_epoch,
                best_value=progress.best_value if selecting else None,
                epochs_run=progress.epoch,
                epoch_seconds=sum(progress.epoch_times) / max(len(progress.epoch_times), 1),
                fit_seconds=earlier + time.perf_counter() - t_fit,
                history=list(progress.history),
                extras=extras,
            )

        def record(step: int, metrics: dict[str, float]) -> None:
            tracker.log_metrics(metrics, step=step)
            progress.history.append({"step": step, **metrics})

        def save() -> None:
            progress.fit_seconds = earlier + time.perf_counter() - t_fit
            if checkpoint is not None:
                progress.checkpoint_seconds += checkpoint.save(model, progress, self._best_state)
            if on_epoch is not None:
                on_epoch(result())

        # On a terminal a bar stands for the per-epoch lines (they still reach the log file).
        with FitProgress(self.select, self.mode) as bar:
            try:
                self._epochs(model, evaluate, tracker, loaded, progress, n_epochs, record, save, bar)
            except KeyboardInterrupt:
                if self._best_state is not None:
                    model.set_state(self._best_state)
                    self.interrupted = result()
                raise
        model.set_state(self._best_state)
        return result()

    def _epochs(self, model, evaluate, tracker, loaded, progress: Progress, n_epochs: int, record, save,
                bar: FitProgress) -> None:
        """The loop of :meth:`fit`; ``self._best_state`` holds the best epoch's parameters."""
        if loaded is None:
            # pre-training, if any (its stages get bars of their own on a terminal)
            stage_epochs = getattr(getattr(model, "pretrain_schedule", None), "epochs_per_stage", None)
            progress.extras = dict(model.before_fit(bar.pretraining(tracker.log_metrics, stage_epochs)))
            step0 = {"train_loss": model.training_loss(), **evaluate(model)}
            record(0, step0)
            progress.best_value = step0.get(self.select)
            self._best_state = model.get_state()
            save()
            log.info("epoch 0/%d %s", n_epochs, _fmt(step0), extra=PROGRESS_LINE)
        bar.start(n_epochs, progress.epoch)
        bar.epoch(progress.epoch, progress.history[-1] if progress.history else {}, progress.best_epoch,
                  progress.best_value)
        while not progress.finished and progress.epoch < n_epochs:
            epoch = progress.epoch + 1
            t0 = time.perf_counter()
            loss = model.train_epoch()
            seconds = time.perf_counter() - t0
            if not math.isfinite(loss):
                raise TrainingError(f"training loss became {loss} at epoch {epoch}; lower model.learning_rate")
            metrics = {"train_loss": loss, **evaluate(model)}
            record(epoch, metrics)
            value = metrics.get(self.select)
            improved = self._better(value, progress.best_value) if self.select in metrics else True
            if improved:
                progress.best_epoch, progress.best_value, progress.since_best = epoch, value, 0
                self._best_state = model.get_state()
            else:
                progress.since_best += 1
            stop = self.patience is not None and progress.since_best >= self.patience
            progress.epoch = epoch
            progress.epoch_times.append(seconds)
            progress.finished = stop or epoch == n_epochs
            save()
            log.info("epoch %d/%d %s (%.2fs)%s", epoch, n_epochs, _fmt(metrics), seconds, " *" if improved else "",
                     extra=PROGRESS_LINE)
            bar.epoch(epoch, metrics, progress.best_epoch, progress.best_value)
            if stop:
                log.info("no %s improvement for %d epochs: stopping early", self.select, self.patience)


def _fmt(metrics: dict[str, float]) -> str:
    """The console line keeps the headline numbers; every metric still goes to the tracker."""
    shown = {k: v for k, v in metrics.items() if k == "train_loss" or k.endswith(("_rmse", "_at_100"))}
    return " ".join(f"{k}={v:.4f}" for k, v in shown.items())

"""A fit's progress on a terminal: one bar over its epochs (and one per pre-training stage).

On a terminal the bar shows the epoch, the selection metric now and the best so far (with
its epoch) and tqdm's time estimate; a resumed fit's bar starts at its checkpoint's epoch.
Elsewhere (:func:`~ncae_exp.tracking.console.bars_enabled` false) this does nothing: the
trainer's per-epoch log lines are the plain output.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ncae_exp.tracking.console import bars_enabled, logs_above_bars, open_bars, progress_bar

LogFn = Callable[[dict, int], None]


class FitProgress:
    """Use as a context manager around a fit; ``select``/``mode`` name the metric the bar
    shows with its best value (``min``/``max``)."""

    def __init__(self, select: str, mode: str = "min", desc: str = "train", stream=None):
        self.select, self.mode, self.desc = select, mode, desc
        self.enabled = bars_enabled(stream)
        self._stream = stream
        self._bar = None
        self._stage_bar = None
        self._stage = None
        self._logs = logs_above_bars(self.enabled)
        # In a sweep the sweep's bar stays; each job's epoch bar goes when the job ends.
        self._leave = True

    def __enter__(self) -> "FitProgress":
        if self.enabled:
            self._leave = open_bars() == 0
        self._logs.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for bar in (self._stage_bar, self._bar):
            if bar is not None:
                bar.close()
        self._stage_bar = self._bar = None
        self._logs.__exit__(*exc)

    def pretraining(self, log_metrics: LogFn, epochs_per_stage: int | None) -> LogFn:
        """``log_metrics`` that also moves a bar per pre-training stage: a stage is a series
        (``pretrain_sr_loss``, …) reported once per epoch of the stage."""
        if not self.enabled:
            return log_metrics

        def logged(metrics: dict, step: int) -> None:
            log_metrics(metrics, step)
            name = next(iter(metrics), None)
            if name is None:
                return
            if name != self._stage:
                if self._stage_bar is not None:
                    self._stage_bar.close()
                self._stage = name
                stage = name.removeprefix("pretrain_").removesuffix("_loss")
                self._stage_bar = progress_bar(epochs_per_stage, desc=f"pretrain {stage}", leave=False,
                                               file=self._stream)
            self._stage_bar.update(max(int(step) - self._stage_bar.n, 0))
            self._stage_bar.set_postfix_str(f"loss {metrics[name]:.4f}", refresh=True)

        return logged

    def start(self, n_epochs: int, done: int) -> None:
        """The epoch bar, after pre-training: ``done`` epochs are behind (a resumed fit)."""
        if self._stage_bar is not None:
            self._stage_bar.close()
            self._stage_bar = None
        if self.enabled and self._bar is None:
            self._bar = progress_bar(n_epochs, initial=done, desc=self.desc, leave=self._leave, file=self._stream)

    def epoch(self, epoch: int, metrics: dict[str, float], best_epoch: int, best_value: float | None) -> None:
        """After epoch ``epoch`` (0: the evaluation before training) was evaluated."""
        if self._bar is None:
            return
        self._bar.update(max(int(epoch) - self._bar.n, 0))
        self._bar.set_postfix_str(self._postfix(metrics, best_epoch, best_value), refresh=True)

    def _postfix(self, metrics: dict[str, float], best_epoch: int, best_value: float | None) -> str:
        value = metrics.get(self.select)
        if value is None:  # nothing to select on (a retraining): the training objective
            loss = metrics.get("train_loss")
            return "" if loss is None else f"train_loss {loss:.4f}"
        best = "" if best_value is None or math.isnan(best_value) else f" · best {best_value:.4f} @ {best_epoch}"
        return f"{self.select} {value:.4f}{best}"

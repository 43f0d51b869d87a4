"""Per-epoch checkpoints of a fit, so a run killed at epoch 40 of 100 goes on from epoch 40.

A checkpoint folder (``<output_dir>/checkpoint/`` of a run) holds two files, each written
atomically (a temp file, then ``os.replace``: a reader never sees half a file):

* ``last.npz`` — everything the fit goes on from, self-contained: the model's training state
  (``train/…``, from ``Recommender.get_train_state``: parameters, optimizer slots, random
  generators), the best epoch's parameters (``best/…``; left out while the last epoch is the
  best) and the loop's :class:`Progress` as JSON (epoch, best epoch and value, patience
  counter, history, timings);
* ``best.npz`` — the best epoch's parameters alone (``models.io.load_state`` reads it),
  rewritten when the selection metric improves.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender, with_prefix
from ncae_exp.models.io import load_state, save_state

LAST, BEST = "last.npz", "best.npz"
_TRAIN, _BEST, _PROGRESS = "train/", "best/", "progress"


@dataclass
class Progress:
    """Where a fit stands after ``epoch`` (0: after pre-training and the epoch-0 evaluation)."""

    n_epochs: int
    epoch: int = 0
    best_epoch: int = 0
    best_value: float | None = None
    since_best: int = 0  # epochs without improvement (patience)
    finished: bool = False  # the loop ended: all epochs, or stopped early
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_times: list[float] = field(default_factory=list)  # seconds of each train_epoch
    fit_seconds: float = 0.0  # wall time of the fit before this process (earlier attempts)
    checkpoint_seconds: float = 0.0  # time spent writing checkpoints, all attempts
    extras: dict[str, float] = field(default_factory=dict)  # e.g. pretrain_seconds


class Checkpoint:
    """The checkpoint folder of one fit."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.last = self.folder / LAST
        self.best = self.folder / BEST

    def exists(self) -> bool:
        return self.last.is_file()

    def save(self, model: Recommender, progress: Progress, best_state: dict[str, np.ndarray]) -> float:
        """Write the checkpoint after ``progress.epoch``; returns the seconds it took."""
        t0 = time.perf_counter()
        arrays = {_TRAIN + k: v for k, v in model.get_train_state().items()}
        if progress.best_epoch == progress.epoch:
            save_state(best_state, self.best)
        else:
            arrays.update({_BEST + k: v for k, v in best_state.items()})
        arrays[_PROGRESS] = np.array(json.dumps(asdict(progress)))
        save_state(arrays, self.last)
        return time.perf_counter() - t0

    def load(self) -> tuple[Progress, dict[str, np.ndarray], dict[str, np.ndarray] | None]:
        """(progress, the model's training state, the best parameters — None when they are
        the training state's own)."""
        arrays = load_state(self.last)
        if _PROGRESS not in arrays:
            raise ConfigError(f"{self.last} is not a training checkpoint (no progress record)")
        try:
            progress = Progress(**json.loads(str(arrays[_PROGRESS][()])))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"cannot read the progress record of {self.last}: {err}") from err
        best = with_prefix(arrays, _BEST)
        return progress, with_prefix(arrays, _TRAIN), best or None

    def remove(self) -> None:
        """Delete the checkpoint files (e.g. to start a fit over)."""
        for path in (self.last, self.best):
            path.unlink(missing_ok=True)

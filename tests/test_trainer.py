"""The epoch loop on a scripted model: selection, restore, early stopping, logging."""

import math

import numpy as np
import pytest

from ncae_exp.errors import ConfigError, TrainingError
from ncae_exp.tracking.base import MemoryTracker
from ncae_exp.training.checkpoint import Checkpoint
from ncae_exp.training.trainer import Trainer

from conftest import Scripted


def script(values):
    return lambda m: {"val_metric": values[m.epoch]}


def test_best_epoch_is_selected_and_restored():
    tracker = MemoryTracker()
    model = Scripted()
    fit = Trainer(5, select="val_metric", mode="min").fit(model, script([9, 5, 3, 4, 3.5, 6]), tracker)
    assert fit.best_epoch == 2 and fit.best_value == 3 and model.epoch == 2
    assert fit.epochs_run == 5
    assert tracker.series("val_metric") == [(0, 9), (1, 5), (2, 3), (3, 4), (4, 3.5), (5, 6)]
    assert tracker.series("train_loss")[0] == (0, 99.0)  # step 0: before training
    assert [s for s, _ in tracker.series("train_loss")] == [0, 1, 2, 3, 4, 5]


def test_maximising_and_patience_stop_early():
    model = Scripted()
    fit = Trainer(10, select="val_metric", mode="max", patience=2).fit(
        model, script([0.1, 0.2, 0.5, 0.4, 0.45, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]), MemoryTracker()
    )
    assert fit.epochs_run == 4 and fit.best_epoch == 2 and model.epoch == 2


def test_without_a_validation_metric_the_last_epoch_is_kept():
    model = Scripted()
    fit = Trainer(3, select="val_metric").fit(model, lambda m: {}, MemoryTracker())
    assert fit.best_epoch == 3 and fit.best_value is None and model.epoch == 3


def test_diverging_loss_stops_with_a_clear_error():
    with pytest.raises(TrainingError, match="learning_rate"):
        Trainer(3, select="v").fit(Scripted(losses=[1.0, math.nan, 1.0]), lambda m: {"v": 1.0}, MemoryTracker())


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"epochs": 2, "mode": "up"}, {"epochs": 2, "patience": 0}])
def test_bad_trainer_settings(kwargs):
    with pytest.raises(ConfigError):
        Trainer(select="v", **kwargs)


def test_a_closed_form_model_gets_one_epoch_whatever_epochs_says():
    model = Scripted()
    model.iterative = False
    tracker = MemoryTracker()
    fit = Trainer(50, select="val_metric").fit(model, script([3.0, 2.0]), tracker)
    assert fit.epochs_run == 1 and model.epoch == 1 and fit.best_epoch == 1
    assert [s for s, _ in tracker.series("train_loss")] == [0, 1]


def interrupting(values, at_epoch):
    """The script, with a Ctrl-C while evaluating epoch ``at_epoch``."""

    def evaluate(m):
        if m.epoch == at_epoch:
            raise KeyboardInterrupt
        return {"val_metric": values[m.epoch]}

    return evaluate


VALUES = [9, 5, 3, 4, 3.5, 6, 7, 8]


def test_an_interrupted_fit_restores_the_best_epoch_and_resumes_from_its_checkpoint(tmp_path):
    straight = Trainer(7, select="val_metric", patience=4).fit(Scripted(), script(VALUES), MemoryTracker())
    trainer, model, ckpt = Trainer(7, select="val_metric", patience=4), Scripted(), Checkpoint(tmp_path / "ckpt")
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(model, interrupting(VALUES, 5), MemoryTracker(), checkpoint=ckpt)
    # the best epoch so far is back in the model; the fit so far is there to be saved
    assert model.epoch == 2 and trainer.interrupted.best_epoch == 2 and trainer.interrupted.epochs_run == 4
    assert ckpt.last.is_file() and ckpt.best.is_file()
    progress, state, best = ckpt.load()
    assert progress.epoch == 4 and progress.since_best == 2 and int(state["param/epoch"]) == 4
    assert int(best["epoch"]) == 2  # the best epoch is not the last: its parameters are kept

    tracker, seen = MemoryTracker(), []
    resumed = Trainer(7, select="val_metric", patience=4).fit(
        Scripted(), script(VALUES), tracker, checkpoint=ckpt, on_epoch=lambda fit: seen.append(fit.epochs_run))
    assert [s for s, _ in tracker.series("val_metric")] == [5, 6]  # the rest only; patience 4 stops at 6
    assert seen == [5, 6]
    assert resumed.history == straight.history and resumed.best_epoch == straight.best_epoch == 2
    assert resumed.epochs_run == straight.epochs_run == 6
    assert ckpt.load()[0].finished
    # a finished fit is not trained again: the checkpoint gives its result
    again = Trainer(7, select="val_metric", patience=4).fit(Scripted(), script(VALUES), MemoryTracker(), checkpoint=ckpt)
    assert again.history == straight.history and again.best_epoch == 2


def test_a_checkpoint_of_another_length_is_refused(tmp_path):
    ckpt = Checkpoint(tmp_path)
    Trainer(2, select="val_metric").fit(Scripted(), script(VALUES), MemoryTracker(), checkpoint=ckpt)
    with pytest.raises(ConfigError, match="2-epoch fit"):
        Trainer(3, select="val_metric").fit(Scripted(), script(VALUES), MemoryTracker(), checkpoint=ckpt)

"""Greedy layer-wise pre-training of a deep NCAE (paper Sec. 4.3, Fig. 4).

A schedule names what trains each weight layer before fine-tuning with Eq. 6:

* layer 1 — ``supervised`` (SR, Eq. 12: layer 1 + a temporary decoder to the output space,
  Eq. 5 on the corrupted input) or ``unsupervised`` (the classic autoencoder: the same
  network reconstructing the observed entries of the uncorrupted input);
* each further hidden layer l — ``unsupervised`` (DR, Eq. 13: layer l + a temporary tanh
  decoder reconstructing z_{l−1}, all units) or ``supervised`` (layer l + a temporary decoder
  to the output space, Eq. 5);
* the output layer — ``supervised`` (V, Eq. 15: only W_L, b_L with Eq. 5) or nothing (it
  keeps its Xavier initialisation).

Only the stage's own variables are handed to a fresh Adam, so lower layers stay
bit-identical (no optimizer state, no update); temporary decoders are dropped at the end of
their stage and never belong to the network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ncae_exp.errors import ConfigError, TrainingError
from ncae_exp.models.ncae.batches import BATCH_SIGNATURE, epoch_mean
from ncae_exp.models.ncae.layers import GatheredOutput, TanhDense
from ncae_exp.models.ncae.losses import eq5_loss, l2_penalty

log = logging.getLogger(__name__)

LogFn = Callable[[dict, int], None]
_KINDS = ("supervised", "unsupervised")


@dataclass(frozen=True)
class Stage:
    layer: int  # 1-based weight layer it trains; n_hidden + 1 = the output layer
    kind: str  # "sr", "ur" (layer 1), "dr", "sh" (hidden layer ≥ 2), "v" (output layer)
    metric: str  # MLflow series of its per-epoch loss


@dataclass(frozen=True)
class PretrainSchedule:
    name: str
    first: str | None
    middle: str | None
    top: str | None
    epochs_per_stage: int

    @classmethod
    def from_config(cls, cfg) -> PretrainSchedule | None:
        """None for ``pretrain=none``."""
        name = str(cfg.name)
        if name == "none":
            return None
        first, middle, top = cfg.get("first"), cfg.get("middle"), cfg.get("top")
        for key, value in (("first", first), ("middle", middle)):
            if value not in _KINDS:
                raise ConfigError(f"pretrain.{key} must be one of {_KINDS}, got {value!r}")
        if top not in (None, "supervised"):
            raise ConfigError(f"pretrain.top must be 'supervised' or null, got {top!r}")
        epochs = int(cfg.epochs_per_stage)
        if epochs < 1:
            raise ConfigError(f"pretrain.epochs_per_stage must be >= 1, got {epochs}")
        return cls(name, first, middle, top, epochs)

    def stages(self, n_hidden: int) -> list[Stage]:
        """The stages for a network with ``n_hidden`` hidden layers, bottom to top."""
        if n_hidden < 2 and self.top is None:
            raise ConfigError(
                f"pretrain={self.name} pre-trains hidden layer 2, but model.hidden has one layer; "
                "with one hidden layer use pretrain=sus (SR, then V) or pretrain=none"
            )
        stages = [Stage(1, "sr", "pretrain_sr_loss") if self.first == "supervised" else Stage(1, "ur", "pretrain_ur_loss")]
        for layer in range(2, n_hidden + 1):
            kind = "dr" if self.middle == "unsupervised" else "sh"
            suffix = "" if layer == 2 else str(layer)
            stages.append(Stage(layer, kind, f"pretrain_{kind}{suffix}_loss"))
        if self.top == "supervised":
            stages.append(Stage(n_hidden + 1, "v", "pretrain_v_loss"))
        return stages


def run_schedule(model, schedule: PretrainSchedule, log_metrics: LogFn) -> float:
    """Pre-train ``model`` (an :class:`~ncae_exp.models.ncae.model.NCAE` after ``prepare``)
    in place; returns the seconds spent."""
    t0 = time.perf_counter()
    for stage in schedule.stages(len(model.hidden)):
        run_stage(model, stage, schedule.epochs_per_stage, log_metrics)
    return time.perf_counter() - t0


def _encode_to(net, x: tf.SparseTensor, layer: int) -> tf.Tensor:
    """z_layer: the output of hidden layer ``layer`` (1-based)."""
    h = net.encoder(x)
    for hidden in net.hidden_layers[: layer - 1]:
        h = hidden(h)
    return h


def run_stage(model, stage: Stage, epochs: int, log_metrics: LogFn) -> None:
    net = model.network
    dim = model.x.shape[1]
    hidden_layers = [net.encoder, *net.hidden_layers]
    decoder = None
    if stage.kind in ("sr", "ur", "sh"):
        decoder = GatheredOutput(model.hidden[stage.layer - 1], dim, name=f"temp_decoder_{stage.layer}")
    elif stage.kind == "dr":
        below = model.hidden[stage.layer - 2]
        decoder = TanhDense(model.hidden[stage.layer - 1], below, name=f"temp_decoder_{stage.layer}")
    own = net.output_layer if stage.kind == "v" else hidden_layers[stage.layer - 1]
    variables = list(own.trainable_variables) + (list(decoder.trainable_variables) if decoder else [])
    q = 0.0 if stage.kind == "ur" else model.dropout  # "ur": reconstruct the uncorrupted input

    def loss_fn(in_indices, in_values, n_rows, t_rows, t_cols, t_values, t_dropped):
        x = model.sparse_input(in_indices, in_values, n_rows)
        if stage.kind == "v":  # Eq. 15: the full network, only W_L, b_L trainable; no L2
            pred = net(x, t_rows, t_cols)
            return tf.reduce_mean(eq5_loss(pred, t_values, t_dropped, t_rows, tf.cast(n_rows, tf.int32), model.alpha, model.beta))
        if stage.kind == "dr":  # Eq. 13: reconstruct z_{l−1} over all its units
            below = _encode_to(net, x, stage.layer - 1)
            recon = decoder(hidden_layers[stage.layer - 1](below))
            return tf.reduce_mean(tf.square(recon - tf.stop_gradient(below)))
        # Eq. 12 (and its supervised analogue for a higher layer): Eq. 5 through a temporary
        # decoder on z_l, with the rating-scale rescaling, plus L2 as in Eq. 6.
        pred = net.rescale(decoder(_encode_to(net, x, stage.layer), t_rows, t_cols))
        per_row = eq5_loss(pred, t_values, t_dropped, t_rows, tf.cast(n_rows, tf.int32), model.alpha, model.beta)
        return tf.reduce_mean(per_row) + l2_penalty(variables, model.l2)

    optimizer = keras.optimizers.Adam(learning_rate=model.learning_rate)
    optimizer.build(variables)

    @tf.function(input_signature=BATCH_SIGNATURE)
    def step(*batch):
        with tf.GradientTape() as tape:
            loss = loss_fn(*batch)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    for epoch in range(1, epochs + 1):
        value = epoch_mean(step, model.x_fit, model.batch_size, q, model.rng)
        if not np.isfinite(value):
            raise TrainingError(f"{stage.metric} became {value} at epoch {epoch}; lower model.learning_rate")
        log_metrics({stage.metric: value}, epoch)
        log.info("pretrain layer %d (%s) epoch %d/%d %s=%.4f", stage.layer, stage.kind, epoch, epochs, stage.metric, value)

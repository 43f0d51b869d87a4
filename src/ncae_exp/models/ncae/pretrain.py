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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ncae_exp.errors import ConfigError, TrainingError
from ncae_exp.models.ncae.batches import BATCH_SPEC, SparseBatch, epoch_mean, sparse_input
from ncae_exp.models.ncae.layers import GatheredOutput, HiddenDense
from ncae_exp.models.ncae.losses import eq5_loss, l2_penalty
from ncae_exp.models.ncae.network import NCAENetwork

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
    """What pre-trains each weight layer (``conf/pretrain/<name>.yaml``); ``first=None`` is
    no pre-training (``pretrain=none``, the paper's BP(None))."""

    name: str = "none"
    first: str | None = None
    middle: str | None = None
    top: str | None = None
    epochs_per_stage: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.epochs_per_stage, bool) or int(self.epochs_per_stage) < 1:
            raise ConfigError(f"pretrain.epochs_per_stage must be >= 1, got {self.epochs_per_stage}")
        if self.first is None:
            if self.middle is not None or self.top is not None:
                raise ConfigError(f"pretrain={self.name}: pretrain.first is null, so middle and top must be null too")
            return
        for key, value in (("first", self.first), ("middle", self.middle)):
            if value not in _KINDS:
                raise ConfigError(f"pretrain.{key} must be one of {_KINDS}, got {value!r}")
        if self.top not in (None, "supervised"):
            raise ConfigError(f"pretrain.top must be 'supervised' or null, got {self.top!r}")

    @property
    def enabled(self) -> bool:
        return self.first is not None

    def stages(self, n_hidden: int) -> list[Stage]:
        """The stages for a network with ``n_hidden`` hidden layers, bottom to top."""
        if not self.enabled:
            return []
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


@dataclass(frozen=True)
class PretrainContext:
    """What a stage needs from the model it pre-trains (built by ``NCAE.pretrain``)."""

    network: NCAENetwork
    hidden: tuple[int, ...]
    dim: int  # the output space (= input space of an autoencoder)
    alpha: float  # Eq. 5 weights (explicit feedback)
    beta: float
    normalize: bool  # Eq. 5's division by |K(u)|
    dropout: float
    l2: float
    learning_rate: float
    batches: Callable[[float], Iterable[SparseBatch]]  # one epoch of training batches at dropout q


def run_schedule(ctx: PretrainContext, schedule: PretrainSchedule, log_metrics: LogFn) -> float:
    """Pre-train ``ctx.network`` in place, stage by stage; returns the seconds spent."""
    t0 = time.perf_counter()
    for stage in schedule.stages(len(ctx.hidden)):
        run_stage(ctx, stage, int(schedule.epochs_per_stage), log_metrics)
    return time.perf_counter() - t0


def _encode_to(net: NCAENetwork, x: tf.SparseTensor, layer: int) -> tf.Tensor:
    """z_layer: the output of hidden layer ``layer`` (1-based)."""
    h = net.encoder(x, path=net.sparse_path)
    for hidden in net.hidden_layers[: layer - 1]:
        h = hidden(h)
    return h


def run_stage(ctx: PretrainContext, stage: Stage, epochs: int, log_metrics: LogFn) -> None:
    net = ctx.network
    hidden_layers = [net.encoder, *net.hidden_layers]
    decoder = None
    if stage.kind in ("sr", "ur", "sh"):
        decoder = GatheredOutput(ctx.hidden[stage.layer - 1], ctx.dim, name=f"temp_decoder_{stage.layer}")
    elif stage.kind == "dr":
        below = ctx.hidden[stage.layer - 2]
        decoder = HiddenDense(ctx.hidden[stage.layer - 1], below, name=f"temp_decoder_{stage.layer}")
    own = net.output_layer if stage.kind == "v" else hidden_layers[stage.layer - 1]
    variables = list(own.trainable_variables) + (list(decoder.trainable_variables) if decoder else [])
    q = 0.0 if stage.kind == "ur" else ctx.dropout  # "ur": reconstruct the uncorrupted input

    def eq5_mean(pred, batch: SparseBatch) -> tf.Tensor:
        n_rows = tf.cast(batch.n_rows, tf.int32)
        return tf.reduce_mean(eq5_loss(pred, batch.t_values, batch.t_dropped, batch.t_rows, n_rows, ctx.alpha, ctx.beta,
                                       ctx.normalize))

    def loss_fn(batch: SparseBatch) -> tf.Tensor:
        x = sparse_input(batch, ctx.dim)
        if stage.kind == "v":  # Eq. 15: the full network, only W_L, b_L trainable; no L2
            return eq5_mean(net(x, batch.t_rows, batch.t_cols), batch)
        if stage.kind == "dr":  # Eq. 13: reconstruct z_{l−1} over all its units
            below = _encode_to(net, x, stage.layer - 1)
            recon = decoder(hidden_layers[stage.layer - 1](below))
            return tf.reduce_mean(tf.square(recon - tf.stop_gradient(below)))
        # Eq. 12 (and its supervised analogue for a higher layer): Eq. 5 through a temporary
        # decoder on z_l, with the rating-scale rescaling, plus L2 as in Eq. 6.
        pred = net.rescale(decoder(_encode_to(net, x, stage.layer), batch.t_rows, batch.t_cols, path=net.sparse_path))
        return eq5_mean(pred, batch) + l2_penalty(variables, ctx.l2)

    optimizer = keras.optimizers.Adam(learning_rate=ctx.learning_rate)
    optimizer.build(variables)

    @tf.function(input_signature=[BATCH_SPEC])
    def step(batch: SparseBatch):
        with tf.GradientTape() as tape:
            loss = loss_fn(batch)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    for epoch in range(1, epochs + 1):
        value = epoch_mean(step, ctx.batches(q))
        if not np.isfinite(value):
            raise TrainingError(f"{stage.metric} became {value} at epoch {epoch}; lower model.learning_rate")
        log_metrics({stage.metric: value}, epoch)
        log.info("pretrain layer %d (%s) epoch %d/%d %s=%.4f", stage.layer, stage.kind, epoch, epochs, stage.metric, value)

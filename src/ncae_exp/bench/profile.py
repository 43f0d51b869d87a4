"""Where one NCAE training step's time goes: feeding (building the batch in numpy), the
forward pass, the backward pass, the L2 penalty's value and the fused Adam update — each
timed alone, on the same real batches, as compiled functions. ``step_seconds`` is the
whole ``train_step``; the parts add up to about it (feeding overlaps the step in
``train_epoch``, which builds the next batch on a background thread)."""

from __future__ import annotations

import time

import tensorflow as tf

from ncae_exp.bench.measure import median, progress
from ncae_exp.models.ncae.batches import BATCH_SPEC
from ncae_exp.models.ncae.losses import l2_penalty


def _timed_each(fn, items) -> list[float]:
    """Seconds of ``fn(item)`` for each item after the first (a warm-up that traces)."""
    fn(items[0])
    out = []
    for item in items[1:]:
        start = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - start)
    return out


def profile_step(model, batches: list, build_seconds: list[float], label: str) -> dict:
    """Median seconds of each part of ``model``'s training step over ``batches`` (the first
    warms up); the model's weights move (the optimizer part applies real updates)."""
    variables = model.network.trainable_variables

    @tf.function(input_signature=[BATCH_SPEC])
    def forward(batch):
        return model.data_loss(batch)

    @tf.function(input_signature=[BATCH_SPEC])
    def forward_backward(batch):
        with tf.GradientTape() as tape:
            loss = model.data_loss(batch)
        grads = tape.gradient(loss, variables)
        # touch every gradient so none is pruned away, without a dense copy of a sparse one
        return loss + tf.add_n([tf.reduce_sum(g.values if isinstance(g, tf.IndexedSlices) else g) * 0.0
                                for g in grads])

    @tf.function
    def penalty():
        return l2_penalty(model.network.regularized_weights, model.l2)

    def gradients(batch):
        with tf.GradientTape() as tape:
            loss = model.data_loss(batch)
        return tape.gradient(loss, variables)

    apply = tf.function(model._adam.apply)
    grads = [gradients(b) for b in batches[:2]]

    fwd = _timed_each(lambda b: float(forward(b)), batches)
    fwd_bwd = _timed_each(lambda b: float(forward_backward(b)), batches)
    pen = _timed_each(lambda _: float(penalty()), batches)
    opt = _timed_each(lambda i: (apply(grads[i % 2]), float(model.optimizer.iterations.numpy())), list(range(len(batches))))
    step = _timed_each(lambda b: float(model.train_step(b)), batches)
    out = {
        "feed_seconds": median(build_seconds[1:]),
        "forward_seconds": median(fwd),
        "backward_seconds": max(median(fwd_bwd) - median(fwd), 0.0),
        "penalty_seconds": median(pen),
        "optimizer_seconds": median(opt),
        "step_seconds": median(step),
        "steps_timed": len(step),
        "method": "median over the same real batches (first one warms up); backward = forward+backward - forward; "
                  "optimizer = the fused Adam update alone (model._adam.apply) on real gradients; "
                  "feed = building the batch in numpy (overlapped with the step in train_epoch)",
    }
    progress(f"{label}: step {out['step_seconds']:.3f} s = forward {out['forward_seconds']:.3f} + backward "
             f"{out['backward_seconds']:.3f} + penalty {out['penalty_seconds']:.3f} + optimizer "
             f"{out['optimizer_seconds']:.3f} (feed {out['feed_seconds']:.3f}, overlapped)")
    return out

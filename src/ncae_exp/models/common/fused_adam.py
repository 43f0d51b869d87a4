"""Adam with an L2 penalty, applied by TensorFlow's fused kernel.

Keras 3's ``Adam.apply_gradients`` runs each update as several element-wise ops — several
passes over every parameter, moment and gradient — and a penalty λ/2‖W‖² in the loss adds
its own dense gradient passes. At ML-10M shape (two 69,878 × 500 matrices) that costs more
than the forward and backward passes. Here the same update is one ``ResourceApplyAdam``
call per variable (a single fused pass, with CPU and GPU kernels), and the penalty's gradient
λW is folded into the gradient once: into the touched rows of a sparse (``IndexedSlices``)
gradient by one scatter, or added to a dense one.

Semantics are Keras Adam's exactly — m ← m + (g − m)(1 − β1), v ← v + (g² − v)(1 − β2),
W ← W − lr·√(1 − β2ᵗ)/(1 − β1ᵗ) · m/(√v + ε) — so results agree with ``apply_gradients``
up to float rounding. The state (step count, moments) stays in the built Keras optimizer,
so checkpoints (``train_state.optimizer_state``) do not change.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedAdam:
    """Applies a built ``keras.optimizers.Adam``'s update to ``variables`` with L2 ``l2``."""

    def __init__(self, optimizer: keras.optimizers.Adam, variables: list, l2: float):
        if not isinstance(optimizer, keras.optimizers.Adam) or optimizer.amsgrad:
            raise ValueError("FusedAdam needs a plain keras.optimizers.Adam (no AMSGrad)")
        if any(getattr(optimizer, name, None) for name in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay")):
            raise ValueError("FusedAdam does not apply clipping or weight decay")
        if optimizer.use_ema:
            raise ValueError("FusedAdam does not keep an EMA of the weights")
        self.optimizer = optimizer
        self.variables = list(variables)
        self.l2 = float(l2)
        index = [optimizer._get_variable_index(v) for v in self.variables]
        self.moments = [(optimizer._momentums[i], optimizer._velocities[i]) for i in index]

    def dense_gradient(self, grad, var) -> tf.Tensor:
        """The objective's gradient for ``var``: the data gradient plus λW, dense."""
        if isinstance(grad, tf.IndexedSlices):
            base = self.l2 * var if self.l2 else tf.zeros_like(var)
            return tf.tensor_scatter_nd_add(base, tf.expand_dims(grad.indices, 1), grad.values)
        return grad + self.l2 * var if self.l2 else grad

    def apply(self, grads: list) -> None:
        """One Adam step (call inside a ``tf.function``); ``grads`` align with ``variables``."""
        opt = self.optimizer
        step = tf.cast(opt.iterations + 1, tf.float32)
        beta_1 = tf.constant(opt.beta_1, tf.float32)
        beta_2 = tf.constant(opt.beta_2, tf.float32)
        lr = tf.cast(opt.learning_rate, tf.float32)
        beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
        epsilon = tf.constant(opt.epsilon, tf.float32)
        for var, grad, (m, v) in zip(self.variables, grads, self.moments):
            if grad is None:
                continue
            tf.raw_ops.ResourceApplyAdam(
                var=var.value.handle, m=m.value.handle, v=v.value.handle, beta1_power=beta_1_power,
                beta2_power=beta_2_power, lr=lr, beta1=beta_1, beta2=beta_2, epsilon=epsilon,
                grad=self.dense_gradient(grad, var.value),
            )
        opt.iterations.assign_add(1)

"""Optimizer slots in a training state (``Recommender.get_train_state``).

A Keras optimizer's variables (step count, learning rate, Adam's moments) are saved in their
build order under ``opt/<index>``: the same model built from the same config builds them in
the same order, so the index is a stable name (Keras' own paths can repeat across layers).
"""

from __future__ import annotations

import numpy as np

from ncae_exp.errors import ConfigError

OPT = "opt/"


def optimizer_state(optimizer) -> dict[str, np.ndarray]:
    """A copy of every variable of a built Keras optimizer."""
    return {f"{OPT}{i:04d}": np.array(v.numpy(), copy=True) for i, v in enumerate(optimizer.variables)}


def set_optimizer_state(optimizer, state: dict[str, np.ndarray], owner: str) -> None:
    """Assign ``optimizer_state``'s arrays back (shapes checked first: all or nothing)."""
    variables = list(optimizer.variables)
    saved = sorted(k for k in state if k.startswith(OPT))
    if len(saved) != len(variables):
        raise ConfigError(f"the checkpoint has {len(saved)} optimizer variables, {owner}'s optimizer has "
                          f"{len(variables)}")
    for key, var in zip(saved, variables):
        if tuple(np.shape(state[key])) != tuple(var.shape):
            raise ConfigError(f"checkpoint {key} has shape {np.shape(state[key])}, {owner} needs {tuple(var.shape)}")
    for key, var in zip(saved, variables):
        var.assign(np.asarray(state[key]).astype(var.dtype))

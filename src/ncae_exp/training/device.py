"""Device choice: TensorFlow uses a GPU when it sees one; ``trainer.device`` can pin it."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from ncae_exp.errors import ConfigError

log = logging.getLogger(__name__)


@contextmanager
def _stderr_silenced():
    """Hide file-descriptor-level stderr (TensorFlow's C++ start-up lines are written by
    absl before any log level applies). NCAE_TF_LOGS=1 keeps them."""
    if os.environ.get("NCAE_TF_LOGS") == "1":
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def configure_device(choice: str) -> str:
    """Import TensorFlow and apply ``auto`` | ``cpu`` | ``gpu`` before any op runs;
    returns the device used."""
    if choice not in ("auto", "cpu", "gpu"):
        raise ConfigError(f"trainer.device must be auto, cpu or gpu, got {choice!r}")
    with _stderr_silenced():
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    # Each job of an in-process sweep builds new tf.functions; TF's "retracing" warning
    # about that is noise here.
    tf.get_logger().setLevel(logging.ERROR)
    if choice == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
    if choice == "gpu" and not gpus:
        raise ConfigError(
            "trainer.device=gpu but TensorFlow sees no GPU (install the 'gpu' extra: pip install 'ncae-exp[gpu]')"
        )
    device = "gpu" if gpus and choice != "cpu" else "cpu"
    if device == "gpu":
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised: keep whatever was set
                pass
    log.info("TensorFlow %s on %s (%d GPU visible)", tf.__version__, device, len(gpus))
    return device

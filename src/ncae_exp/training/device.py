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


def configure_device(choice: str, deterministic: bool = False) -> str:
    """Import TensorFlow and apply ``auto`` | ``cpu`` | ``gpu`` before any op runs;
    returns the device used. ``deterministic`` (``trainer.deterministic``) turns on
    TensorFlow's op determinism: the same seed gives the same numbers on a GPU too (CPU
    runs are deterministic already), at some cost in speed."""
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
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    log.info("TensorFlow %s on %s (%d GPU visible)%s", tf.__version__, device, len(gpus),
             ", op determinism on" if deterministic else "")
    return device


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up lines hidden, for code that reaches a model's
    class before :func:`configure_device` runs (the config's validation)."""
    with _stderr_silenced():
        import tensorflow  # noqa: F401

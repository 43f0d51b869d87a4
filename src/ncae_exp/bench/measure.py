"""What every section of the benchmark measures with: wall time (epochs, steps), memory,
rounding and the atomic JSON write, and a description of the machine it ran on.

Only the model's public API is used: ``train_epoch()``, ``epoch_batches()`` and
``train_step(batch)`` (or any ``step(batch) -> loss``).
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ncae_exp.atomic import write_json_atomically

_START = time.perf_counter()


# -- small helpers -----------------------------------------------------------------------
def progress(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the benchmark started."""
    print(f"[{time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


def timed(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), wall seconds)``."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def median(values) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def rounded(obj, digits: int = 4):
    """Floats cut to ``digits`` significant digits for a readable JSON (recursively)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj


def write_json_atomic(path: Path, obj) -> None:
    """``obj`` as strict JSON (no NaN) at ``path``, atomically and synced to disk: readers see
    the old file or the new one, never a half-written one. Readable as ``open()`` would make
    it (the umask), not private."""
    write_json_atomically(path, obj, private=False, allow_nan=False, fsync=True)


# -- where and on what it runs --------------------------------------------------------------
def source_root() -> Path | None:
    """The source checkout the package runs from (``<root>/src/ncae_exp``), if it is one."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() else None


def default_data_dir() -> Path:
    """``$NCAE_DATA_DIR``, else the checkout's ``data/`` (else ``./data``), as ``ncae-run``."""
    if os.environ.get("NCAE_DATA_DIR"):
        return Path(os.environ["NCAE_DATA_DIR"])
    root = source_root()
    return (root if root is not None else Path.cwd()) / "data"


def git_commit() -> str | None:
    root = source_root()
    if root is None:
        return None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict:
    import psutil
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": "gpu" if gpus else "cpu",
        "physical_devices": [d.name for d in tf.config.list_physical_devices()],
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_mb": round(psutil.virtual_memory().total / 2**20),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# -- timing a model ----------------------------------------------------------------------
def time_epochs(model, repeats: int, label: str) -> dict:
    """One warm-up ``train_epoch()`` (traces the step), then ``repeats`` timed epochs."""
    loss, first = timed(model.train_epoch)
    progress(f"{label}: warm-up epoch {first:.2f} s (loss {loss:.4f})")
    times = []
    for i in range(repeats):
        loss, seconds = timed(model.train_epoch)
        times.append(seconds)
        progress(f"{label}: epoch {i + 1}/{repeats} {seconds:.2f} s (loss {loss:.4f})")
    return {"first_epoch_seconds": first, "epoch_seconds": median(times), "epoch_seconds_all": times,
            "final_loss": float(loss)}


def collect_batches(model, n: int) -> tuple[list, list[float]]:
    """``n`` real training batches (fresh ``epoch_batches()`` as needed) and the time each
    took to build (the first of an epoch also draws the dropout mask and the order)."""
    batches, seconds = [], []
    while len(batches) < n:
        it = model.epoch_batches()
        while len(batches) < n:
            start = time.perf_counter()
            batch = next(it, None)
            if batch is None:
                break
            seconds.append(time.perf_counter() - start)
            batches.append(batch)
    return batches, seconds


def synchronous(step: Callable) -> Callable:
    """``step(batch) -> loss tensor`` made to wait for its result (the loss is fetched)."""
    return lambda batch: float(step(batch))


def time_steps(step: Callable, batches: list, label: str) -> list[float]:
    """Seconds of ``step`` on each batch after the first, which warms up (traces) it."""
    _, warm = timed(step, batches[0])
    progress(f"{label}: warm-up step {warm:.2f} s")
    times = [timed(step, b)[1] for b in batches[1:]]
    progress(f"{label}: {len(times)} steps, median {median(times):.3f} s")
    return times

"""Section ``netflix_shape`` (not in ``--quick``): does one epoch of the paper's explicit
setting (``model=ncae_paper``: item-based, K = 500) train at Netflix-Prize shape (480,189
users × 17,770 movies, 100,480,507 ratings, synthetic) within this machine's memory? Seconds
of the epoch and peak RSS."""

from __future__ import annotations

from ncae_exp.bench import SEED
from ncae_exp.bench.configs import build
from ncae_exp.bench.measure import peak_rss_mb, progress, rss_mb, timed

LABEL = "netflix_shape"
OVERRIDES = ("model=ncae_paper", f"seed={SEED}")


def bench_netflix(shape: dict) -> dict:
    from ncae_exp.bench.ml10m import synthetic_of_shape

    data, data_s = synthetic_of_shape(LABEL, shape)
    rss_data = peak_rss_mb()
    model, _ = build(OVERRIDES)
    _, prepare_s = timed(model.prepare, data.matrix, data.rating_scale)
    progress(f"{LABEL}: {model.n_batches} batches of {model.batch_size} {model.based} vectors per epoch")
    _, first_step_s = timed(model.train_step, next(iter(model.epoch_batches())))
    loss, epoch_s = timed(model.train_epoch)
    progress(f"{LABEL}: epoch {epoch_s:.1f} s (loss {loss:.4f}), peak RSS {peak_rss_mb():,.0f} MB")
    return {
        "config_overrides": list(OVERRIDES), "based": model.based, "hidden": list(model.hidden),
        "n_users": data.n_users, "n_items": data.n_items, "nnz": int(data.matrix.nnz),
        "n_parameters": int(model.describe()["n_parameters"]), "n_batches": model.n_batches,
        "data_seconds": data_s, "prepare_seconds": prepare_s, "first_step_seconds": first_step_s,
        "epoch_seconds": epoch_s, "final_loss": float(loss),
        "peak_rss_mb_after_data": rss_data, "peak_rss_mb": peak_rss_mb(), "rss_mb_after_epoch": rss_mb(),
    }

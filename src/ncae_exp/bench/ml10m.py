"""Section ``ml10m_shape``: the paper's explicit setting (``model=ncae_paper``) on a synthetic
matrix of ML-10M's registered shape — epoch time, sparse vs dense-reference steps, peak RSS
and prediction speed."""

from __future__ import annotations

import numpy as np

from ncae_exp.bench import PAPER_GPU_EPOCH_SECONDS, SEED
from ncae_exp.bench.configs import build
from ncae_exp.bench.measure import (
    collect_batches,
    median,
    peak_rss_mb,
    progress,
    rss_mb,
    synchronous,
    time_epochs,
    time_steps,
    timed,
)

LABEL = "ml10m_shape"
# The paper's explicit setting (conf/model/ncae_paper.yaml).
OVERRIDES = ("model=ncae_paper", f"seed={SEED}")


def time_step_comparison(model, steps: int) -> dict:
    """The model's own compiled step vs the dense reference on the same ``steps`` real
    batches (plus one warm-up each), the reference with either optimizer implementation
    (Keras' ``apply_gradients``, as the model trained before; and the model's fused Adam);
    epochs estimated as median step × ``model.n_batches``. Then the step's profile."""
    from ncae_exp.bench.profile import profile_step
    from ncae_exp.models.ncae.dense_reference import dense_train_step

    batches, build_times = collect_batches(model, steps + 1)
    sparse = time_steps(synchronous(model.train_step), batches, f"{LABEL} sparse step")
    dense = time_steps(synchronous(dense_train_step(model, "keras")), batches, f"{LABEL} dense step, Keras Adam")
    fused = time_steps(synchronous(dense_train_step(model, "fused")), batches, f"{LABEL} dense step, fused Adam")
    build_s, sparse_s, dense_s, fused_s = median(build_times[1:]), median(sparse), median(dense), median(fused)
    n_batches = model.n_batches
    return {
        "steps_timed": len(sparse),
        "step_batch_entries": [int(len(b.t_rows)) for b in batches[1:]],
        "batch_build_seconds": build_s,
        "sparse_step_seconds": sparse_s,
        "dense_step_seconds": dense_s,
        "dense_fused_adam_step_seconds": fused_s,
        "dense_over_sparse": dense_s / sparse_s,
        "dense_fused_adam_over_sparse": fused_s / sparse_s,
        "epoch_seconds_sparse_estimate": n_batches * (build_s + sparse_s),
        "epoch_seconds_dense_reference": n_batches * (build_s + dense_s),
        "epoch_seconds_dense_reference_fused_adam": n_batches * (build_s + fused_s),
        "dense_reference_method": (
            "median step x n_batches; step = batch build (model.epoch_batches) + train step on the same "
            "real batches for both paths (sparse: model.train_step; dense: dense_reference.dense_train_step, "
            "B x N arrays + the dense Eq. 6, tf.function, with Keras' Adam.apply_gradients and lambda/2|W|^2 in "
            "the loss; _fused_adam: the same with the model's fused Adam and lambda*W folded in)"
        ),
        "step_profile": profile_step(model, batches, build_times, f"{LABEL} profile"),
    }


def time_predict(model, n_users: int, n_items: int, n_pairs: int) -> dict:
    """``predict`` on ``n_pairs`` uniformly random (user, item) pairs, after a small warm-up."""
    rng = np.random.default_rng(SEED + 1)
    users, items = rng.integers(0, n_users, n_pairs), rng.integers(0, n_items, n_pairs)
    model.predict(users[:1000], items[:1000])  # traces the predict step
    pred, seconds = timed(model.predict, users, items)
    assert np.isfinite(pred).all()
    progress(f"{LABEL}: predict {n_pairs:,} pairs {seconds:.2f} s")
    return {"predict_pairs": n_pairs, "predict_seconds": seconds}


def synthetic_of_shape(label: str, shape: dict):
    """``(Interactions, seconds)``: the seeded synthetic matrix of ``shape``, generated once
    per process and shape (the Table 6 grid reuses the ML-10M one)."""
    key = (label, shape["n_users"], shape["n_items"], shape["n_ratings"], tuple(shape["rating_scale"]),
           shape["rating_step"])
    if key not in _GENERATED:
        from ncae_exp.data.synthetic import generate_synthetic

        progress(f"{label}: generating {shape['n_users']:,} x {shape['n_items']:,}, {shape['n_ratings']:,} ratings")
        _GENERATED.clear()  # one at a time: the Netflix shape needs the memory
        _GENERATED[key] = timed(
            generate_synthetic, shape["n_users"], shape["n_items"], shape["n_ratings"],
            rating_scale=tuple(shape["rating_scale"]), rating_step=shape["rating_step"], seed=SEED,
        )
    return _GENERATED[key]


_GENERATED: dict = {}


def bench_ml10m(shape: dict, repeats: int, dense_steps: int) -> dict:
    """The whole section on data of ``shape`` (``SHAPES["ml10m_shape"]``)."""
    data, data_s = synthetic_of_shape(LABEL, shape)
    model, _ = build(OVERRIDES)
    _, prepare_s = timed(model.prepare, data.matrix, data.rating_scale)
    rss_before = peak_rss_mb()
    progress(f"{LABEL}: {model.n_batches} batches of {model.batch_size} {model.based} vectors per epoch")
    out = {
        "config_overrides": list(OVERRIDES),
        "based": model.based, "hidden": list(model.hidden), "batch_size": model.batch_size,
        "n_users": data.n_users, "n_items": data.n_items, "nnz": int(data.matrix.nnz),
        "rating_scale": [data.rating_scale.low, data.rating_scale.high], "rating_step": shape["rating_step"],
        "n_batches": model.n_batches, "data_seconds": data_s, "prepare_seconds": prepare_s,
    }
    out.update(time_epochs(model, repeats, LABEL))
    out["peak_rss_mb"] = peak_rss_mb()
    out["peak_rss_mb_before_training"] = rss_before
    out["rss_mb_after_epochs"] = rss_mb()
    out.update(time_step_comparison(model, dense_steps))
    out.update(time_predict(model, data.n_users, data.n_items, shape["predict_pairs"]))
    out["paper_gpu_epoch_seconds"] = PAPER_GPU_EPOCH_SECONDS[LABEL]
    return out

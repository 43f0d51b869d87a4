"""Section ``lastfm_implicit``: implicit feedback on Lastfm (or a synthetic matrix of its
registered shape), leave-one-out. The contract's figures (``epoch_seconds``,
``eval_seconds``) are the default implicit configuration's (``protocol=implicit``); the
Gram-vs-dense comparison is the same model with a linear output, by either loss path."""

from __future__ import annotations

from pathlib import Path

from ncae_exp.bench import PAPER_GPU_EPOCH_SECONDS, SEED
from ncae_exp.bench.configs import build
from ncae_exp.bench.measure import median, progress, time_epochs, timed

LABEL = "lastfm_implicit"
# The default implicit configuration (what `ncae-run protocol=implicit` trains).
DEFAULT = ("protocol=implicit", f"seed={SEED}")
# The same model with a linear output, whose Eq. 11 can go through the K x K Gram matrix.
LINEAR = (*DEFAULT, "model.feedback.output=linear")
GRAM = (*LINEAR, "model.feedback.loss_path=gram")
DENSE = (*LINEAR, "model.feedback.loss_path=dense")


def load_lastfm(data_dir: Path, shape: dict):
    """(Interactions, "real" | "synthetic"): the real archive when it is in ``data_dir/raw``."""
    from ncae_exp.data.loader import load_dataset
    from ncae_exp.data.registry import get_spec
    from ncae_exp.data.synthetic import generate_synthetic

    if (Path(data_dir) / "raw" / get_spec("lastfm").archive).is_file():
        return load_dataset({"name": "lastfm"}, data_dir), "real"
    data = generate_synthetic(shape["n_users"], shape["n_items"], shape["n_ratings"], seed=SEED)
    return data, "synthetic"


def configuration(model, overrides) -> dict:
    """Which configuration a figure was measured with."""
    fb = model.feedback
    return {"overrides": list(overrides), "output": fb.output, "loss_path": fb.loss_path, "omega": fb.omega}


def time_evaluation(model, split, cutoffs, repeats: int) -> dict:
    """Full ranking of every test user at ``cutoffs``: one warm-up, median of ``repeats``."""
    from ncae_exp.evaluation.ranking import RankingEvaluator

    evaluator = RankingEvaluator(split.train, cutoffs)
    run = lambda: evaluator.evaluate(model, split.test_users, split.test_items, "test")  # noqa: E731
    run()
    times, metrics = [], {}
    for _ in range(repeats):
        metrics, seconds = timed(run)
        times.append(seconds)
    progress(f"{LABEL}: evaluation of {len(split.test_users):,} users, median {median(times):.2f} s")
    return {"eval_seconds": median(times), "eval_seconds_all": times, "eval_users": int(len(split.test_users)),
            "eval_cutoffs": list(evaluator.cutoffs),
            "test_hr_at_100": metrics["test_hr_at_100"], "test_ndcg_at_100": metrics["test_ndcg_at_100"]}


def time_path(overrides, train, repeats: int, label: str) -> tuple[dict, dict]:
    """(epoch timings, configuration) of the model ``overrides`` build, prepared on ``train``."""
    model, _ = build(overrides)
    model.prepare(train, None)
    return time_epochs(model, repeats, label), configuration(model, overrides)


def bench_lastfm(data_dir: Path, shape: dict, repeats: int) -> dict:
    """The whole section (real data from ``data_dir`` if there, else of ``shape``)."""
    from ncae_exp.data.leave_one_out import leave_one_out

    data, source = load_lastfm(data_dir, shape)
    progress(f"{LABEL}: {source} data, {data.n_users:,} x {data.n_items:,}, {data.n_ratings:,} interactions")
    model, cfg = build(DEFAULT)
    split = leave_one_out(data, seed=SEED, min_interactions=int(cfg.split.min_interactions))
    model.prepare(split.train, None)
    info = model.describe()
    default = configuration(model, DEFAULT)
    out = {
        "source": source, "based": model.based, "hidden": list(model.hidden),
        "output": default["output"], "loss_path": info["loss_path"],
        "n_users": data.n_users, "n_items": data.n_items, "nnz": int(split.train.nnz),
        "n_augmented_rows": info["n_augmented_rows"], "n_batches": model.n_batches,
    }
    label = f"{LABEL} default ({default['output']}, {default['loss_path']})"
    out.update(time_epochs(model, repeats, label))
    out.update(time_evaluation(model, split, list(cfg.protocol.cutoffs), repeats))
    del model

    gram, gram_cfg = time_path(GRAM, split.train, repeats, f"{LABEL} linear, gram")
    dense, dense_cfg = time_path(DENSE, split.train, repeats, f"{LABEL} linear, dense")
    out["epoch_seconds_gram_path"] = gram["epoch_seconds"]
    out["epoch_seconds_gram_path_all"] = gram["epoch_seconds_all"]
    out["epoch_seconds_dense_path"] = dense["epoch_seconds"]
    out["epoch_seconds_dense_path_all"] = dense["epoch_seconds_all"]
    out["dense_path_over_gram"] = dense["epoch_seconds"] / gram["epoch_seconds"]
    out["configurations"] = {
        "epoch_seconds": default,
        "eval_seconds": default,
        "epoch_seconds_gram_path": gram_cfg,
        "epoch_seconds_dense_path": dense_cfg,
    }
    out["paper_gpu_epoch_seconds"] = PAPER_GPU_EPOCH_SECONDS[LABEL]
    return out

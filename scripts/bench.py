#!/usr/bin/env python
"""Benchmark of NCAE's training, prediction and ranking speed at the paper's shapes.

    make bench                                   # = python scripts/bench.py --out bench.json
    python scripts/bench.py --quick --out bench.json
    python scripts/bench.py --only lastfm_implicit --repeats 5 --out bench.json

Sections (JSON keys of the same names):

``ml10m_shape``
    A synthetic matrix of ML-10M's shape (69,878 users × 10,677 items, 10,000,054 ratings,
    0.5–5 in half stars) with the paper's explicit setting: item-based DOUBLE NCAE, K = 500,
    q = 0.5, λ = 0.0002, batch 128. Wall time of full ``train_epoch()`` calls (median, after
    one warm-up epoch that traces the ``tf.function``), the same mini-batch steps through
    the dense masked reference (``dense_reference.py``: B × N arrays, O(K·N) per vector),
    the process's peak RSS, and predicting 1,000,000 random (user, item) pairs. A full dense
    epoch is too slow for a CPU, so both paths are timed step by step on the same real
    batches and the dense epoch is estimated as median step × number of batches.
``lastfm_implicit``
    The real Lastfm archive when ``<data_dir>/raw/hetrec2011-lastfm-2k.zip`` exists, else a
    synthetic matrix of its shape (1,892 × 17,632, 92,834 interactions); leave-one-out split
    and the paper's implicit setting (user-based, K = 128, q = 0.5, λ = 0.01, c0 = 512,
    ω = 0.5, NCAE+ augmentation, linear output through the Gram path). Epoch time (Gram and
    dense loss paths) and the time of a full-ranking evaluation of every test user.

``--quick`` lowers the repetitions, never the shapes. Figures and ratios are printed as a
table on stdout, progress on stderr; the JSON is rewritten (atomically) after each section.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

PROG = "bench"
ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("ml10m_shape", "lastfm_implicit")
SEED = 0

# Shapes of the data; tests shrink these, the command line never does.
SHAPES = {
    "ml10m_shape": {
        "n_users": 69_878,
        "n_items": 10_677,
        "n_ratings": 10_000_054,
        "rating_scale": (0.5, 5.0),
        "rating_step": 0.5,
        "predict_pairs": 1_000_000,
    },
    "lastfm_implicit": {"n_users": 1_892, "n_items": 17_632, "n_ratings": 92_834},
}
# The paper's settings (spec "Training settings").
ML10M_MODEL = dict(hidden=[500, 500], based="item", dropout=0.5, l2=0.0002, learning_rate=0.001, batch_size=128)
LASTFM_MODEL = dict(
    hidden=[128], based="user", dropout=0.5, l2=0.01, learning_rate=0.001, batch_size=128,
    output="linear", loss_path="gram", weighting="popularity", c0=512.0, omega=0.5,
)  # augment_epsilon / augment_p: the NCAEImplicit (and config) defaults, i.e. NCAE+
CUTOFFS = (50, 100, 150, 200, 250)
# Paper Table 6: seconds per epoch on one K40C GPU (ML-10M: 3-layer item-based, K = 500).
PAPER_GPU_EPOCH_SECONDS = {"ml10m_shape": 6.31, "lastfm_implicit": 0.4}

_START = time.perf_counter()


# -- small helpers -----------------------------------------------------------------------
def progress(message: str) -> None:
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
    """Write ``obj`` as JSON to a temporary file beside ``path``, then rename it over ``path``:
    readers see the old file or the new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~umask)  # mkstemp's 0600 would make the result private
            json.dump(obj, fh, indent=2, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_data_dir() -> Path:
    return Path(os.environ.get("NCAE_DATA_DIR") or ROOT / "data")


def environment() -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import psutil

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
        "git_commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# -- measurements --------------------------------------------------------------------------
def n_batches(model) -> int:
    """Mini-batches in one epoch (rows without entries are skipped, as in ``epoch_batches``)."""
    rows = int(np.count_nonzero(np.diff(model.x_fit.indptr)))
    return -(-rows // model.batch_size)


def time_epochs(model, repeats: int, label: str) -> dict:
    """One warm-up epoch (traces the step), then ``repeats`` timed epochs."""
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
    """``n`` real training batches (fresh epochs as needed) and the time ``epoch_batches``
    took to build each one (the first of an epoch also draws the dropout mask and order)."""
    from ncae_exp.models.ncae.batches import epoch_batches

    batches, seconds = [], []
    while len(batches) < n:
        it = epoch_batches(model.x_fit, model.batch_size, model.dropout, model.rng)
        while len(batches) < n:
            start = time.perf_counter()
            batch = next(it, None)
            if batch is None:
                break
            seconds.append(time.perf_counter() - start)
            batches.append(batch)
    return batches, seconds


def sparse_step(model):
    """One training step of the model itself on a ready batch (loss fetched: synchronous)."""
    from ncae_exp.models.ncae.batches import batch_tensors

    def step(batch) -> float:
        return float(model._train_step(*batch_tensors(batch)))

    return step


def dense_step(model):
    """The same step through the dense masked reference: B × N input, target and weight
    arrays, ``dense_objective`` and the model's Adam on the same network, in a
    ``tf.function`` with fixed-rank signatures (no retracing)."""
    import tensorflow as tf

    from ncae_exp.models.ncae.dense_reference import dense_arrays, dense_objective

    net, dim = model.network, model.x.shape[1]
    spec = tf.TensorSpec([None, dim], tf.float32)

    @tf.function(input_signature=(spec, spec, spec))
    def train(x, target, weight):
        with tf.GradientTape() as tape:
            loss = dense_objective(net, x, target, weight, model.l2)
        variables = net.trainable_variables
        model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def step(batch) -> float:
        return float(train(*dense_arrays(batch, dim, model.alpha, model.beta)))

    return step


def time_steps(step, batches: list, label: str) -> list[float]:
    """Seconds of ``step`` on each batch after the first, which warms up (traces) it."""
    _, warm = timed(step, batches[0])
    progress(f"{label}: warm-up step {warm:.2f} s")
    times = [timed(step, b)[1] for b in batches[1:]]
    progress(f"{label}: {len(times)} steps, median {median(times):.3f} s")
    return times


def time_step_comparison(model, steps: int, n_epoch_batches: int) -> dict:
    """Sparse vs dense reference on the same ``steps`` real batches (plus one warm-up)."""
    batches, build = collect_batches(model, steps + 1)
    sparse = time_steps(sparse_step(model), batches, "ml10m_shape sparse step")
    dense = time_steps(dense_step(model), batches, "ml10m_shape dense step")
    build_s, sparse_s, dense_s = median(build[1:]), median(sparse), median(dense)
    return {
        "steps_timed": len(sparse),
        "step_batch_entries": [int(len(b.t_rows)) for b in batches[1:]],
        "batch_build_seconds": build_s,
        "sparse_step_seconds": sparse_s,
        "dense_step_seconds": dense_s,
        "dense_over_sparse": dense_s / sparse_s,
        "epoch_seconds_sparse_estimate": n_epoch_batches * (build_s + sparse_s),
        "epoch_seconds_dense_reference": n_epoch_batches * (build_s + dense_s),
        "dense_reference_method": (
            "median step x n_batches; step = batch build (epoch_batches) + train step on the same "
            "real batches for both paths (dense: dense_arrays + dense_objective + Adam, tf.function)"
        ),
    }


def time_predict(model, n_users: int, n_items: int, n_pairs: int) -> dict:
    """``predict`` on ``n_pairs`` uniformly random (user, item) pairs, after a small warm-up."""
    rng = np.random.default_rng(SEED + 1)
    users, items = rng.integers(0, n_users, n_pairs), rng.integers(0, n_items, n_pairs)
    model.predict(users[:1000], items[:1000])  # traces the predict step
    pred, seconds = timed(model.predict, users, items)
    assert np.isfinite(pred).all()
    progress(f"ml10m_shape: predict {n_pairs:,} pairs {seconds:.2f} s")
    return {"predict_pairs": n_pairs, "predict_seconds": seconds}


def bench_ml10m(shape: dict, repeats: int, dense_steps: int) -> dict:
    from ncae_exp.data.synthetic import generate_synthetic
    from ncae_exp.models.ncae.model import NCAE

    label = "ml10m_shape"
    progress(f"{label}: generating {shape['n_users']:,} x {shape['n_items']:,}, {shape['n_ratings']:,} ratings")
    data, data_s = timed(
        generate_synthetic, shape["n_users"], shape["n_items"], shape["n_ratings"],
        rating_scale=shape["rating_scale"], rating_step=shape["rating_step"], seed=SEED,
    )
    model = NCAE(**ML10M_MODEL, seed=SEED)
    _, prepare_s = timed(model.prepare, data.matrix, data.rating_scale)
    rss_before = peak_rss_mb()
    batches = n_batches(model)
    progress(f"{label}: {batches} batches of {model.batch_size} {model.based} vectors per epoch")
    out = {
        "based": model.based, "hidden": list(model.hidden), "batch_size": model.batch_size,
        "n_users": data.n_users, "n_items": data.n_items, "nnz": int(data.matrix.nnz),
        "n_batches": batches, "data_seconds": data_s, "prepare_seconds": prepare_s,
    }
    out.update(time_epochs(model, repeats, label))
    out["peak_rss_mb"] = peak_rss_mb()
    out["peak_rss_mb_before_training"] = rss_before
    out["rss_mb_after_epochs"] = rss_mb()
    out.update(time_step_comparison(model, dense_steps, batches))
    out.update(time_predict(model, data.n_users, data.n_items, shape["predict_pairs"]))
    out["paper_gpu_epoch_seconds"] = PAPER_GPU_EPOCH_SECONDS[label]
    return out


def load_lastfm(data_dir: Path, shape: dict):
    """(Interactions, "real" | "synthetic"): the real archive when it is in ``data_dir/raw``."""
    from ncae_exp.data.loader import load_dataset
    from ncae_exp.data.registry import get_spec
    from ncae_exp.data.synthetic import generate_synthetic

    if (Path(data_dir) / "raw" / get_spec("lastfm").archive).is_file():
        return load_dataset({"name": "lastfm"}, data_dir), "real"
    data = generate_synthetic(shape["n_users"], shape["n_items"], shape["n_ratings"], seed=SEED)
    return data, "synthetic"


def time_evaluation(model, split, repeats: int) -> dict:
    """Full ranking of every test user (cutoffs 50..250): one warm-up, median of ``repeats``."""
    from ncae_exp.evaluation.ranking import RankingEvaluator

    evaluator = RankingEvaluator(split.train, CUTOFFS)
    run = lambda: evaluator.evaluate(model, split.test_users, split.test_items, "test")  # noqa: E731
    run()
    times, metrics = [], {}
    for _ in range(repeats):
        metrics, seconds = timed(run)
        times.append(seconds)
    progress(f"lastfm_implicit: evaluation of {len(split.test_users):,} users, median {median(times):.2f} s")
    return {"eval_seconds": median(times), "eval_seconds_all": times, "eval_users": int(len(split.test_users)),
            "test_hr_at_100": metrics["test_hr_at_100"], "test_ndcg_at_100": metrics["test_ndcg_at_100"]}


def bench_lastfm(data_dir: Path, shape: dict, repeats: int) -> dict:
    from ncae_exp.data.leave_one_out import leave_one_out
    from ncae_exp.models.ncae.implicit import NCAEImplicit

    label = "lastfm_implicit"
    data, source = load_lastfm(data_dir, shape)
    progress(f"{label}: {source} data, {data.n_users:,} x {data.n_items:,}, {data.n_ratings:,} interactions")
    split = leave_one_out(data, seed=SEED)
    gram = NCAEImplicit(**LASTFM_MODEL, seed=SEED)
    gram.prepare(split.train)
    out = {
        "source": source, "based": gram.based, "hidden": list(gram.hidden), "loss_path": gram.loss_path,
        "n_users": data.n_users, "n_items": data.n_items, "nnz": int(split.train.nnz),
        "n_augmented_rows": gram.n_augmented, "n_batches": n_batches(gram),
    }
    out.update(time_epochs(gram, repeats, f"{label} gram"))
    out.update(time_evaluation(gram, split, repeats))
    dense = NCAEImplicit(**{**LASTFM_MODEL, "loss_path": "dense"}, seed=SEED)
    dense.prepare(split.train)
    dense_epochs = time_epochs(dense, repeats, f"{label} dense")
    out["epoch_seconds_dense_path"] = dense_epochs["epoch_seconds"]
    out["epoch_seconds_dense_path_all"] = dense_epochs["epoch_seconds_all"]
    out["dense_path_over_gram"] = out["epoch_seconds_dense_path"] / out["epoch_seconds"]
    out["paper_gpu_epoch_seconds"] = PAPER_GPU_EPOCH_SECONDS[label]
    return out


# -- report ----------------------------------------------------------------------------------
def table(section: str, r: dict) -> str:
    """A few human-readable lines for one section."""
    if section == "ml10m_shape":
        return "\n".join([
            f"ml10m_shape: {r['based']}-based {r['hidden']}, {r['nnz']:,} ratings, {r['n_batches']} batches/epoch",
            f"  sparse epoch (median)     {r['epoch_seconds']:9.2f} s   first {r['first_epoch_seconds']:.2f} s"
            f"   paper K40C {r['paper_gpu_epoch_seconds']} s",
            f"  step: build {r['batch_build_seconds']:.3f} s  sparse {r['sparse_step_seconds']:.3f} s"
            f"  dense {r['dense_step_seconds']:.3f} s  dense/sparse {r['dense_over_sparse']:.1f}x",
            f"  dense reference epoch     {r['epoch_seconds_dense_reference']:9.2f} s   (median step x n_batches;"
            f" sparse by the same estimate {r['epoch_seconds_sparse_estimate']:.2f} s)",
            f"  peak RSS                  {r['peak_rss_mb']:9.0f} MB",
            f"  predict {r['predict_pairs']:,} pairs {r['predict_seconds']:9.2f} s",
        ])
    return "\n".join([
        f"lastfm_implicit: {r['source']} data, {r['based']}-based {r['hidden']}, {r['nnz']:,} training"
        f" interactions, {r['n_batches']} batches/epoch",
        f"  epoch, gram path (median) {r['epoch_seconds']:9.3f} s   first {r['first_epoch_seconds']:.3f} s"
        f"   paper K40C {r['paper_gpu_epoch_seconds']} s",
        f"  epoch, dense path         {r['epoch_seconds_dense_path']:9.3f} s   dense/gram {r['dense_path_over_gram']:.2f}x",
        f"  evaluation ({r['eval_users']:,} users)    {r['eval_seconds']:9.3f} s   HR@100 {r['test_hr_at_100']:.3f}",
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the results as JSON (atomically)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (1 epoch, 3 dense steps); same shapes")
    parser.add_argument("--only", choices=SECTIONS, help="run one section only")
    parser.add_argument("--repeats", type=int, metavar="N", help="timed repetitions per figure (default 3, --quick 1)")
    parser.add_argument("--dense-steps", type=int, metavar="N", help="timed dense/sparse steps (default 5, --quick 3)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where raw/hetrec2011-lastfm-2k.zip is looked for (default: $NCAE_DATA_DIR or data/)")
    args = parser.parse_args(argv)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    args.dense_steps = args.dense_steps if args.dense_steps is not None else (3 if args.quick else 5)
    if args.repeats < 1 or args.dense_steps < 1:
        parser.error("--repeats and --dense-steps must be >= 1")
    args.data_dir = args.data_dir or default_data_dir()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = [args.only] if args.only else list(SECTIONS)
    results = {
        "environment": environment(),
        "settings": {"quick": args.quick, "repeats": args.repeats, "dense_steps": args.dense_steps,
                     "sections": sections, "seed": SEED},
    }
    started = time.perf_counter()
    for section in sections:
        if section == "ml10m_shape":
            results[section] = bench_ml10m(SHAPES[section], args.repeats, args.dense_steps)
        else:
            results[section] = bench_lastfm(args.data_dir, SHAPES[section], args.repeats)
        gc.collect()
        print(table(section, results[section]), flush=True)
        results.pop("total_seconds", None)  # kept last in the file
        results["total_seconds"] = time.perf_counter() - started
        if args.out:
            write_json_atomic(args.out, rounded(results))
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

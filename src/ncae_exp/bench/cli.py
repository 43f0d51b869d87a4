"""``ncae-bench`` (and ``python scripts/bench.py``): arguments, running the sections, the
printed table and the JSON file. What each section measures: the package docstring."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

import argparse  # noqa: E402
import gc  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import ncae_exp.bench as bench  # noqa: E402
from ncae_exp.bench.measure import default_data_dir, environment, rounded, write_json_atomic  # noqa: E402

PROG = "ncae-bench"


def run_section(section: str, args: argparse.Namespace) -> dict:
    if section == "ml10m_shape":
        from ncae_exp.bench.ml10m import bench_ml10m

        return bench_ml10m(bench.SHAPES[section], args.repeats, args.dense_steps)
    if section == "table6_grid":
        from ncae_exp.bench.table6 import bench_table6

        return bench_table6(bench.SHAPES["ml10m_shape"])
    if section == "item_ranking":
        from ncae_exp.bench.ranking import bench_item_ranking

        return bench_item_ranking(args.data_dir, bench.SHAPES[section], args.repeats)
    if section == "netflix_shape":
        from ncae_exp.bench.netflix import bench_netflix

        return bench_netflix(bench.SHAPES[section])
    from ncae_exp.bench.lastfm import bench_lastfm

    return bench_lastfm(args.data_dir, bench.SHAPES[section], args.repeats)


# -- report ----------------------------------------------------------------------------------
def table(section: str, r: dict) -> str:
    """A few human-readable lines for one section."""
    if section == "ml10m_shape":
        prof = r["step_profile"]
        return "\n".join([
            f"ml10m_shape: {r['based']}-based {r['hidden']}, {r['nnz']:,} ratings, {r['n_batches']} batches/epoch"
            f" ({' '.join(r['config_overrides'])})",
            f"  sparse epoch (median)     {r['epoch_seconds']:9.2f} s   first {r['first_epoch_seconds']:.2f} s"
            f"   paper K40C {r['paper_gpu_epoch_seconds']} s",
            f"  step: build {r['batch_build_seconds']:.3f} s  sparse {r['sparse_step_seconds']:.3f} s"
            f"  dense {r['dense_step_seconds']:.3f} s  dense/sparse {r['dense_over_sparse']:.1f}x",
            f"  dense reference epoch     {r['epoch_seconds_dense_reference']:9.2f} s   (median step x n_batches;"
            f" sparse by the same estimate {r['epoch_seconds_sparse_estimate']:.2f} s)",
            f"  dense reference, fused Adam {r['epoch_seconds_dense_reference_fused_adam']:7.2f} s"
            f"   dense/sparse {r['dense_fused_adam_over_sparse']:.1f}x",
            f"  step profile: forward {prof['forward_seconds']:.3f}  backward {prof['backward_seconds']:.3f}"
            f"  penalty {prof['penalty_seconds']:.3f}  optimizer {prof['optimizer_seconds']:.3f}"
            f"  = step {prof['step_seconds']:.3f} s  (feed {prof['feed_seconds']:.3f} s, overlapped)",
            f"  peak RSS                  {r['peak_rss_mb']:9.0f} MB",
            f"  predict {r['predict_pairs']:,} pairs {r['predict_seconds']:9.2f} s",
        ])
    if section == "table6_grid":
        lines = ["table6_grid: epoch seconds, model=ncae_paper hidden=[K,K] on a share of the ML-10M-shape ratings",
                 "  K     " + "".join(f"{s:>9.0%}" for s in r["shares"]) + "   s per 1M ratings   R^2"]
        for k in r["hidden"]:
            row = [c["epoch_seconds"] for c in r["cells"] if c["hidden"] == k]
            fit = r["linear_in_nnz"][str(k)]
            lines.append(f"  {k:<6}" + "".join(f"{v:9.2f}" for v in row)
                         + f"   {fit['seconds_per_million_ratings']:16.2f}   {fit['r2']:.3f}")
        return "\n".join(lines)
    if section == "item_ranking":
        return (f"item_ranking: {r['source']} ML-100K, {r['n_users']:,} users x {r['n_items']:,} items,"
                f" {r['based']}-based: full ranking {r['eval_seconds']:.3f} s")
    if section == "netflix_shape":
        return (f"netflix_shape: {r['nnz']:,} ratings, {r['based']}-based {r['hidden']},"
                f" {r['n_parameters']:,} parameters: epoch {r['epoch_seconds']:.1f} s, peak RSS {r['peak_rss_mb']:,.0f} MB")
    return "\n".join([
        f"lastfm_implicit: {r['source']} data, {r['based']}-based {r['hidden']}, {r['nnz']:,} training"
        f" interactions, {r['n_batches']} batches/epoch",
        f"  epoch, default config ({r['output']} output, {r['loss_path']} path) {r['epoch_seconds']:9.3f} s"
        f"   first {r['first_epoch_seconds']:.3f} s   paper K40C {r['paper_gpu_epoch_seconds']} s",
        f"  epoch, linear output: gram path {r['epoch_seconds_gram_path']:.3f} s, dense path"
        f" {r['epoch_seconds_dense_path']:.3f} s   dense/gram {r['dense_path_over_gram']:.2f}x",
        f"  evaluation ({r['eval_users']:,} users)    {r['eval_seconds']:9.3f} s   HR@100 {r['test_hr_at_100']:.3f}",
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=bench.__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the results as JSON (atomically)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions (1 epoch, 3 dense steps), no netflix_shape; same shapes")
    parser.add_argument("--only", choices=bench.SECTIONS, help="run one section only")
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
    sections = [args.only] if args.only else [s for s in bench.SECTIONS if not (args.quick and s in bench.NOT_QUICK)]
    results = {
        "environment": environment(),
        "settings": {"quick": args.quick, "repeats": args.repeats, "dense_steps": args.dense_steps,
                     "sections": sections, "seed": bench.SEED},
    }
    started = time.perf_counter()
    for section in sections:
        results[section] = run_section(section, args)
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
